/**
 * An item's inner tar bytes passed on unchanged while the restore's own parser reads them
 * alongside: a member outside the item, a bad header checksum or an archive that ends early
 * stops the pass with the error `restore` would give.
 *
 * @module
 */

import { tarEvents } from "../format/mod.ts";

/**
 * Passes `tar` through, checked by the same parser and item scope checks as `restore`.
 *
 * @param item The item name (`vm5/private.img`, `vm3/.`).
 * @param tar The item's plaintext inner tar stream.
 */
export function checkedTar(
  item: string,
  tar: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  const feed = new TransformStream<Uint8Array, Uint8Array>();
  const writer = feed.writable.getWriter();
  let failure: { error: unknown } | undefined;
  const drained = (async () => {
    try {
      for await (const _event of tarEvents(item, feed.readable)) {
        // Only the checks matter.
      }
    } catch (error) {
      failure = { error };
      throw error;
    }
  })();
  drained.catch(() => {});
  return tar.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(piece, controller) {
        if (failure) throw failure.error;
        try {
          await writer.write(piece);
        } catch (error) {
          await drained;
          throw error;
        }
        controller.enqueue(piece);
      },
      async flush() {
        try {
          await writer.close();
        } finally {
          await drained;
        }
      },
      async cancel(reason) {
        await writer.abort(reason).catch(() => {});
      },
    }),
  );
}
