/**
 * Format 1 end to end: a plain directory copied with `cp -rp`, as Qubes R1 wrote it.
 */

import assert from "node:assert/strict";
import { buildBackup } from "../support/backup_builder.ts";
import { runCli } from "./_cli.ts";
import { assertRestored, withWorld } from "./_world.ts";

Deno.test("restore of a format 1 backup directory is bit-exact and needs no passphrase", async (t) => {
  await withWorld("qr-e2e-v1-", async (root, world) => {
    const built = await buildBackup({
      format: 1,
      passphrase: "",
      vms: world.vms,
      dom0Home: world.dom0Home,
    }, root);
    await t.step("restore everything", async () => {
      const out = `${root}/out`;
      const result = await runCli(["restore", built.path, "--output", out]);
      assert.equal(result.code, 0, result.stderr);
      await assertRestored(out, world);
      const sparse = await Deno.stat(`${out}/work/private.img`);
      assert.ok((sparse.blocks ?? 0) * 512 < sparse.size, "holes stay holes");
    });
    await t.step("one VM", async () => {
      const out = `${root}/out-one`;
      const result = await runCli(["restore", built.path, "--output", out, "--vm", "my-tpl"]);
      assert.equal(result.code, 0, result.stderr);
      await assertRestored(out, world, { vms: ["my-tpl"] });
    });
    await t.step("info", async () => {
      const result = await runCli(["info", built.path]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Format:\s+1/);
      assert.match(result.stdout, /work\s+app/);
    });
  });
});
