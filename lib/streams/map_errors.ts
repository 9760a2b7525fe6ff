/**
 * Giving errors from deep inside a pipeline the context only an outer stage knows.
 *
 * @module
 */

/**
 * The same stream, with every error it raises passed through `map` first.
 *
 * @param stream The stream to read from; it is locked by this call.
 * @param map Returns the error to raise instead (or the same one).
 *
 * @example
 * ```ts
 * const named = mapErrors(events, (e) => new Error(`In "vm5/private.img": ${e}`));
 * ```
 */
export function mapErrors<T>(
  stream: ReadableStream<T>,
  map: (error: unknown) => unknown,
): ReadableStream<T> {
  const reader = stream.getReader();
  return new ReadableStream<T>({
    async pull(controller) {
      let next: ReadableStreamReadResult<T>;
      try {
        next = await reader.read();
      } catch (error) {
        throw map(error);
      }
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
