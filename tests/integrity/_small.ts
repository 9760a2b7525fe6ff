/**
 * Small real backups for the integrity tests: an AppVM, a template and a dom0 home, a few
 * hundred KiB in all, built with the real tools in every format and cut into several chunks.
 *
 * @module
 */

import { buildBackup, type BuiltBackup, type FixtureSpec, type FixtureVm } from "../support/mod.ts";
import { seededBytes, writeSparseFile } from "../support/vm_tree.ts";
import { sh } from "../e2e/_cli.ts";

export const PASS = "integrity";

/** Source VMs of a small backup. */
export interface SmallWorld {
  vms: FixtureVm[];
  dom0Home: { user: string; dir: string };
  /** The AppVM's folder (its private.img is 3 MiB apparent, about 300 KiB of data). */
  workDir: string;
}

/** Writes the source tree below `root`. */
export async function makeSmallWorld(root: string): Promise<SmallWorld> {
  const work = `${root}/src/appvms/work`;
  const tpl = `${root}/src/vm-templates/tpl`;
  const home = `${root}/src/home/alice`;
  for (const dir of [work, tpl, `${home}/docs`]) await Deno.mkdir(dir, { recursive: true });
  await writeSparseFile(`${work}/private.img`, 3 * 1024 * 1024, [
    [0, seededBytes(150_000, 1)],
    [2 * 1024 * 1024, seededBytes(150_000, 2)],
  ]);
  await Deno.writeTextFile(`${work}/firewall.xml`, `<QubesFirewallRules policy="allow"/>\n`);
  await Deno.writeTextFile(`${work}/whitelisted-appmenus.list`, "firefox.desktop\n");
  await writeSparseFile(`${tpl}/root.img`, 1024 * 1024, [[4096, seededBytes(60_000, 3)]]);
  await writeSparseFile(`${tpl}/private.img`, 512 * 1024, [[0, seededBytes(20_000, 4)]]);
  await Deno.writeTextFile(`${home}/docs/notes.txt`, "my notes\n");
  await Deno.writeFile(`${home}/photo.bin`, seededBytes(40_000, 5));
  return {
    vms: [
      { name: "tpl", qid: 3, kind: "template", dir: tpl },
      { name: "work", qid: 5, kind: "app", template: "tpl", dir: work },
    ],
    dom0Home: { user: "alice", dir: home },
    workDir: work,
  };
}

/** The backup variants the tests run on: one per format, chunked small. */
export const VARIANTS: ReadonlyArray<{ label: string; spec: Partial<FixtureSpec> }> = [
  { label: "format 2 encrypted", spec: { format: 2, encrypted: true, volumeKiB: 40 } },
  { label: "format 2 plain", spec: { format: 2, volumeKiB: 40 } },
  {
    label: "format 3 encrypted compressed",
    spec: { format: 3, encrypted: true, compressed: true, chunkBytes: 65536 },
  },
  { label: "format 3 plain", spec: { format: 3, chunkBytes: 65536 } },
  { label: "format 4", spec: { format: 4, compressed: true, chunkBytes: 65536, scryptLogN: 10 } },
];

/** Builds a backup of `world` in `dir`. */
export async function buildSmall(
  world: SmallWorld,
  spec: Partial<FixtureSpec>,
  dir: string,
): Promise<BuiltBackup> {
  await Deno.mkdir(dir, { recursive: true });
  return await buildBackup({
    passphrase: PASS,
    vms: world.vms,
    dom0Home: world.dom0Home,
    ...spec,
  } as FixtureSpec, dir);
}

/** Runs `test` in a new temporary folder with a small world, removed after. */
export async function withSmallWorld(
  prefix: string,
  test: (root: string, world: SmallWorld) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix });
  try {
    await test(root, await makeSmallWorld(root));
  } finally {
    await sh(`chmod -R u+w '${root}'; rm -rf '${root}'`);
  }
}
