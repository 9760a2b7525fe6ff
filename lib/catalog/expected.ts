/**
 * What a backup must hold, as its `qubes.xml` says: the items every included VM contributes
 * (spec section 13). A backup that lacks one of them is incomplete, however intact the rest is:
 * this is what keeps a restore from reporting success for a VM whose `private.img` is gone
 * (Qubes issues 3498, 6236).
 *
 * @module
 */

import type { Catalog, VmRecord } from "./types.ts";

/** One item the backup must hold. */
export interface ExpectedItem {
  /** The VM it belongs to (the admin VM for the dom0 home). */
  readonly vm: VmRecord;
  /** The item's name inside the backup: `vm5/private.img`, `vm3/.`, `dom0-home/alice`. */
  readonly name: string;
}

/**
 * The items an included VM's data must consist of, by the rules of the Qubes release that
 * wrote the catalogue:
 *
 * - core2 (formats 2, 3): a template VM is one item, its whole folder (`vm3/.`); every other
 *   AppVM, NetVM, ProxyVM or HVM has `private.img`, and one not based on a template (standalone,
 *   "updateable") also `root.img` (R2/R3 `backup_prepare`). Disposable VMs and unknown classes
 *   are not required to hold anything.
 * - core3 (format 4): one `<volume>.img` per volume its `<volume-config>` marks `save_on_stop`
 *   (R4 `get_files_to_backup`); nothing when the domain has no `<volume-config>`.
 * - the dom0 home, when the admin VM is included: `dom0-home/<user>`.
 *
 * Optional files (`firewall.xml`, `icon.png`, appmenu lists, `notes.txt`, ...) are never
 * required: whether they existed is not recorded anywhere.
 *
 * @param catalog A catalogue from `parseQubesXml` (formats 2-4).
 * @returns The expected items, in catalogue order.
 *
 * @example
 * ```ts
 * expectedItems(parseQubesXml(xml)).map((item) => item.name); // ["vm5/private.img", "vm3/."]
 * ```
 */
export function expectedItems(catalog: Catalog): ExpectedItem[] {
  const items: ExpectedItem[] = [];
  for (const vm of catalog.vms) {
    if (!vm.included || !vm.backupPath) continue;
    for (const rest of expectedRests(catalog, vm)) {
      items.push({ vm, name: rest === "" ? vm.backupPath : `${vm.backupPath}/${rest}` });
    }
  }
  return items;
}

function expectedRests(catalog: Catalog, vm: VmRecord): string[] {
  if (vm.kind === "admin") return catalog.dom0Home ? [""] : [];
  if (catalog.schema === "core3") {
    return (vm.backupVolumes ?? []).map((volume) => `${volume}.img`);
  }
  switch (vm.kind) {
    case "template":
      return ["."];
    case "app":
      return ["private.img"];
    case "standalone":
      return ["private.img", "root.img"];
    default:
      return [];
  }
}
