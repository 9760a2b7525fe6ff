/**
 * Hostile and damaged images, made by changing real ones with `debugfs -w` and byte patches:
 * each gives a notice naming the path (the rest is copied) or a one-line error, and nothing
 * is ever written outside the output directory.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { getFiles, listFiles } from "../../lib/commands/files.ts";
import { DamagedError } from "../../lib/errors.ts";
import type { Reporter } from "../../lib/reporter.ts";
import { run, runText } from "../support/_run.ts";
import { seededBytes } from "../support/vm_tree.ts";
import { makeImage } from "./_images.ts";

const MiB = 1024 * 1024;

function recorder(): Reporter & { notices: string[] } {
  const notices: string[] = [];
  return { notices, info: () => {}, warn: (m) => notices.push(m) };
}

/** Replaces the only occurrence of `from` in the image with `to` (same length). */
async function patchName(image: string, from: string, to: Uint8Array): Promise<number> {
  const bytes = await Deno.readFile(image);
  const needle = new TextEncoder().encode(from);
  let found = -1;
  for (let i = 0; i + needle.length <= bytes.length; i++) {
    if (needle.every((b, j) => bytes[i + j] === b)) {
      assert.equal(found, -1, `"${from}" occurs twice`);
      found = i;
    }
  }
  assert.notEqual(found, -1, `"${from}" not found`);
  bytes.set(to, found);
  await Deno.writeFile(image, bytes);
  return found;
}

async function debugfsWrite(image: string, ...commands: string[]): Promise<void> {
  for (const command of commands) await run("debugfs", ["-w", "-R", command, image]);
}

async function inodeOf(image: string, path: string): Promise<number> {
  const text = await runText("debugfs", ["-R", `stat "${path}"`, image]);
  return Number(text.match(/Inode: (\d+)/)![1]);
}

