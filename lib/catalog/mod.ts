/**
 * The VM catalogue of a backup (`qubes.xml`): which VMs it holds, their names, classes,
 * templates, labels and folders inside the backup, and which VM an archive name belongs to.
 *
 * ```ts
 * import { ownerOf, parseQubesXml } from "./lib/catalog/mod.ts";
 * const catalog = parseQubesXml(qubesXmlBytes);
 * ownerOf(catalog, "vm5/private.img.000")?.vm.name; // "work"
 * ```
 *
 * @module
 */

export type { Catalog, Dom0Home, VmKind, VmRecord } from "./types.ts";
export { parseQubesXml } from "./parse_qubes_xml.ts";
export { catalogFromCore2, CORE2_ROOT } from "./core2.ts";
export { catalogFromCore3, CORE3_ROOT } from "./core3.ts";
export { catalogForFormat1, DOM0_HOME_DIR, QUBES_BASE_DIR } from "./format1.ts";
export { ownerOf } from "./owner.ts";
export type { Owner } from "./owner.ts";
export { isSafeName } from "./safe_name.ts";
export { type ExpectedItem, expectedItems } from "./expected.ts";
export {
  childElements,
  DEFAULT_MAX_XML_DEPTH,
  DEFAULT_MAX_XML_LENGTH,
  firstChild,
  parseXml,
  textOf,
  XmlSyntaxError,
} from "./xml.ts";
export type { XmlElement, XmlLimits, XmlNode } from "./xml.ts";
