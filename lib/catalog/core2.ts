/**
 * The core2 `qubes.xml` schema of Qubes R1, R2 and R3.x (backup formats 1, 2 and 3):
 * `<QubesVmCollection>` with one element per VM, named after its class, facts in attributes.
 *
 * @module
 */

import { draftRecord, finishCatalog, normalizeBackupPath, parseUnsigned } from "./_catalog.ts";
import type { VmDraft } from "./_catalog.ts";
import type { Catalog, VmKind } from "./types.ts";
import { childElements } from "./xml.ts";
import type { XmlElement } from "./xml.ts";

/** The root element name of a core2 document. */
export const CORE2_ROOT = "QubesVmCollection";

const TEMPLATE_CLASSES = new Set(["QubesTemplateVm", "QubesTemplateHVm"]);
const ADMIN_CLASSES = new Set(["QubesAdminVm", "QubesAdminVM"]);
const VM_CLASSES = new Set(["QubesAppVm", "QubesHVm", "QubesNetVm", "QubesProxyVm"]);
const DISPOSABLE_CLASS = "QubesDisposableVm";

/**
 * Reads a core2 document (root `<QubesVmCollection>`).
 *
 * A VM is included iff `backup_content="True"` (its `backup_path` may be stale otherwise); the
 * template is resolved from `template_qid` through the qids of the document; a class or qid 0
 * marks the admin VM, whose included `backup_path` gives the dom0 home.
 *
 * @param root The root element.
 * @returns The catalogue, records in document order.
 *
 * @example
 * ```ts
 * const catalog = catalogFromCore2(parseXml(
 *   '<QubesVmCollection><QubesAppVm qid="5" name="work" template_qid="none"' +
 *     ' backup_content="True" backup_path="vm5"/></QubesVmCollection>',
 * ));
 * catalog.vms[0]?.kind; // "standalone"
 * ```
 */
export function catalogFromCore2(root: XmlElement): Catalog {
  const elements = childElements(root);
  const namesByQid = new Map<number, string>();
  for (const element of elements) {
    const qid = parseUnsigned(element.attributes.get("qid"));
    const name = element.attributes.get("name");
    if (qid !== undefined && name !== undefined && !namesByQid.has(qid)) namesByQid.set(qid, name);
  }
  return finishCatalog("core2", elements.map((element) => core2Record(element, namesByQid)));
}

function core2Record(element: XmlElement, namesByQid: ReadonlyMap<number, string>): VmDraft {
  const attributes = element.attributes;
  const qid = parseUnsigned(attributes.get("qid"));
  const templateQid = attributes.get("template_qid")?.trim();
  const basedOnTemplate = templateQid !== undefined && templateQid.toLowerCase() !== "none";
  const kind = core2Kind(element.name, qid, basedOnTemplate);
  const vm = draftRecord(
    attributes.get("name") ?? (kind === "admin" ? "dom0" : ""),
    element.name,
    kind,
  );
  if (qid !== undefined) vm.qid = qid;
  if (basedOnTemplate && (kind === "app" || kind === "disposable" || kind === "other")) {
    const template = namesByQid.get(parseUnsigned(templateQid) ?? -1);
    if (template !== undefined) vm.template = template;
  }
  const label = attributes.get("label");
  if (label) vm.label = label;
  vm.included = attributes.get("backup_content") === "True";
  const backupPath = normalizeBackupPath(attributes.get("backup_path"));
  if (backupPath !== undefined) vm.backupPath = backupPath;
  const backupSize = parseUnsigned(attributes.get("backup_size"));
  if (backupSize !== undefined) vm.backupSize = backupSize;
  const dirPath = attributes.get("dir_path");
  if (dirPath !== undefined && dirPath !== "None") vm.dirPath = dirPath;
  return vm;
}

function core2Kind(klass: string, qid: number | undefined, basedOnTemplate: boolean): VmKind {
  if (ADMIN_CLASSES.has(klass) || qid === 0) return "admin";
  if (TEMPLATE_CLASSES.has(klass)) return "template";
  if (klass === DISPOSABLE_CLASS) return "disposable";
  if (VM_CLASSES.has(klass)) return basedOnTemplate ? "app" : "standalone";
  return "other";
}
