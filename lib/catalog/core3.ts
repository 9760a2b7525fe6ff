/**
 * The core3 `qubes.xml` schema of Qubes R4.x (backup format 4): `<qubes>` with a label table and
 * `<domain class="…">` elements whose facts are `<property>` and `<feature>` children.
 *
 * @module
 */

import {
  damagedCatalog,
  draftRecord,
  finishCatalog,
  normalizeBackupPath,
  parseUnsigned,
} from "./_catalog.ts";
import type { VmDraft } from "./_catalog.ts";
import type { Catalog, VmKind } from "./types.ts";
import { childElements, firstChild, textOf } from "./xml.ts";
import type { XmlElement } from "./xml.ts";

/** The root element name of a core3 document. */
export const CORE3_ROOT = "qubes";

const KINDS: Readonly<Record<string, VmKind>> = {
  AdminVM: "admin",
  TemplateVM: "template",
  StandaloneVM: "standalone",
  AppVM: "app",
  DispVM: "disposable",
};
const FALSE_TEXTS = new Set(["", "0", "false"]);

/**
 * Reads a core3 document (root `<qubes>`).
 *
 * A domain is included iff its `backup-content` feature has text other than empty, `0` or
 * `False`; its `backup-path` feature loses the trailing slash core3 writes. Labels are
 * resolved through `<labels>` ids (`label-4` → `green`); a plain label name is kept as is.
 *
 * @param root The root element.
 * @returns The catalogue, records in document order.
 * @throws {DamagedError} when the document has no `<domains>` element.
 *
 * @example
 * ```ts
 * const catalog = catalogFromCore3(parseXml(
 *   '<qubes><labels><label id="label-1">red</label></labels><domains>' +
 *     '<domain class="AppVM"><properties><property name="name">work</property>' +
 *     '<property name="label">label-1</property></properties></domain></domains></qubes>',
 * ));
 * catalog.vms[0]?.label; // "red"
 * ```
 */
export function catalogFromCore3(root: XmlElement): Catalog {
  const domains = firstChild(root, "domains");
  if (!domains) throw damagedCatalog("the <qubes> document has no <domains> element");
  const labels = new Map<string, string>();
  const table = firstChild(root, "labels");
  if (table) {
    for (const label of childElements(table, "label")) {
      const id = label.attributes.get("id");
      if (id !== undefined) labels.set(id, textOf(label));
    }
  }
  return finishCatalog(
    "core3",
    childElements(domains, "domain").map((d) => core3Record(d, labels)),
  );
}

function core3Record(domain: XmlElement, labels: ReadonlyMap<string, string>): VmDraft {
  const klass = domain.attributes.get("class") ?? "";
  const kind = KINDS[klass] ?? "other";
  const properties = namedTexts(domain, "properties", "property");
  const features = namedTexts(domain, "features", "feature");
  const vm = draftRecord(kind === "admin" ? "dom0" : properties.get("name") ?? "", klass, kind);
  const qid = parseUnsigned(properties.get("qid")) ?? (kind === "admin" ? 0 : undefined);
  if (qid !== undefined) vm.qid = qid;
  const template = properties.get("template");
  if (template) vm.template = template;
  const label = properties.get("label");
  if (label) vm.label = labels.get(label) ?? label;
  const content = features.get("backup-content")?.trim().toLowerCase();
  vm.included = content !== undefined && !FALSE_TEXTS.has(content);
  const backupPath = normalizeBackupPath(features.get("backup-path"));
  if (backupPath !== undefined) vm.backupPath = backupPath;
  const backupSize = parseUnsigned(features.get("backup-size"));
  if (backupSize !== undefined) vm.backupSize = backupSize;
  const volumes = firstChild(domain, "volume-config");
  if (volumes) {
    vm.backupVolumes = Object.freeze(
      childElements(volumes, "volume")
        .filter((v) => v.attributes.get("save_on_stop")?.trim().toLowerCase() === "true")
        .map((v) => v.attributes.get("name") ?? "")
        .filter((name) => /^[A-Za-z0-9_-]+$/.test(name)),
    );
  }
  return vm;
}

/** `<group><item name="n">text</item>…</group>` as a map; a later duplicate wins, as in Qubes. */
function namedTexts(domain: XmlElement, group: string, item: string): Map<string, string> {
  const values = new Map<string, string>();
  const container = firstChild(domain, group);
  if (!container) return values;
  for (const element of childElements(container, item)) {
    const name = element.attributes.get("name");
    if (name !== undefined) values.set(name, textOf(element));
  }
  return values;
}
