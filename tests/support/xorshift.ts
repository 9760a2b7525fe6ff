/**
 * The one pseudo-random generator of the tests: xorshift32, deterministic so that failures
 * reproduce, and fast enough for megabytes.
 *
 * @module
 */

/** A generator of 32-bit words for `seed` (0 counts as 1). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>>= 0;
  };
}

/**
 * `length` bytes: xorshift32 words (machine byte order), then `i & 0xff` for a tail shorter
 * than a word.
 *
 * @example
 * ```ts
 * const a = xorshiftBytes(1000, 7); // the same bytes on every run
 * ```
 */
export function xorshiftBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  const next = xorshift32(seed);
  for (let i = 0; i < words.length; i++) words[i] = next();
  for (let i = words.length * 4; i < length; i++) out[i] = i & 0xff;
  return out;
}
