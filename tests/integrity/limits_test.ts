/**
 * Issue 9, point 5: memory before authentication. A chunk larger than its format's chunk size
 * is refused from its size, before it is read; a sparse map with more entries than its image
 * can have is refused from its count, before its entries are kept.
 */

import assert from "node:assert/strict";
import { DamagedError } from "../../lib/errors.ts";
import { MAX_SPARSE_ENTRIES, SparseMapTextParser } from "../../lib/tar/sparse.ts";
import { runCli, sh } from "../e2e/_cli.ts";
import { assertOneLineError, repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, withSmallWorld } from "./_small.ts";

Deno.test("chunks larger than the format's chunk size are refused before they are read", async (t) => {
  await withSmallWorld("qr-limits-", async (root, world) => {
    const built = await buildSmall(world, { format: 3, chunkBytes: 65536 }, `${root}/b`);
    const entries = `${root}/entries`;
    const names = await untar(built.path, entries);
    const chunk = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
      .chunks[1]!;
    for (
      const [label, size, message] of [
        ["1000 MiB", 1000 * 1024 * 1024, /more than the limit of 105906176/],
        ["100 MiB and one byte", 100 * 1024 * 1024 + 1, /more than the 104857600 bytes/],
      ] as const
    ) {
      await t.step(label, async () => {
        const dir = `${root}/case-${size}`;
        await sh(`cp -a '${entries}' '${dir}' && truncate -s ${size} '${dir}/${chunk}'`);
        // The untarred folder: no need to write the big entry into an archive.
        const result = await runCli(["verify", dir], { passphrase: PASS });
        const line = assertOneLineError(result, 4);
        assert.ok(line.includes(chunk), line);
        assert.match(line, message);
        if (size < 200 * 1024 * 1024) {
          await repack(dir, names, `${dir}.backup`);
          const packed = await runCli(["verify", `${dir}.backup`], { passphrase: PASS });
          assert.match(assertOneLineError(packed, 4), message);
        }
        await sh(`rm -rf '${dir}' '${dir}.backup'`);
      });
    }
  });
});

Deno.test("SparseMapTextParser refuses a map larger than its image from its count", () => {
  const text = (s: string) => new TextEncoder().encode(s);
  // 1000 entries cannot describe a 4 KiB file (at most 8 blocks + 2).
  assert.throws(
    () => new SparseMapTextParser(1 << 30, "a", 4096).push(text("1000\n")),
    (error) =>
      error instanceof DamagedError && /more than a file of 4096 bytes/.test(error.message),
  );
  // Nor more than MAX_SPARSE_ENTRIES for any file.
  assert.throws(
    () => new SparseMapTextParser(2 ** 40, "a", 2 ** 50).push(text(`${MAX_SPARSE_ENTRIES + 1}\n`)),
    DamagedError,
  );
  const fine = new SparseMapTextParser(1024, "a", 4096);
  fine.push(text("2\n0\n512\n2048\n512\n"));
  assert.deepEqual(fine.map, { offsets: [0, 2048], sizes: [512, 512] });
});
