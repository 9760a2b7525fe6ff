/**
 * Format 1 (R1, R2-beta1/2): a directory holding `qubes.xml` and copies of the VM files at
 * their paths under /var/lib/qubes (`appvms/<name>/…`, `vm-templates/<name>/…`,
 * `servicevms/<name>/…`) plus `dom0-home/<user>/…`, copied with `cp -rp --sparse=always`
 * (spec §12).
 *
 * @module
 */

import { join } from "node:path";
import type { BuiltBackup, BuiltItem } from "./backup_builder.ts";
import type { Plan } from "./_plan.ts";
import { run } from "./_run.ts";

/** Writes a format-1 backup directory at `path`. */
export async function writeFormat1(plan: Plan, path: string, _stage: string): Promise<BuiltBackup> {
  await Deno.mkdir(path);
  await Deno.writeTextFile(join(path, "qubes.xml"), plan.qubesXml);
  const names = ["qubes.xml"];
  const items: BuiltItem[] = [{ owner: "", subdir: "", base: "qubes.xml", chunks: ["qubes.xml"] }];
  for (const item of plan.items) {
    const folder = item.subdir.replace(/\/$/, "");
    let copied: string;
    if (item.base === ".") {
      const parent = join(path, folder, "..");
      await Deno.mkdir(parent, { recursive: true });
      await run("cp", ["-rp", "--sparse=always", item.dir, join(path, folder)]);
      copied = folder;
    } else {
      await Deno.mkdir(join(path, folder), { recursive: true });
      await run("cp", ["-rp", "--sparse=always", join(item.dir, item.base), join(path, folder)]);
      copied = `${folder}/${item.base}`;
    }
    names.push(copied);
    items.push({ owner: item.owner, subdir: item.subdir, base: item.base, chunks: [copied] });
  }
  return { path, chunkNames: names, items, qubesXml: plan.qubesXml };
}
