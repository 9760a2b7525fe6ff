/**
 * `convert` of gzip-compressed format-2 backups keeps the volumes' compressed bytes
 * (lib/convert/gzip_splice.ts) and reads its result back as it writes it
 * (lib/convert/growing_file.ts): the volumes are really spliced, the result restores
 * bit-exact with our reader and with the real tools, and chunks out of order in the source
 * stop the conversion with the message `restore` gives (the volume checks run in the
 * read-back, with the volume starts).
 */

import assert from "node:assert/strict";
import { convertBackup } from "../../lib/convert/mod.ts";
import type { SpliceCounts } from "../../lib/convert/gzip_splice.ts";
import { buildBackup, type FixtureSpec } from "../support/backup_builder.ts";
import { runCli } from "../e2e/_cli.ts";
import {
  assertOneLineError,
  listFiles,
  repack,
  untar,
  withoutSalvageHint,
} from "../e2e/_surgery.ts";
import { assertRestored, withWorld } from "../e2e/_world.ts";
import { assertManuallyRestored, manualRestore } from "./_manual.ts";

const PASS = "correct horse battery staple";
const passphrase = () => Promise.resolve(new TextEncoder().encode(PASS));

Deno.test("convert keeps the gzip data of compressed format-2 volumes", async (t) => {
  await withWorld("qr-convert-splice-", async (root, world) => {
    const variants: Array<{ name: string; spec: Partial<FixtureSpec> }> = [
      { name: "gzip only (R2 final, compressed)", spec: { compressed: true } },
      {
        name: "gzip then openssl enc (emergency-page layout)",
        spec: { encrypted: true, compressed: true, v2Variant: "emergency-doc" },
      },
    ];
    for (const variant of variants) {
      await t.step(variant.name, async () => {
        const built = await buildBackup({
          format: 2,
          passphrase: PASS,
          vms: world.vms,
          dom0Home: world.dom0Home,
          volumeKiB: 256,
          ...variant.spec,
        }, root);
        const converted = `${built.path}.v3`;
        const counts: SpliceCounts = { kept: 0, spliced: 0, recompressed: 0 };
        const summary = await convertBackup(built.path, converted, {
          passphrase,
          spliceCounts: counts,
        });
        assert.equal(summary.compressed, true);
        assert.ok(counts.spliced >= 5, JSON.stringify(counts));
        // Small volumes (a few hundred bytes of gzip) are decoded whole and gzipped anew.
        const out = `${root}/out`;
        const restored = await runCli(["restore", converted, "--output", out], {
          passphrase: PASS,
        });
        assert.equal(restored.code, 0, restored.stderr);
        await assertRestored(out, world, {});
        const manual = `${root}/manual`;
        await manualRestore(converted, manual, PASS);
        const hidden = variant.spec.encrypted ?? false;
        await assertManuallyRestored(
          manual,
          world,
          hidden
            ? { work: "vm5", tpl: "vm3" }
            : { work: "appvms/work", tpl: "vm-templates/my-tpl" },
        );
        for (const path of [built.path, converted]) await Deno.remove(path);
        for (const path of [out, manual]) await Deno.remove(path, { recursive: true });
      });
    }

    await t.step("chunks out of order: restore's message, no output", async () => {
      const built = await buildBackup({
        format: 2,
        passphrase: PASS,
        vms: world.vms,
        dom0Home: world.dom0Home,
        volumeKiB: 256,
        compressed: true,
      }, root);
      const dir = `${root}/entries`;
      const names = await untar(built.path, dir);
      // The first item with four chunks or more: its third and fourth swap places.
      const item = names.find((name) => name.endsWith(".003"))!.slice(0, -4);
      const chunk = (i: number) => `${dir}/${item}.00${i}`;
      for (const suffix of ["", ".hmac"]) {
        await Deno.rename(chunk(2) + suffix, `${dir}/swap`);
        await Deno.rename(chunk(3) + suffix, chunk(2) + suffix);
        await Deno.rename(`${dir}/swap`, chunk(3) + suffix);
      }
      const swapped = `${root}/swapped.backup`;
      await repack(dir, names, swapped);
      const restoreLine = withoutSalvageHint(assertOneLineError(
        await runCli(["restore", swapped, "--output", `${root}/r`], { passphrase: PASS }),
        4,
      ));
      const outDir = `${root}/converted`;
      await Deno.mkdir(outDir);
      const line = assertOneLineError(
        await runCli(["convert", swapped, "--output", `${outDir}/new`], { passphrase: PASS }),
        4,
      );
      assert.match(line, /chunk \.002\)|out of order/);
      assert.equal(
        line.replace(/^qubes-recover: Cannot \w+/, ""),
        restoreLine.replace(/^qubes-recover: Cannot \w+/, ""),
      );
      assert.deepEqual(await listFiles(outDir), [], "no output, no temporary file");
    });
  });
});
