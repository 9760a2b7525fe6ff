/**
 * An item's inner tar events, as the restore sees them: members checked against the item,
 * symlink targets restored, errors named after the item.
 *
 * @module
 */

import { DamagedError, RecoverError } from "../errors.ts";
import { mapErrors } from "../streams/mod.ts";
import { type TarEvent, TarStream, type VolumeStarts } from "../tar/mod.ts";
import { memberInItem } from "./item_scope.ts";

/**
 * Names the item in an error that does not concern it or one of its chunks or members yet
 * (by the error's subject, not its text): `Cannot restore "vm5/private.img": <message>`.
 */
function withItemName(item: string, error: unknown): unknown {
  if (!(error instanceof RecoverError)) return error;
  return error.within("restore", { kind: "item", name: item });
}

/** A stream whose construction needs an await. */
export function deferred(
  make: () => Promise<ReadableStream<Uint8Array>>,
): ReadableStream<Uint8Array> {
  return ReadableStream.from((async function* () {
    yield* await make();
  })());
}

/**
 * The item's tar events, refusing members outside the item (swapped or forged chunks), with
 * symlink targets restored: Qubes' `--xform` also rewrote the targets of symlinks, prefixing
 * the item's backup directory to relative targets (trap T14), which is undone here.
 */
export function tarEvents(
  item: string,
  tar: ReadableStream<Uint8Array>,
  volumes?: VolumeStarts,
): ReadableStream<TarEvent> {
  const subdir = item.slice(0, item.lastIndexOf("/") + 1);
  const events = mapErrors(tar, (error) => withItemName(item, error)).pipeThrough(
    new TarStream(volumes),
  );
  return mapErrors(events, (error) => withItemName(item, error)).pipeThrough(
    new TransformStream<TarEvent, TarEvent>({
      transform(event, controller) {
        if (event.type === "entry") {
          const entry = event.entry;
          if (!memberInItem(item, entry.name)) {
            throw new DamagedError({
              reason: "out-of-place",
              action: "restore item",
              subject: { kind: "item", name: item },
              detail: `it holds "${entry.name}", which lies outside it`,
            });
          }
          if (entry.kind === "symlink" && subdir !== "" && entry.linkname.startsWith(subdir)) {
            controller.enqueue({
              type: "entry",
              entry: { ...entry, linkname: entry.linkname.slice(subdir.length) },
            });
            return;
          }
        }
        controller.enqueue(event);
      },
    }),
  );
}
