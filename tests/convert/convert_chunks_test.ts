/**
 * Chunking and the hard inner archives: items cut into many chunks (small chunk sizes stand in
 * for 100 MiB), the empty trailing chunk of a stream that fills its last chunk exactly (trap
 * T12), and a format-2 image whose sparse map spans several tar volumes (the GNU tar
 * multi-volume sparse bug, trap T9) converted into one stream GNU tar extracts.
 */

import assert from "node:assert/strict";
import { convertBackup } from "../../lib/convert/mod.ts";
import { chunkName } from "../../lib/convert/backup_writer.ts";
import { verifyBackup } from "../../lib/commands/mod.ts";
import { buildBackup } from "../support/backup_builder.ts";
import { seededBytes, sha256File, writeSparseFile } from "../support/mod.ts";
import { runCli } from "../e2e/_cli.ts";
import { assertRestored, withWorld } from "../e2e/_world.ts";
import { assertManuallyRestored, itemsOf, manualRestore, outerNames } from "./_manual.ts";

const PASS = "qubes";
const pass = () => Promise.resolve(new TextEncoder().encode(PASS));

async function entrySizes(backup: string): Promise<Map<string, number>> {
  const out = await new Deno.Command("tar", { args: ["-i", "-tvf", backup], stdout: "piped" })
    .output();
  const sizes = new Map<string, number>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const match = /^\S+ \S+ +(\d+) \S+ \S+ (.*)$/.exec(line);
    if (match) sizes.set(match[2]!, Number(match[1]));
  }
  return sizes;
}

Deno.test("convert cuts items into chunks of the given size, with the trailing empty chunk", async (t) => {
  await withWorld("qr-convert-chunks-", async (root, world) => {
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      vms: world.vms,
      dom0Home: world.dom0Home,
      volumeKiB: 1024,
    }, root);

    await t.step(
      "64 KiB chunks, encrypted and compressed: one openssl stream per item",
      async () => {
        const target = `${root}/small-chunks.v3`;
        const summary = await convertBackup(built.path, target, {
          passphrase: pass,
          compress: true,
          chunkSize: 65536,
        });
        assert.equal(summary.sourceFormat, 2);
        const sizes = await entrySizes(target);
        const items = itemsOf(await outerNames(target));
        const chunks = items.get("appvms/work/private.img")!;
        assert.ok(chunks.length > 3, `private.img in ${chunks.length} chunks`);
        chunks.forEach((name, i) => {
          assert.equal(name, chunkName("appvms/work/private.img", i));
          if (i < chunks.length - 1) assert.equal(sizes.get(name), 65536, name);
        });
        const manual = `${root}/manual-small`;
        await manualRestore(target, manual, PASS);
        await assertManuallyRestored(manual, world, {
          work: "appvms/work",
          tpl: "vm-templates/my-tpl",
        });
        const out = `${root}/out-small`;
        const restored = await runCli(["restore", target, "--output", out], { passphrase: PASS });
        assert.equal(restored.code, 0, restored.stderr);
        await assertRestored(out, world);
      },
    );

    await t.step("a stream that fills its chunks exactly ends with an empty chunk", async () => {
      const target = `${root}/exact.v3`;
      // GNU tar pads an inner archive to 10240 bytes: single-volume items fill their last chunk
      // (joined multi-volume items need not: the fixture's volumes are not whole records).
      await convertBackup(built.path, target, {
        passphrase: pass,
        compress: false,
        encrypt: false,
        chunkSize: 10240,
      });
      const sizes = await entrySizes(target);
      const items = itemsOf(await outerNames(target));
      let empty = 0;
      for (const [item, chunks] of items) {
        const last = sizes.get(chunks.at(-1)!)!;
        assert.ok(last < 10240, item);
        for (const name of chunks.slice(0, -1)) assert.equal(sizes.get(name), 10240, name);
        if (last === 0) empty++;
      }
      assert.ok(empty >= 3, `${empty} items end with an empty chunk`);
      const summary = await verifyBackup(target, { passphrase: pass });
      assert.equal(summary.format, 3);
      const manual = `${root}/manual-exact`;
      await manualRestore(target, manual, PASS);
      await assertManuallyRestored(manual, world, {
        work: "appvms/work",
        tpl: "vm-templates/my-tpl",
      });
    });
  });
});

Deno.test("chunk names grow past 999 without wrapping", () => {
  assert.equal(chunkName("vm5/private.img", 0), "vm5/private.img.000");
  assert.equal(chunkName("vm3/.", 7), "vm3/..007");
  assert.equal(chunkName("vm5/private.img", 1000), "vm5/private.img.1000");
});

Deno.test("an image whose sparse map spans tar volumes converts into one stream GNU tar reads", async () => {
  const root = await Deno.makeTempDir({ prefix: "qr-convert-holes-" });
  try {
    const dir = `${root}/var/appvms/holey`;
    await Deno.mkdir(dir, { recursive: true });
    // 1500 runs: a 36 000-byte map, longer than one 20 KiB volume.
    const runs: Array<[number, Uint8Array]> = [];
    for (let i = 0; i < 1500; i++) runs.push([i * 16384, seededBytes(4096, i + 1)]);
    await writeSparseFile(`${dir}/private.img`, 1500 * 16384 + 65536, runs);
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      volumeKiB: 20,
      vms: [{ name: "holey", qid: 7, kind: "app", dir, items: ["private.img"] }],
    }, root);
    const multi = await new Deno.Command("bash", {
      args: ["-c", `tar -i -tf '${built.path}' | grep -c '^vm7/private.img.[0-9]*$'`],
      stdout: "piped",
    }).output();
    assert.ok(Number(new TextDecoder().decode(multi.stdout)) > 3, "the image spans volumes");
    const target = `${root}/holey.v3`;
    const result = await runCli(["convert", built.path, "--output", target], { passphrase: PASS });
    assert.equal(result.code, 0, result.stderr);
    const manual = `${root}/manual`;
    await manualRestore(target, manual, PASS);
    assert.equal(
      await sha256File(`${manual}/vm7/private.img`),
      await sha256File(`${dir}/private.img`),
    );
    const out = `${root}/out`;
    const restored = await runCli(["restore", target, "--output", out], { passphrase: PASS });
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(
      await sha256File(`${out}/holey/private.img`),
      await sha256File(`${dir}/private.img`),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
