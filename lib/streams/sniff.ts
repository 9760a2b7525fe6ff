/**
 * Look at the first bytes of a stream of pieces without losing them.
 *
 * @module
 */

import type { Piece } from "./piece_pool.ts";

/** The first bytes of a stream, and a stream that still yields every piece. */
export interface Sniffed {
  /**
   * A copy of the first `length` bytes, or fewer when the whole stream is shorter (the pieces
   * themselves go on to the next stage, which may recycle them).
   */
  head: Uint8Array;
  /** The complete stream, starting with the pieces the head was read from. */
  stream: ReadableStream<Piece>;
}

/**
 * Reads until at least `length` bytes are buffered, then hands back a copy of those bytes and
 * a stream that replays the pieces read before the rest. Used to recognise a format from
 * magic bytes.
 *
 * @param stream The stream to look into; it is locked by this call.
 * @param length How many leading bytes the caller needs.
 *
 * @example
 * ```ts
 * const { head, stream } = await sniff(input, 512);
 * ```
 */
export async function sniff(stream: ReadableStream<Piece>, length: number): Promise<Sniffed> {
  const reader = stream.getReader();
  const pieces: Piece[] = [];
  let total = 0;
  let done = false;
  while (total < length) {
    const next = await reader.read();
    if (next.done) {
      done = true;
      break;
    }
    if (next.value.length === 0) continue;
    pieces.push(next.value);
    total += next.value.length;
  }
  const head = new Uint8Array(Math.min(total, length));
  let filled = 0;
  for (const piece of pieces) {
    if (filled === head.length) break;
    const bytes = piece.bytes;
    const count = Math.min(bytes.length, head.length - filled);
    head.set(count === bytes.length ? bytes : bytes.subarray(0, count), filled);
    filled += count;
  }
  const replay = new ReadableStream<Piece>({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece.handOver());
      if (done) controller.close();
    },
    async pull(controller) {
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { head, stream: replay };
}
