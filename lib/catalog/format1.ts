/**
 * The catalogue of a format-1 backup (Qubes R1, R2-beta1, R2-beta2): a plain folder tree with
 * a core2 `qubes.xml` but no `backup_*` attributes, where inclusion is read off the folders.
 *
 * @module
 */

import { DamagedError } from "../errors.ts";
import { damagedCatalog, finishCatalog, syntheticAdmin } from "./_catalog.ts";
import type { VmDraft } from "./_catalog.ts";
import { CORE2_ROOT } from "./core2.ts";
import { parseQubesXml } from "./parse_qubes_xml.ts";
import type { Catalog } from "./types.ts";

/** The folder whose subtree a format-1 backup copies (`dir_path` values live below it). */
export const QUBES_BASE_DIR = "/var/lib/qubes";
/** The folder of a format-1 backup holding the dom0 home as `dom0-home/<user>`. */
export const DOM0_HOME_DIR = "dom0-home";

/**
 * Builds the catalogue of a format-1 backup folder.
 *
 * A VM is included iff its `dir_path`, taken relative to `/var/lib/qubes`, is among
 * `presentDirs`; that relative path becomes its backup path. Any `backup_*` attributes are
 * ignored. The dom0 home is the single entry of `dom0-home/`; R1 lists no admin VM, so one
 * named `dom0` is added when the document has none.
 *
 * @param xml The backup's `qubes.xml`.
 * @param presentDirs Relative folders present in the backup (`appvms/work`,
 *   `vm-templates/fedora-14-x64`; a leading `./` and trailing `/` are ignored).
 * @param dom0HomeUsers The entries of the backup's `dom0-home/` folder (empty when absent).
 * @returns The frozen catalogue.
 * @throws {DamagedError} when `qubes.xml` is unreadable or not core2, or `dom0-home/` holds
 *   more than one entry.
 *
 * @example
 * ```ts
 * const catalog = catalogForFormat1(xml, new Set(["appvms/work"]), ["alice"]);
 * catalog.dom0Home?.backupPath; // "dom0-home/alice"
 * ```
 */
export function catalogForFormat1(
  xml: string | Uint8Array,
  presentDirs: ReadonlySet<string>,
  dom0HomeUsers: readonly string[],
): Catalog {
  const parsed = parseQubesXml(xml);
  if (parsed.schema !== "core2") {
    throw damagedCatalog(`a format-1 backup needs a <${CORE2_ROOT}> document, not <qubes>`);
  }
  if (dom0HomeUsers.length > 1) {
    const listed = dom0HomeUsers.map((user) => `"${user}"`).join(", ");
    throw new DamagedError({
      reason: "damaged",
      action: "find the dom0 home",
      detail:
        `"${DOM0_HOME_DIR}" holds ${dom0HomeUsers.length} entries (${listed}), expected one user`,
    });
  }
  const present = new Set<string>();
  for (const dir of presentDirs) {
    const relative = relativeComponents(dir);
    if (relative) present.add(relative);
  }
  const user = dom0HomeUsers[0];
  const homePath = user === undefined ? undefined : `${DOM0_HOME_DIR}/${user}`;
  let adminSeen = false;
  const drafts = parsed.vms.map((vm) => {
    const { backupPath: _path, backupSize: _size, ...rest } = vm;
    const draft: VmDraft = { ...rest, included: false };
    if (vm.kind === "admin") adminSeen = true;
    const backupPath = vm.kind === "admin" ? homePath : belowQubesBase(vm.dirPath);
    if (backupPath !== undefined && (vm.kind === "admin" || present.has(backupPath))) {
      draft.included = true;
      draft.backupPath = backupPath;
    }
    return draft;
  });
  if (!adminSeen && homePath !== undefined) drafts.push(syntheticAdmin("QubesAdminVm", homePath));
  return finishCatalog("core2", drafts);
}

/** `dir_path` relative to `/var/lib/qubes`, or `undefined` when it lies elsewhere. */
function belowQubesBase(dirPath: string | undefined): string | undefined {
  if (!dirPath?.startsWith("/")) return undefined;
  const components = dirPath.split("/").filter((c) => c !== "" && c !== ".");
  const base = QUBES_BASE_DIR.split("/").filter((c) => c !== "");
  if (components.length <= base.length || base.some((c, i) => components[i] !== c)) {
    return undefined;
  }
  return relativeComponents(components.slice(base.length).join("/"));
}

/** A relative path with empty and `.` components removed; `undefined` if absolute or with `..`. */
function relativeComponents(path: string): string | undefined {
  if (path.startsWith("/")) return undefined;
  const components = path.split("/").filter((c) => c !== "" && c !== ".");
  if (components.length === 0 || components.includes("..")) return undefined;
  return components.join("/");
}
