/**
 * The format-3 emergency procedure of RECOVERY.txt, run with the real tools on a converted
 * backup: `tar -i -x` of the outer archive, `openssl dgst -sha512 -hmac` against every `.hmac`,
 * then per item `cat` of its chunks | `openssl enc -d -aes-256-cbc -md md5` | `gzip -d` |
 * `tar -x`. Nothing here imports lib/.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describeTree, sha256File } from "../support/mod.ts";
import type { World } from "../e2e/_world.ts";

async function sh(script: string, env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: ["-c", `set -euo pipefail\n${script}`],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `${script}\n${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

/** The outer entry names in archive order, as GNU tar lists them. */
export async function outerNames(backup: string): Promise<string[]> {
  return (await sh(`tar -i -tf "$B"`, { B: backup })).split("\n").filter((n) => n !== "");
}

/** The item names of a format-3 outer listing, in order (`qubes.xml`, `vm5/private.img`, ...). */
export function itemsOf(names: string[]): Map<string, string[]> {
  const items = new Map<string, string[]>();
  for (const name of names) {
    const match = /^(.*)\.([0-9]{3,})$/.exec(name);
    if (!match) continue;
    const chunks = items.get(match[1]!) ?? [];
    chunks.push(name);
    items.set(match[1]!, chunks);
  }
  return items;
}

/**
 * Restores every item of a format-3 backup with the real tools into `out` and returns the
 * item names.
 */
export async function manualRestore(
  backup: string,
  out: string,
  pass: string,
): Promise<string[]> {
  const work = `${out}.outer`;
  await Deno.mkdir(work, { recursive: true });
  await Deno.mkdir(out, { recursive: true });
  await sh(`tar -i -xf "$B" -C "$W"`, { B: backup, W: work });
  const header = await Deno.readTextFile(`${work}/backup-header`);
  const encrypted = /^encrypted=True$/m.test(header);
  const compressed = /^compressed=True$/m.test(header);
  const names = await outerNames(backup);
  for (const name of names.filter((n) => !n.endsWith(".hmac"))) {
    const ours = await sh(`openssl dgst -sha512 -hmac "$P" < "$W/$N"`, {
      P: pass,
      W: work,
      N: name,
    });
    const theirs = await Deno.readTextFile(`${work}/${name}.hmac`);
    assert.equal(ours.split("=").pop()!.trim(), theirs.split("=").pop()!.trim(), name);
  }
  const items = itemsOf(names);
  for (const [item, chunks] of items) {
    const files = chunks.map((c) => `"${work}/${c}"`).join(" ");
    await sh(
      `cat ${files} ${encrypted ? `| openssl enc -d -aes-256-cbc -md md5 -pass pass:"$P"` : ""} ${
        compressed ? "| gzip -d" : ""
      } | tar -xf - -C "$O"`,
      { P: pass, O: out },
    );
    assert.ok(item.length > 0);
  }
  await Deno.remove(work, { recursive: true });
  return [...items.keys()];
}

/** Link targets with Qubes' `--xform` prefix (trap T14) taken off, for comparisons. */
function withoutPrefix(tree: Map<string, string>, prefix: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const [path, what] of tree) {
    result.set(
      path,
      what.startsWith(`link ${prefix}`) ? `link ${what.slice(5 + prefix.length)}` : what,
    );
  }
  return result;
}

/**
 * Asserts that a manual restore in `out` holds the world: VM files bit-exact, the template
 * folder and dom0 home equal as trees.
 *
 * @param paths Backup path of each VM (`vm5`, `appvms/work`) and of the home.
 */
export async function assertManuallyRestored(
  out: string,
  world: World,
  paths: { work: string; tpl: string },
): Promise<void> {
  const work = world.dirs.get("work")!;
  for (const name of ["private.img", "firewall.xml", "whitelisted-appmenus.list"]) {
    const [a, b] = await Promise.all([
      Deno.stat(`${out}/${paths.work}/${name}`),
      Deno.stat(`${work}/${name}`),
    ]);
    assert.equal(a.size, b.size, name);
    assert.equal(
      await sha256File(`${out}/${paths.work}/${name}`),
      await sha256File(`${work}/${name}`),
    );
  }
  const image = await Deno.stat(`${out}/${paths.work}/private.img`);
  assert.ok((image.blocks ?? 0) * 512 < image.size, "GNU tar restored the image sparse");
  assert.deepEqual(
    withoutPrefix(await describeTree(`${out}/${paths.tpl}`), `${paths.tpl}/`),
    await describeTree(world.dirs.get("my-tpl")!),
  );
  assert.deepEqual(
    withoutPrefix(await describeTree(`${out}/dom0-home/alice`), "dom0-home/"),
    await describeTree(world.dom0Home.dir),
  );
}
