/**
 * Bounded parallelism for the per-chunk tool runs (encryption, HMAC), which are independent.
 *
 * @module
 */

/** Maps `items` through `fn` with at most `limit` calls running at once; keeps the order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A parallelism that suits small tool runs on this machine. */
export const TOOL_PARALLELISM = Math.max(2, Math.min(8, navigator.hardwareConcurrency ?? 4));
