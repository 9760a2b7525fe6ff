/**
 * Feeds bytes the way chunks are read: each piece copied into a buffer taken from a
 * {@linkcode PiecePool}, so a stage that recycles its input gets buffers back for the next reads.
 *
 * @module
 */

import { PiecePool } from "../../lib/streams/piece_pool.ts";

/**
 * A stream of `data` in pooled pieces of `pieceSize`, and how many buffers the pool had to make
 * for them (the pool counts, so this holds with the ownership checks on, which move a recycled
 * buffer to a new object).
 */
export function pooledPieces(
  data: Uint8Array,
  pieceSize: number,
): { stream: ReadableStream<Uint8Array>; buffers: { readonly size: number } } {
  const pool = new PiecePool(pieceSize, 64);
  const buffers = {
    get size() {
      return pool.created;
    },
  };
  let at = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at === data.length) return controller.close();
      const piece = pool.take(Math.min(pieceSize, data.length - at));
      piece.set(data.subarray(at, at + piece.length));
      at += piece.length;
      controller.enqueue(piece);
    },
  }, { highWaterMark: 0 });
  return { stream, buffers };
}
