/**
 * Look at the first bytes of a stream without losing them.
 *
 * @module
 */

import { concat } from "./concat.ts";

/** The first bytes of a stream, and a stream that still yields every byte. */
export interface Sniffed {
  /** At least `length` bytes from the start, or fewer when the whole stream is shorter. */
  head: Uint8Array;
  /** The complete stream, starting with the bytes in `head`. */
  stream: ReadableStream<Uint8Array>;
}

/**
 * Reads until at least `length` bytes are buffered, then hands back those bytes and a stream
 * that replays them before the rest. Used to recognise a format from magic bytes.
 *
 * @param stream The stream to look into; it is locked by this call.
 * @param length How many leading bytes the caller needs.
 *
 * @example
 * ```ts
 * const { head, stream } = await sniff(input, 512);
 * ```
 */
export async function sniff(stream: ReadableStream<Uint8Array>, length: number): Promise<Sniffed> {
  const reader = stream.getReader();
  const pieces: Uint8Array[] = [];
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
  const head = concat(pieces, total);
  const replay = new ReadableStream<Uint8Array>({
    start(controller) {
      if (head.length > 0) controller.enqueue(head);
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
