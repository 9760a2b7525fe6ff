/**
 * Format 4 end to end: items tarred (optionally compressed), cut into chunks, each chunk an
 * scrypt file under `<backup-id>!<name>!<passphrase>`, as Qubes R4.x writes them.
 */

import assert from "node:assert/strict";
import { buildBackup, type FixtureSpec } from "../support/backup_builder.ts";
import { runCli, sh } from "./_cli.ts";
import { assertRestored, withWorld } from "./_world.ts";

const PASS = "format four";

Deno.test("restore of format 4 backups made by the real tools is bit-exact", async (t) => {
  await withWorld("qr-e2e-v4-", async (root, world) => {
    const base: FixtureSpec = {
      format: 4,
      passphrase: PASS,
      vms: world.vms,
      dom0Home: world.dom0Home,
      chunkBytes: 1024 * 1024,
      scryptLogN: 10,
    };
    const variants: Array<[string, Partial<FixtureSpec>]> = [
      ["gzip (the default)", { compressed: true }],
      ["not compressed", {}],
      ["bzip2", { compressed: true, compressionFilter: "bzip2" }],
      ["xz", { compressed: true, compressionFilter: "xz" }],
      ["zstd", { compressed: true, compressionFilter: "zstd" }],
      ["volumes as PAX sparse 1.0 (like qubes.tarwriter)", {
        compressed: true,
        v4Tar: "pax-sparse",
      }],
      ["an empty trailing chunk", { compressed: true, trailingEmptyChunk: true }],
      ["chunks of 64 KiB", { compressed: true, chunkBytes: 65536 }],
    ];
    for (const [name, overrides] of variants) {
      await t.step(name, async () => {
        const spec = { ...base, ...overrides };
        const built = await buildBackup(spec, root);
        const out = `${built.path}.out`;
        const result = await runCli(["restore", built.path, "--output", out], { passphrase: PASS });
        assert.equal(result.code, 0, result.stderr);
        await assertRestored(out, world, { deep: name === "gzip (the default)", format4: true });
        await Deno.remove(out, { recursive: true });
        await Deno.remove(built.path);
      });
    }

    await t.step("--vm restores one VM and skips the chunks of the others", async () => {
      const built = await buildBackup({ ...base, compressed: true }, root);
      const out = `${built.path}.one`;
      const result = await runCli(["restore", built.path, "--output", out, "--vm", "work"], {
        passphrase: PASS,
      });
      assert.equal(result.code, 0, result.stderr);
      await assertRestored(out, world, { vms: ["work"], format4: true });
    });

    await t.step("wrong passphrase: exit 3", async () => {
      const built = await buildBackup({ ...base, compressed: true }, root);
      const result = await runCli(["info", built.path], { passphrase: "not it" });
      assert.equal(result.code, 3, result.stderr);
      assert.match(result.stderr, /wrong passphrase/);
    });

    await t.step("a chunk renamed into another item's place: exit 4", async () => {
      const built = await buildBackup({ ...base, compressed: true }, root);
      const dir = `${root}/untarred`;
      await Deno.mkdir(dir);
      await sh(`tar -xif '${built.path}' -C '${dir}'`);
      await sh(`cp '${dir}/vm5/private.img.000.enc' '${dir}/vm5/firewall.xml.000.enc'`);
      const result = await runCli(["verify", dir], { passphrase: PASS });
      assert.equal(result.code, 4, result.stderr);
      assert.match(result.stderr, /vm5\/firewall\.xml\.000\.enc.*not written under this name/);
    });
  });
});

Deno.test("restore of a format 4 backup at scrypt's default cost", async () => {
  await withWorld("qr-e2e-v4-cost-", async (root, world) => {
    const work = world.vms.find((vm) => vm.name === "work")!;
    const built = await buildBackup({
      format: 4,
      passphrase: PASS,
      compressed: true,
      vms: [{
        name: work.name,
        qid: work.qid,
        kind: "app",
        dir: work.dir,
        items: ["firewall.xml"],
      }],
    }, root);
    const out = `${root}/out`;
    const result = await runCli(["restore", built.path, "--output", out], { passphrase: PASS });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      await Deno.readTextFile(`${out}/work/firewall.xml`),
      await Deno.readTextFile(`${work.dir}/firewall.xml`),
    );
  });
});
