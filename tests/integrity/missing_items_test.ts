/**
 * Issue 9, point 1: an item qubes.xml says the backup holds, but which is not there, is exit 5
 * naming it, for verify and restore, in backup files and untarred backup folders; with --vm,
 * only the selected VMs' items count.
 */

import assert from "node:assert/strict";
import { runCli, sh } from "../e2e/_cli.ts";
import { assertOneLineError, repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, VARIANTS, withSmallWorld } from "./_small.ts";

for (const { label, spec } of VARIANTS) {
  Deno.test(`${label}: a missing item is exit 5, never "all intact"`, async (t) => {
    await withSmallWorld("qr-missing-", async (root, world) => {
      const built = await buildSmall(world, spec, `${root}/b`);
      const entries = `${root}/entries`;
      const names = await untar(built.path, entries);
      const item = (owner: string, base: string) =>
        built.items.find((i) => i.owner === owner && i.base === base)!;
      const privateImg = item("work", "private.img");
      const template = item("tpl", ".");
      const itemName = (i: typeof privateImg) => `${i.subdir}${i.base}`;
      let n = 0;
      const without = async (gone: string[]) => {
        const dir = `${root}/case${++n}`;
        await sh(`cp -a '${entries}' '${dir}'`);
        const kept = names.filter((name) => !gone.some((g) => name === g || name === `${g}.hmac`));
        assert.equal(kept.length, names.length - gone.length * (spec.format === 4 ? 1 : 2));
        for (const g of gone) await sh(`rm -f '${dir}/${g}' '${dir}/${g}.hmac'`);
        await repack(dir, kept, `${dir}.backup`);
        return { file: `${dir}.backup`, dir };
      };

      await t.step("the intact backup verifies", async () => {
        const result = await runCli(["verify", built.path], { passphrase: PASS });
        assert.equal(result.code, 0, result.stderr);
      });

      const noPrivate = await without(privateImg.chunks);
      await t.step("private.img gone: verify exits 5 naming it", async () => {
        const result = await runCli(["verify", noPrivate.file], { passphrase: PASS });
        const line = assertOneLineError(result, 5);
        assert.ok(line.includes(`"${itemName(privateImg)}"`), line);
        assert.match(line, /VM "work"/);
        assert.match(line, /^qubes-recover: Cannot verify /);
        assert.doesNotMatch(result.stderr, /all intact/);
      });

      await t.step("private.img gone: restore exits 5, restores the rest", async () => {
        const out = `${root}/out-${n}`;
        const result = await runCli(["restore", noPrivate.file, "-o", out], { passphrase: PASS });
        const line = assertOneLineError(result, 5);
        assert.ok(line.includes(`"${itemName(privateImg)}"`), line);
        assert.match(line, /^qubes-recover: Cannot restore /);
        assert.doesNotMatch(result.stderr, /Restored/);
        await Deno.stat(`${out}/work/firewall.xml`);
        await assert.rejects(Deno.stat(`${out}/work/private.img`));
      });

      await t.step("private.img gone from an untarred folder: exit 5", async () => {
        const result = await runCli(["verify", noPrivate.dir], { passphrase: PASS });
        assert.ok(assertOneLineError(result, 5).includes(`"${itemName(privateImg)}"`));
      });

      await t.step("--vm selects another VM: its items are all there, exit 0", async () => {
        for (const vm of ["tpl", "dom0"]) {
          const result = await runCli(["verify", noPrivate.file, "--vm", vm], {
            passphrase: PASS,
          });
          assert.equal(result.code, 0, result.stderr);
        }
        const result = await runCli(["verify", noPrivate.file, "--vm", "work"], {
          passphrase: PASS,
        });
        assert.ok(assertOneLineError(result, 5).includes(`"${itemName(privateImg)}"`));
      });

      await t.step("the template's folder (format 4: its volumes) gone: exit 5", async () => {
        const gone = spec.format === 4
          ? built.items.filter((i) => i.owner === "tpl").flatMap((i) => i.chunks)
          : template.chunks;
        const { file } = await without(gone);
        const result = await runCli(["verify", file], { passphrase: PASS });
        const line = assertOneLineError(result, 5);
        assert.match(line, /"tpl"/);
      });

      await t.step("the dom0 home gone: exit 5", async () => {
        const { file } = await without(item("dom0", "alice").chunks);
        const result = await runCli(["verify", file], { passphrase: PASS });
        assert.match(assertOneLineError(result, 5), /dom0/);
      });
    });
  });
}
