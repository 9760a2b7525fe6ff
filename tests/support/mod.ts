/**
 * Test support: Qubes OS backups of formats 1-4 built with the real tools, the VM trees and
 * ext4 images that go into them, and ways to compare what comes back out.
 *
 * @example
 * ```ts
 * import { buildBackup, makeVmTree } from "../support/mod.ts";
 * await makeVmTree(templateDir, 7);
 * const built = await buildBackup({ format: 2, passphrase: "qubes", encrypted: true,
 *   volumeKiB: 20, vms: [{ name: "tpl", qid: 3, kind: "template", dir: templateDir }] }, workDir);
 * ```
 *
 * @module
 */

export * from "./backup_builder.ts";
export * from "./ext4.ts";
export * from "./qubes_xml.ts";
export * from "./vm_tree.ts";
