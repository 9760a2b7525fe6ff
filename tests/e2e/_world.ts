/**
 * A small Qubes system to back up: an AppVM with an ext4 private.img, a template VM (a whole
 * directory with root.img, private.img, apps/), and a dom0 home; and the checks that a restore
 * of it is bit-exact.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { FixtureVm } from "../support/backup_builder.ts";
import { ext4FileHashes, makeExt4Image, sha256File } from "../support/ext4.ts";
import { describeTree, makeVmTree, writeSparseFile } from "../support/vm_tree.ts";

/** Source VMs and home for a fixture backup. */
export interface World {
  vms: FixtureVm[];
  dom0Home: { user: string; dir: string };
  /** Source directory of each VM by name. */
  dirs: Map<string, string>;
}

/** Options of {@link makeWorld}. */
export interface WorldOptions {
  /** Give the AppVM a private.img of this apparent size (sparse) instead of an ext4 image. */
  bigPrivateImage?: number;
}

/**
 * Creates the source VMs below `root`.
 */
export async function makeWorld(root: string, options: WorldOptions = {}): Promise<World> {
  const work = `${root}/var/appvms/work`;
  const tpl = `${root}/var/vm-templates/my-tpl`;
  const home = `${root}/home/alice`;
  for (const dir of [work, tpl, home, `${root}/trees/work`, `${root}/trees/tpl`]) {
    await Deno.mkdir(dir, { recursive: true });
  }
  await makeVmTree(`${root}/trees/work`, 11);
  await makeVmTree(`${root}/trees/tpl`, 22);
  if (options.bigPrivateImage !== undefined) {
    await writeSparseFile(`${work}/private.img`, options.bigPrivateImage, [
      [0, new TextEncoder().encode("start of a big image\n")],
      [5 * 1024 ** 3 + 12345, new TextEncoder().encode("data past 5 GiB\n")],
      [options.bigPrivateImage - 4096, new Uint8Array(4096).fill(0x5a)],
    ]);
  } else {
    await makeExt4Image(`${work}/private.img`, `${root}/trees/work`, 48 * 1024 * 1024);
  }
  await Deno.writeTextFile(
    `${work}/firewall.xml`,
    `<QubesFirewallRules policy="allow" dns="allow" icmp="allow"/>\n`,
  );
  await Deno.writeTextFile(`${work}/whitelisted-appmenus.list`, "firefox.desktop\n");
  await makeExt4Image(`${tpl}/root.img`, `${root}/trees/tpl`, 40 * 1024 * 1024);
  await makeExt4Image(`${tpl}/private.img`, `${root}/trees/work`, 8 * 1024 * 1024);
  await Deno.mkdir(`${tpl}/apps`);
  await Deno.writeTextFile(`${tpl}/apps/firefox.desktop`, "[Desktop Entry]\nName=Firefox\n");
  await Deno.symlink("firefox.desktop", `${tpl}/apps/browser.desktop`);
  await makeVmTree(home, 33);
  return {
    vms: [
      { name: "my-tpl", qid: 3, kind: "template", dir: tpl },
      { name: "work", qid: 5, kind: "app", template: "my-tpl", dir: work },
    ],
    dom0Home: { user: "alice", dir: home },
    dirs: new Map([["work", work], ["my-tpl", tpl]]),
  };
}

/**
 * Runs `test` with the world made in a new temporary folder, and removes the folder after.
 *
 * @param prefix Name prefix of the temporary folder.
 */
export async function withWorld(
  prefix: string,
  test: (root: string, world: World) => Promise<void>,
  options: WorldOptions = {},
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix });
  try {
    await test(root, await makeWorld(root, options));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Asserts that two files have the same bytes and apparent size. */
export async function assertSameFile(actual: string, expected: string): Promise<void> {
  const [a, b] = await Promise.all([Deno.stat(actual), Deno.stat(expected)]);
  assert.equal(a.size, b.size, `apparent size of ${actual}`);
  assert.equal(await sha256File(actual), await sha256File(expected), `sha256 of ${actual}`);
}

/**
 * Asserts that `out` holds the restored world: images bit-exact, the files inside the ext4
 * images equal (read with debugfs), the template directory and dom0 home equal as trees.
 */
export async function assertRestored(
  out: string,
  world: World,
  options: { vms?: string[]; deep?: boolean; dereferenced?: boolean; format4?: boolean } = {},
): Promise<void> {
  const wanted = new Set(options.vms ?? ["work", "my-tpl", "dom0"]);
  if (wanted.has("work")) {
    const work = world.dirs.get("work")!;
    // Format 4 backs up volumes and firewall.xml only (spec 13.3).
    const names = options.format4
      ? ["private.img", "firewall.xml"]
      : ["private.img", "firewall.xml", "whitelisted-appmenus.list"];
    for (const name of names) {
      await assertSameFile(`${out}/work/${name}`, `${work}/${name}`);
    }
    if (options.deep) {
      assert.deepEqual(
        await ext4FileHashes(`${out}/work/private.img`),
        await ext4FileHashes(`${work}/private.img`),
      );
    }
  } else {
    await assert.rejects(Deno.stat(`${out}/work`));
  }
  if (wanted.has("my-tpl") && options.format4) {
    const tpl = world.dirs.get("my-tpl")!;
    for (const name of ["root.img", "private.img"]) {
      await assertSameFile(`${out}/my-tpl/${name}`, `${tpl}/${name}`);
    }
  } else if (wanted.has("my-tpl")) {
    const expected = await describeTree(world.dirs.get("my-tpl")!);
    if (options.dereferenced) {
      // tar --dereference stored the file a symlink points to, in its place.
      for (const [path, what] of expected) {
        if (!what.startsWith("link ")) continue;
        const target = path.replace(/[^/]*$/, "") + what.slice(5);
        expected.set(path, expected.get(target)!);
      }
    }
    assert.deepEqual(await describeTree(`${out}/my-tpl`), expected);
  } else {
    await assert.rejects(Deno.stat(`${out}/my-tpl`));
  }
  if (wanted.has("dom0")) {
    assert.deepEqual(
      await describeTree(`${out}/dom0-home/alice`),
      await describeTree(world.dom0Home.dir),
    );
  } else {
    await assert.rejects(Deno.stat(`${out}/dom0-home`));
  }
}
