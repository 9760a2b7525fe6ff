/**
 * The loop shared by `verify` and `restore`: every item of an opened backup, through a sink.
 *
 * @module
 */

import { IncompleteError, InterruptedError, UsageError } from "../errors.ts";
import type { Backup, BackupItem } from "../format/open.ts";

/** Which VMs to process, by name; `dom0` means the dom0 home. Empty: all. */
export function selectionFor(backup: Backup, names: readonly string[]): Set<string> | undefined {
  if (names.length === 0) return undefined;
  const available = new Set(
    backup.catalog.vms.filter((vm) => vm.included && vm.kind !== "admin").map((vm) => vm.name),
  );
  if (backup.catalog.dom0Home) available.add("dom0");
  for (const name of names) {
    if (!available.has(name)) {
      throw new UsageError(
        `Cannot select VM "${name}": it is not in this backup (it holds: ${
          [...available].join(", ") || "no VMs"
        })`,
      );
    }
  }
  return new Set(names);
}

/** The name a selection uses for an item's owner. */
export function ownerName(item: BackupItem): string | undefined {
  if (item.owner === undefined) return undefined;
  return item.owner.vm.kind === "admin" ? "dom0" : item.owner.vm.name;
}

/**
 * Runs `process` on each selected item and skips the rest; checks that every selected VM
 * had data in the backup.
 *
 * @throws {IncompleteError} When a selected VM is listed but none of its items was found.
 * @throws {InterruptedError} When `signal` aborts.
 */
export async function forEachItem(
  backup: Backup,
  selection: Set<string> | undefined,
  signal: AbortSignal | undefined,
  process: (item: BackupItem) => Promise<void>,
): Promise<void> {
  const seen = new Set<string>();
  for await (const item of backup.items()) {
    if (signal?.aborted) throw new InterruptedError();
    const owner = ownerName(item);
    if (selection !== undefined && (owner === undefined || !selection.has(owner))) {
      await item.skip();
      continue;
    }
    if (owner !== undefined) seen.add(owner);
    await process(item);
  }
  const wanted = selection ?? new Set([
    ...backup.catalog.vms.filter((vm) => vm.included && vm.kind !== "admin").map((vm) => vm.name),
    ...(backup.catalog.dom0Home ? ["dom0"] : []),
  ]);
  const missing = [...wanted].filter((name) => !seen.has(name));
  if (missing.length > 0) {
    throw new IncompleteError(
      `Cannot restore ${missing.map((name) => `"${name}"`).join(", ")}: listed in qubes.xml, but ${
        missing.length === 1 ? "its" : "their"
      } data is not in the backup`,
    );
  }
}
