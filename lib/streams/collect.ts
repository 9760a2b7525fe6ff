/**
 * Gather a whole (small) stream into one buffer, with a limit.
 *
 * @module
 */

import { concat } from "./concat.ts";

/**
 * Reads a stream to its end and returns all bytes in one buffer.
 *
 * @param stream The stream to drain.
 * @param limit The most bytes accepted; past it `onTooLarge` is thrown.
 * @param onTooLarge Builds the error thrown when the stream is longer than `limit`.
 *
 * @example
 * ```ts
 * const bytes = await collect(stream, 1 << 20, () => new RangeError("too large"));
 * ```
 */
export async function collect(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  onTooLarge: () => Error,
): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let total = 0;
  for await (const piece of stream) {
    total += piece.length;
    if (total > limit) throw onTooLarge();
    pieces.push(piece);
  }
  return concat(pieces, total);
}
