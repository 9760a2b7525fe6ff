/**
 * Feeds bytes the way chunks are read: each piece copied into a buffer taken from a
 * {@linkcode PiecePool} and handed over to the stream's reader, so a stage that recycles its
 * input gets buffers back for the next reads.
 *
 * @module
 */

import { type Piece, PiecePool } from "../../lib/streams/piece_pool.ts";

/**
 * A stream of `data` in pooled pieces of `pieceSize`, and how many buffers the pool had to make
 * for them (the pool counts, so this holds with the ownership checks on, which move a recycled
 * buffer to a new object).
 */
export function pooledPieces(
  data: Uint8Array,
  pieceSize: number,
  pool: PiecePool = new PiecePool(pieceSize, 64),
): { stream: ReadableStream<Piece>; buffers: { readonly size: number } } {
  const buffers = {
    get size() {
      return pool.created;
    },
  };
  let at = 0;
  const stream = new ReadableStream<Piece>({
    pull(controller) {
      if (at === data.length) return controller.close();
      const piece = pool.take(Math.min(pieceSize, data.length - at));
      piece.bytes.set(data.subarray(at, at + piece.length));
      at += piece.length;
      controller.enqueue(piece.handOver());
    },
  }, { highWaterMark: 0 });
  return { stream, buffers };
}

/** The bytes of a stream of pieces, each piece recycled once read (the reader owns it). */
export async function pieceBytes(stream: ReadableStream<Piece>): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const piece of stream) {
    parts.push(piece.bytes.slice());
    piece.recycle();
  }
  return parts;
}
