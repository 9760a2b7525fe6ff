/**
 * The loop shared by `verify` and `restore`: every item of an opened backup, through a sink.
 *
 * @module
 */

import { type ExpectedItem, expectedItems } from "../catalog/mod.ts";
import { IncompleteError, InterruptedError, UsageError } from "../errors.ts";
import { memberInItem } from "../format/mod.ts";
import { isItemProblem, type Problem, problemOf, problemsError } from "./problems.ts";
import { normaliseName } from "../format/mod.ts";
import type { Backup, BackupItem } from "../format/mod.ts";
import type { TarEvent } from "../tar/mod.ts";

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
  /**
   * A problem was met: a damaged, missing or undecodable chunk (it stopped its item; the run
   * goes on with the next one), or an item missing from the backup (told at the end).
   */
  onProblem?(problem: Problem): void;
}

/** How {@link forEachItem} goes over the items. */
export interface RunOptions extends ItemHooks {
  /**
   * After an item failed, check each of its remaining chunks on its own and tell every
   * damaged or missing one (default), rather than only passing over them (`false`). `verify` and
   * `restore` both check, so they give the same verdict (exit code) on the same backup.
   */
  checkRest?: boolean;
  /** What the items are gone over for: the verb of its messages ("Cannot verify"). Default `restore`. */
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
      throw new UsageError({
        reason: "not-found",
        action: "select VM",
        subject: { kind: "vm", name },
        detail: `it is not in this backup (it holds: ${[...available].join(", ") || "no VMs"})`,
      });
    }
  }
  const chosen = new Set(vms.length > 0 ? vms : available);
  for (const name of exclude) chosen.delete(name);
  if (chosen.size === 0) {
    throw new UsageError({
      reason: "usage",
      detail: `Nothing to do: every VM in this backup is left out (it holds: ${
        [...available].join(", ") || "no VMs"
      })`,
    });
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
 * Every item is tried: a damaged, missing or undecodable chunk (a {@link DamagedError} or
 * {@link IncompleteError} from `process`) stops only its item, which is passed over (see
 * `BackupItem.drain`); the run goes on with the next one, and fails at the end with the worst
 * problem, carrying them all (see `problems.ts`). Any other error ends the run at once.
 *
 * @throws {DamagedError | IncompleteError} After every item was tried, when any problem was
 *   met: damaged or missing chunks, a selected VM listed but none of its items found, a
 *   backup that holds no item at all (0 restored items is never a success), or an item a
 *   selected VM must have that is not in the backup. `problemsOf(error)` lists them all.
 * @throws {InterruptedError} When `signal` aborts.
 */
export async function forEachItem(
  backup: Backup,
  selection: Set<string> | undefined,
  signal: AbortSignal | undefined,
  process: (item: BackupItem) => Promise<void>,
  options: RunOptions = {},
): Promise<void> {
  const verb = options.verb ?? "restore";
  const seen = new Set<string>();
  let processed = 0;
  const problems: Problem[] = [];
  const failed: string[] = [];
  // Checking the rest of a failed item can meet the problem that stopped it once more (a missing
  // chunk is a gap seen from both sides): each problem is told once.
  const told = new Set<string>();
  const record = (problem: Problem) => {
    const key = JSON.stringify([
      problem.item,
      problem.chunk,
      problem.error.reason,
      problem.error.message,
    ]);
    if (told.has(key)) return;
    told.add(key);
    problems.push(problem);
    options.onProblem?.(problem);
  };
  // Damage met while opening (a damaged qubes.xml): the run went on without it.
  for (const { item, error } of backup.problems ?? []) {
    record(problemOf(error, { name: item, vm: undefined }));
  }
  // Expected items are found by their members (`vm5/private.img`; a folder item by its
  // folder's own member, `vm3/./` -> `vm3`), once the item that holds them was read whole.
  // An image must come out as a file, a folder item as a folder: a link in its place is not it.
  const expected = new Map(
    expectedItems(backup.catalog).map((e) => [normaliseName(e.name), kindOf(e)]),
  );
  const found = new Set<string>();
  const items = backup.items();
  for (;;) {
    let step: IteratorResult<BackupItem>;
    try {
      step = await items.next();
    } catch (error) {
      // The backup itself ends early or breaks between items: nothing more can be read.
      if (signal?.aborted || !isItemProblem(error)) throw error;
      record(problemOf(error, undefined));
      break;
    }
    if (step.done) break;
    const item = step.value;
    if (signal?.aborted) throw new InterruptedError();
    const owner = ownerName(item);
    const about = { name: item.name, vm: owner };
    if (selection !== undefined && (owner === undefined || !selection.has(owner))) {
      options.onItemSkipped?.(about);
      await item.skip();
      continue;
    }
    if (owner !== undefined) seen.add(owner);
    options.onItemStart?.(about);
    const members: string[] = [];
    processed++;
    try {
      await process({
        name: item.name,
        owner: item.owner,
        skip: () => item.skip(),
        events: (volumes) =>
          item.events(volumes).pipeThrough(
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
    } catch (error) {
      if (signal?.aborted || !isItemProblem(error)) throw error;
      // Only this item is lost: tell it, pass over the rest of it, go on with the next one.
      failed.push(item.name);
      record(problemOf(error, about));
      try {
        await item.drain?.(
          options.checkRest ?? true
            ? (more) => record(problemOf(more as typeof error, about))
            : undefined,
        );
      } catch (drainError) {
        if (signal?.aborted || !isItemProblem(drainError)) throw drainError;
        record(problemOf(drainError, about));
        break;
      }
      continue;
    }
    for (const name of members) found.add(name);
    options.onItemDone?.(about);
  }
  const wanted = selection ?? availableNames(backup);
  const missing = [...wanted].filter((name) => !seen.has(name));
  if (missing.length > 0) {
    record(problemOf(
      new IncompleteError({
        reason: "missing",
        action: `${verb} ${missing.map((name) => `"${name}"`).join(", ")}`,
        detail: `listed in qubes.xml, but ${
          missing.length === 1 ? "its" : "their"
        } data is not in the backup`,
      }),
      undefined,
    ));
  }
  if (processed === 0 && problems.length === 0) {
    throw new IncompleteError({
      reason: "missing",
      action: "find any VM data in the backup",
      detail: "it holds only its VM list (qubes.xml)",
    });
  }
  // Items that were there but failed are told already, not again as absent.
  const absent = expectedItems(backup.catalog).filter((item) => {
    const owner = item.vm.kind === "admin" ? "dom0" : item.vm.name;
    // A VM with no data at all is told above, not again item by item.
    return wanted.has(owner) && seen.has(owner) && !found.has(normaliseName(item.name)) &&
      !failed.some((name) => memberInItem(name, item.name));
  });
  if (absent.length > 0) {
    const list = absent.map((item) =>
      item.vm.kind === "admin"
        ? `the dom0 home "${item.name}"`
        : `"${item.name}" of VM "${item.vm.name}"`
    );
    record(problemOf(
      new IncompleteError({
        reason: "missing",
        action: `${verb} ${list.join(", ")}`,
        detail: `listed in qubes.xml, but not in the backup${
          absent.length === 1 ? "" : ` (${absent.length} items missing)`
        }`,
      }),
      undefined,
    ));
  }
  if (problems.length > 0) throw problemsError(problems, processed);
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
