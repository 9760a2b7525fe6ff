/**
 * The dom0 home of a core2 backup whose `qubes.xml` lists no admin VM.
 *
 * @module
 */

import { finishCatalog, syntheticAdmin } from "./_catalog.ts";
import type { Catalog } from "./types.ts";

const DOM0_HOME_CHUNK = /^(dom0-home\/[^/]+?)\.[0-9]+(?:\.enc)?$/;

/**
 * When a core2 catalogue has no admin VM (the R4 client says some R2 documents lack it) and
 * `entryName` is a dom0-home chunk (`dom0-home/alice.000`), returns the catalogue with an
 * included admin VM `dom0` for that home added; otherwise returns `catalog` unchanged.
 *
 * @param catalog The catalogue from `parseQubesXml`.
 * @param entryName An outer entry name of the backup.
 * @returns `catalog`, or a new catalogue with `dom0Home` set.
 *
 * @example
 * ```ts
 * let catalog = parseQubesXml(xml);
 * for (const name of entryNames) catalog = withDom0HomeFromEntry(catalog, name);
 * catalog.dom0Home?.user; // "alice"
 * ```
 */
export function withDom0HomeFromEntry(catalog: Catalog, entryName: string): Catalog {
  if (catalog.schema !== "core2" || catalog.vms.some((vm) => vm.kind === "admin")) return catalog;
  const match = DOM0_HOME_CHUNK.exec(entryName);
  if (!match?.[1]) return catalog;
  return finishCatalog("core2", [...catalog.vms, syntheticAdmin("QubesAdminVm", match[1])]);
}
