import assert from "node:assert/strict";
import { join } from "node:path";
import { getFiles, listFiles } from "../../lib/commands/files.ts";
import { debugfsLs, makeBigDirectoryTree, makeImage } from "./_images.ts";

const COUNT = 20_000;
const MiB = 1024 * 1024;

Deno.test(`files: a directory of ${COUNT} files (hashed and linear)`, async (t) => {
  const work = await Deno.makeTempDir({ prefix: "ext-bigdir-test-" });
  try {
    const tree = join(work, "tree");
    await makeBigDirectoryTree(tree, COUNT);
    // mke2fs -d takes minutes to fill one directory of 20 000 entries on a loaded machine:
    // the hashed one always, the linear variants with QUBES_RECOVER_SLOW_TESTS=1.
    const slow = Deno.env.get("QUBES_RECOVER_SLOW_TESTS") === "1";
    const expected = Array.from({ length: COUNT }, (_, i) => `f${String(i).padStart(5, "0")}`);
    const variants: Record<string, string[]> = {
      "ext4 (dir_index: htree)": ["-t", "ext4", "-N", "25000"],
      ...(slow
        ? {
          "ext4 -O ^dir_index": ["-t", "ext4", "-O", "^dir_index", "-N", "25000"],
          "ext2 -b 1024": ["-t", "ext2", "-b", "1024", "-N", "25000"],
        }
        : {}),
    };
    for (const [variant, options] of Object.entries(variants)) {
      await t.step(variant, async () => {
        const image = join(work, "many.img");
        await makeImage(image, tree, 160 * MiB, options);
        const listing = await listFiles(image, "/many");
        assert.equal(listing.kind, "entries");
        if (listing.kind !== "entries") return;
        assert.deepEqual(listing.entries.map((e) => e.name), expected);
        const theirs = new Map((await debugfsLs(image, "/many")).map((e) => [e.name, e.inode]));
        assert.deepEqual(new Map(listing.entries.map((e) => [e.name, e.inode])), theirs);
        const out = join(work, "out");
        const summary = await getFiles(image, ["/many"], { output: out });
        assert.equal(summary.files, COUNT);
        const names: string[] = [];
        for await (const e of Deno.readDir(join(out, "many"))) names.push(e.name);
        assert.deepEqual(names.sort(), expected);
        for (const name of [expected[0]!, expected[12_345]!, expected.at(-1)!]) {
          assert.equal(await Deno.readTextFile(join(out, "many", name)), `${name}\n`);
        }
        await Deno.remove(out, { recursive: true });
        await Deno.remove(image);
      });
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
