/**
 * The loop shared by `verify` and `restore`: every item of an opened backup, through a sink.
 *
 * @module
 */

import { type ExpectedItem, expectedItems } from "../catalog/expected.ts";
import { IncompleteError, InterruptedError, UsageError } from "../errors.ts";
import { normaliseName } from "../format/item_scope.ts";
import type { Backup, BackupItem } from "../format/open.ts";
import type { TarEvent } from "../tar/events.ts";

/** Which VMs to process. */
export interface SelectionOptions {
  /** VM names to process (`dom0` for the dom0 home); empty or absent: everything. */
  vms?: readonly string[];
  /** VM names to leave out (`dom0` for the dom0 home). */
  exclude?: readonly string[];
  /** Leave out the dom0 home (the same as excluding `dom0`). */
  noDom0Home?: boolean;
}

/** What {@link forEachItem} tells about each item it processes. */
export interface ItemHooks {
  /** An item is about to be read. */
  onItemStart?(item: { name: string; vm: string | undefined }): void;
  /** An item was read to the end and passed every check. */
  onItemDone?(item: { name: string; vm: string | undefined }): void;
  /** An item was passed over because it is not selected. */
  onItemSkipped?(item: { name: string; vm: string | undefined }): void;
}

/** What {@link forEachItem} does the items for: the verb of its messages ("Cannot verify"). */
export interface ItemRun extends ItemHooks {
  /** Default `restore`. */
  verb?: "restore" | "verify";
}

/** The names a selection can use: every VM with data in the backup, and `dom0`. */
function availableNames(backup: Backup): Set<string> {
  const available = new Set(
    backup.catalog.vms.filter((vm) => vm.included && vm.kind !== "admin").map((vm) => vm.name),
  );
  if (backup.catalog.dom0Home) available.add("dom0");
  return available;
}

/**
 * Which VMs to process, by name; `dom0` means the dom0 home. `undefined`: all of them.
 *
 * @param names The `--vm` names, or the whole selection.
 * @throws {UsageError} For a name that is not in the backup, or when nothing is left.
 */
export function selectionFor(
  backup: Backup,
  names: readonly string[] | SelectionOptions,
): Set<string> | undefined {
  const options: SelectionOptions = Array.isArray(names)
    ? { vms: names }
    : names as SelectionOptions;
  const vms = options.vms ?? [];
  const exclude = [...(options.exclude ?? []), ...(options.noDom0Home ? ["dom0"] : [])];
  if (vms.length === 0 && exclude.length === 0) return undefined;
  const available = availableNames(backup);
  for (const name of [...vms, ...(options.exclude ?? [])]) {
    if (!available.has(name)) {
      throw new UsageError(
        `Cannot select VM "${name}": it is not in this backup (it holds: ${
          [...available].join(", ") || "no VMs"
        })`,
      );
    }
  }
  const chosen = new Set(vms.length > 0 ? vms : available);
  for (const name of exclude) chosen.delete(name);
  if (chosen.size === 0) {
    throw new UsageError(
      `Nothing to do: every VM in this backup is left out (it holds: ${
        [...available].join(", ") || "no VMs"
      })`,
    );
  }
  return chosen;
}

/** The name a selection uses for an item's owner. */
export function ownerName(item: BackupItem): string | undefined {
  if (item.owner === undefined) return undefined;
  return item.owner.vm.kind === "admin" ? "dom0" : item.owner.vm.name;
}

/**
 * Runs `process` on each selected item and skips the rest; checks that every selected VM
 * had data in the backup, that there was anything at all, and that every item `qubes.xml`
 * says a selected VM has (see `expectedItems`) was there: a member of that name came out of
 * an item read to its end.
 *
 * @throws {IncompleteError} When a selected VM is listed but none of its items was found,
 *   when the backup holds no item at all (0 restored items is never a success), or when an
 *   item a selected VM must have is not in the backup (after every other item was processed).
 * @throws {InterruptedError} When `signal` aborts.
 */
export async function forEachItem(
  backup: Backup,
  selection: Set<string> | undefined,
  signal: AbortSignal | undefined,
  process: (item: BackupItem) => Promise<void>,
  hooks: ItemRun = {},
): Promise<void> {
  const verb = hooks.verb ?? "restore";
  const seen = new Set<string>();
  let processed = 0;
  // Expected items are found by their members (`vm5/private.img`; a folder item by its
  // folder's own member, `vm3/./` -> `vm3`), once the item that holds them was read whole.
  // An image must come out as a file, a folder item as a folder: a link in its place is not it.
  const expected = new Map(
    expectedItems(backup.catalog).map((e) => [normaliseName(e.name), kindOf(e)]),
  );
  const found = new Set<string>();
  for await (const item of backup.items()) {
    if (signal?.aborted) throw new InterruptedError();
    const owner = ownerName(item);
    const about = { name: item.name, vm: owner };
    if (selection !== undefined && (owner === undefined || !selection.has(owner))) {
      hooks.onItemSkipped?.(about);
      await item.skip();
      continue;
    }
    if (owner !== undefined) seen.add(owner);
    hooks.onItemStart?.(about);
    const members: string[] = [];
    await process({
      name: item.name,
      owner: item.owner,
      skip: () => item.skip(),
      events: () =>
        item.events().pipeThrough(
          new TransformStream<TarEvent, TarEvent>({
            transform(event, controller) {
              if (event.type === "entry") {
                const name = normaliseName(event.entry.name);
                if (expected.get(name) === event.entry.kind) members.push(name);
              }
              controller.enqueue(event);
            },
          }),
        ),
    });
    for (const name of members) found.add(name);
    processed++;
    hooks.onItemDone?.(about);
  }
  const wanted = selection ?? availableNames(backup);
  const missing = [...wanted].filter((name) => !seen.has(name));
  if (missing.length > 0) {
    throw new IncompleteError(
      `Cannot ${verb} ${missing.map((name) => `"${name}"`).join(", ")}: listed in qubes.xml, but ${
        missing.length === 1 ? "its" : "their"
      } data is not in the backup`,
    );
  }
  if (processed === 0) {
    throw new IncompleteError(
      `Cannot find any VM data in the backup: it holds only its VM list (qubes.xml)`,
    );
  }
  const absent = expectedItems(backup.catalog).filter((item) => {
    const owner = item.vm.kind === "admin" ? "dom0" : item.vm.name;
    return wanted.has(owner) && !found.has(normaliseName(item.name));
  });
  if (absent.length > 0) {
    const list = absent.map((item) =>
      item.vm.kind === "admin"
        ? `the dom0 home "${item.name}"`
        : `"${item.name}" of VM "${item.vm.name}"`
    );
    throw new IncompleteError(
      `Cannot ${verb} ${list.join(", ")}: listed in qubes.xml, but not in the backup${
        absent.length === 1 ? "" : ` (${absent.length} items missing)`
      }`,
    );
  }
}

function kindOf(item: ExpectedItem): "file" | "directory" {
  return item.vm.kind === "admin" || item.name.endsWith("/.") ? "directory" : "file";
}

/**
 * Pipes `events` into `sink`; when `signal` aborts, the failure is an {@link InterruptedError}
 * whatever the stream reported (the writers remove their partial files on abort).
 */
export async function pipeEvents<T>(
  events: ReadableStream<T>,
  sink: WritableStream<T>,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    await events.pipeTo(sink, signal === undefined ? {} : { signal });
  } catch (error) {
    if (signal?.aborted) throw new InterruptedError();
    throw error;
  }
}
