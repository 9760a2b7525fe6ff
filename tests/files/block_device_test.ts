/**
 * `files` on block devices, as a user reads a VM's volume or a disk's partition in place
 * (`/dev/qubes_dom0/vm-work-private`, `/dev/sdb1`): a read-only loop device over an image made
 * by `mkfs.ext4 -d`, and one over a GPT disk image. A block device's status says size 0; the
 * reader must find its end, and the release's permissions must let Deno open it.
 *
 * Needs root and the loop driver (`losetup`), which the test machines have; ignored elsewhere.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, sh } from "../e2e/_cli.ts";
import { makeVmTree } from "../support/vm_tree.ts";
import { describeFull, makeImage, makePartitionedDisk } from "./_images.ts";

const canLoop = Deno.uid() === 0 && (() => {
  try {
    return Deno.statSync("/dev/loop-control").isCharDevice === true;
  } catch {
    return false;
  }
})();

/** Runs `body` with `image` attached read-only as a loop device; always detaches it. */
async function withLoop(image: string, body: (device: string) => Promise<void>): Promise<void> {
  const device = (await sh(`losetup --find --show --read-only '${image}'`)).trim();
  assert.match(device, /^\/dev\/loop\d+$/);
  try {
    await body(device);
  } finally {
    await sh(`losetup -d '${device}'`);
  }
}

Deno.test({
  name: "files on block devices (loop devices over a bare and a GPT image)",
  ignore: !canLoop,
  fn: async (t) => {
    const work = await Deno.makeTempDir({ prefix: "qr-files-blockdev-" });
    try {
      const tree = join(work, "tree");
      await makeVmTree(join(tree, "home", "user"), 5);
      const expected = await describeFull(join(tree, "home"));

      await t.step("bare file system: ls, cat, get", async () => {
        const image = join(work, "private.img");
        await makeImage(image, tree, 96 * 1024 * 1024, ["-t", "ext4"]);
        await withLoop(image, async (device) => {
          const ls = await runCli(["files", "ls", device, "/home/user"]);
          assert.equal(ls.code, 0, ls.stderr);
          assert.ok(ls.stdout.split("\n").includes("ünïcödé/"), ls.stdout);
          const cat = await runCli(["files", "cat", device, "/home/user/ünïcödé/日本語.txt"]);
          assert.equal(cat.code, 0, cat.stderr);
          assert.equal(
            cat.stdout,
            await Deno.readTextFile(join(tree, "home", "user", "ünïcödé", "日本語.txt")),
          );
          const out = join(work, "out-bare");
          const get = await runCli(["files", "get", device, "/home/user", "--output", out]);
          assert.equal(get.code, 0, get.stderr);
          assert.deepEqual(await describeFull(out), expected);
        });
      });

      await t.step("GPT disk: partitions listed, then one chosen", async () => {
        const disk = join(work, "disk.img");
        await makePartitionedDisk(
          disk,
          "label: gpt\nstart=2048, size=200704, type=L\n",
          2048,
          tree,
          {
            diskBytes: 112 * 1024 * 1024,
            fsSize: `${200704 / 2}k`,
          },
        );
        await withLoop(disk, async (device) => {
          const list = await runCli(["files", "ls", device]);
          assert.equal(list.code, 0, list.stderr);
          assert.match(list.stdout, /^ +1 +98\.0 MiB +Linux filesystem +\(ext file system\)$/m);
          const out = join(work, "out-gpt");
          const get = await runCli([
            "files",
            "get",
            device,
            "--partition",
            "1",
            "home/user",
            "--output",
            out,
          ]);
          assert.equal(get.code, 0, get.stderr);
          assert.deepEqual(await describeFull(out), expected);
        });
      });
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
