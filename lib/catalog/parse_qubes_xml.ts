/**
 * Reads a backup's `qubes.xml` in either schema.
 *
 * @module
 */

import { damagedCatalog } from "./_catalog.ts";
import { catalogFromCore2, CORE2_ROOT } from "./core2.ts";
import { catalogFromCore3, CORE3_ROOT } from "./core3.ts";
import type { Catalog } from "./types.ts";
import { parseXml, XmlSyntaxError } from "./xml.ts";
import type { XmlLimits } from "./xml.ts";

/**
 * Parses a backup's `qubes.xml`: core2 (`<QubesVmCollection>`, formats 1-3) or core3
 * (`<qubes>`, format 4), chosen by the root element.
 *
 * @param xml The document, as text or bytes (UTF-8 unless the XML declaration says otherwise).
 * @param limits XML size and depth bounds (defaults: 16 MiB, 256 levels).
 * @returns The frozen catalogue.
 * @throws {DamagedError} `Cannot read qubes.xml: …` when the document is not well-formed XML,
 *   declares a DOCTYPE, has another root element, or lacks the core3 `<domains>`.
 *
 * @example
 * ```ts
 * const catalog = parseQubesXml(await Deno.readFile("qubes.xml"));
 * for (const vm of catalog.vms) if (vm.included) console.log(vm.name, vm.backupPath);
 * ```
 */
export function parseQubesXml(xml: string | Uint8Array, limits?: XmlLimits): Catalog {
  let root;
  try {
    root = parseXml(xml, limits);
  } catch (error) {
    if (error instanceof XmlSyntaxError) throw damagedCatalog(error.detail, { cause: error });
    throw error;
  }
  if (root.name === CORE2_ROOT) return catalogFromCore2(root);
  if (root.name === CORE3_ROOT) return catalogFromCore3(root);
  throw damagedCatalog(
    `root element "${root.name}" is neither "${CORE2_ROOT}" nor "${CORE3_ROOT}"`,
  );
}
