/**
 * Joining byte pieces.
 *
 * @module
 */

/**
 * Joins pieces into one buffer; a single piece of the whole length is returned as is.
 *
 * @param pieces The pieces, in order.
 * @param length Their total length (computed when omitted).
 *
 * @example
 * ```ts
 * concat([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concat(
  pieces: readonly Uint8Array[],
  length = pieces.reduce((sum, piece) => sum + piece.length, 0),
): Uint8Array {
  if (pieces.length === 1 && pieces[0]!.length === length) return pieces[0]!;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    joined.set(piece, offset);
    offset += piece.length;
  }
  return joined;
}