Deno.test("files get on hostile images: notices name the path, the rest is copied", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "ext-hostile-test-" });
  const fresh = async (name: string) => {
    const src = join(work, `src-${name}`);
    const home = join(src, "home", "user");
    await Deno.mkdir(join(home, "sub"), { recursive: true });
    await Deno.writeTextFile(join(home, "good.txt"), "good\n");
    await Deno.writeFile(join(home, "big.bin"), seededBytes(200_000, 1));
    await Deno.writeTextFile(join(home, "sub", "aXb.txt"), "x\n");
    await Deno.writeTextFile(join(home, "sub", "cQc.txt"), "c\n");
    await Deno.writeTextFile(join(home, "sub", "nuX.txt"), "latin-1\n");
    await Deno.mkdir(join(home, "zzdir"));
    await Deno.writeTextFile(join(home, "zzdir", "inside.txt"), "inside\n");
    await Deno.symlink(join(work, "outside"), join(home, "zzlnk"));
    const image = join(work, `${name}.img`);
    await makeImage(image, src, 8 * MiB, ["-t", "ext4", "-b", "4096"]);
    return image;
  };
  const getAll = async (image: string, name: string) => {
    const reporter = recorder();
    const out = join(work, `out-${name}`);
    const summary = await getFiles(image, ["/home/user"], { output: out, reporter });
    assert.equal(await Deno.readTextFile(join(out, "user", "good.txt")), "good\n");
    await assert.rejects(Deno.lstat(join(work, "outside")));
    return { notices: reporter.notices, summary, out };
  };
  try {
    await t.step("a directory cycle", async () => {
      const image = await fresh("cycle");
      await debugfsWrite(image, "ln /home/user /home/user/sub/loop");
      const { notices, summary } = await getAll(image, "cycle");
      assert.deepEqual(notices, [
        'Skipped "/home/user/sub/loop": this directory was already copied (a cycle)',
      ]);
      assert.equal(summary.damaged, 1);
    });
    await t.step("a petabyte size", async () => {
      const image = await fresh("huge");
      const ino = await inodeOf(image, "/home/user/big.bin");
      await debugfsWrite(image, "sif /home/user/big.bin size 0x4000000000000");
      const { notices } = await getAll(image, "huge");
      assert.deepEqual(notices, [
        `Skipped "/home/user/big.bin": inode ${ino}: size 1125899906842624 bytes is impossible for this file system`,
      ]);
    });
    await t.step("an extent pointing outside the image", async () => {
      const image = await fresh("outside");
      const ino = await inodeOf(image, "/home/user/big.bin");
      await debugfsWrite(image, "sif /home/user/big.bin block[5] 0x7fffffff");
      const { notices } = await getAll(image, "outside");
      assert.deepEqual(notices, [
        `Skipped "/home/user/big.bin": inode ${ino}: extent at block 0 points outside the file system`,
      ]);
    });
    await t.step("an extent tree that loops", async () => {
      const image = await fresh("loop");
      const ino = await inodeOf(image, "/home/user/big.bin");
      const stat = await runText("debugfs", ["-R", "blocks /home/user/big.bin", image]);
      const block = Number(stat.trim().split(/\s+/)[0]);
      // The root becomes an index (depth 1) whose child is a node that points at itself.
      await debugfsWrite(
        image,
        "sif /home/user/big.bin block[0] 0x0001f30a",
        "sif /home/user/big.bin block[1] 0x00010004",
        "sif /home/user/big.bin block[3] 0",
        `sif /home/user/big.bin block[4] ${block}`,
        "sif /home/user/big.bin block[5] 0",
      );
      const node = new Uint8Array(24);
      const view = new DataView(node.buffer);
      view.setUint32(0, 0x0001f30a, true);
      view.setUint32(4, 0x00010004, true);
      view.setUint32(16, block, true);
      using file = await Deno.open(image, { write: true });
      await file.seek(block * 4096, Deno.SeekMode.Start);
      await file.write(node);
      const { notices } = await getAll(image, "loop");
      assert.deepEqual(notices, [
        `Skipped "/home/user/big.bin": inode ${ino}: extent node has depth 1, expected 0`,
      ]);
    });
    await t.step('names with "/" and NUL, an inode number out of range', async () => {
      const image = await fresh("names");
      await patchName(image, "aXb.txt", new TextEncoder().encode("a/b.txt"));
      await patchName(image, "cQc.txt", new TextEncoder().encode("c\0c.txt"));
      await patchName(image, "nuX.txt", new Uint8Array([0x6e, 0x75, 0xff, 0x2e, 0x74, 0x78, 0x74]));
      const good = await patchName(image, "good.txt", new TextEncoder().encode("good.txt"));
      const patched = await Deno.readFile(image);
      new DataView(patched.buffer).setUint32(good - 8, 0x00ffffff, true);
      await Deno.writeFile(image, patched);
      const reporter = recorder();
      const out = join(work, "out-names");
      await getFiles(image, ["/home/user"], { output: out, reporter });
      assert.deepEqual(reporter.notices.sort(), [
        '"/home/user/sub/nu\ufffd.txt": its name is not UTF-8; written with U+FFFD in its place',
        'Skipped "/home/user/good.txt": inode number 16777215 is out of range (1-2048)',
        'Skipped "/home/user/sub/a/b.txt": its name contains "/" or NUL',
        'Skipped "/home/user/sub/c\0c.txt": its name contains "/" or NUL',
      ]);
      assert.equal(await Deno.readTextFile(join(out, "user", "zzdir", "inside.txt")), "inside\n");
      assert.equal(await Deno.readTextFile(join(out, "user", "sub", "nu\ufffd.txt")), "latin-1\n");
    });
    await t.step("a symlink and a directory of the same name: nothing lands outside", async () => {
      const image = await fresh("dup");
      // "zzdir" becomes a second "zzlnk" next to the symlink that points outside.
      await patchName(image, "zzdir", new TextEncoder().encode("zzlnk"));
      const reporter = recorder();
      const out = join(work, "out-dup");
      await getFiles(image, ["/home/user"], { output: out, reporter });
      assert.equal(reporter.notices.length, 1);
      assert.match(
        reporter.notices[0]!,
        /^Skipped "\/home\/user\/zzlnk": a second entry of that name/,
      );
      await assert.rejects(Deno.lstat(join(work, "outside")));
      // Whichever entry came first was copied; the other was not.
      await Deno.lstat(join(out, "user", "zzlnk"));
    });
    await t.step("a damaged superblock is one clean error", async () => {
      const image = await fresh("sb");
      const bytes = await Deno.readFile(image);
      new DataView(bytes.buffer).setUint32(1024 + 0x28, 0, true); // inodes per group
      await Deno.writeFile(image, bytes);
      await assert.rejects(
        listFiles(image, "/"),
        (e: Error) =>
          e instanceof DamagedError &&
          e.message === `Cannot read "${image}": its superblock is damaged (0 inodes per group)`,
      );
    });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
