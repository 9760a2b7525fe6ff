/**
 * `convert` refusals and options: damaged sources stop with restore's errors and leave no file,
 * existing output is kept without --force, format 3/4 sources are refused, a new passphrase.
 */

import assert from "node:assert/strict";
import { buildBackup } from "../support/backup_builder.ts";
import { runCli, runCliOnSmallTmpfs, sh } from "../e2e/_cli.ts";
import { assertOneLineError, listFiles, repack, untar } from "../e2e/_surgery.ts";
import { assertRestored, withWorld } from "../e2e/_world.ts";
import { canMountTmpfs } from "../support/tmpfs.ts";

const PASS = "correct horse battery staple";
const noTmpfs = !(await canMountTmpfs());

Deno.test("convert refuses what it must and writes nothing half-done", async (t) => {
  await withWorld("qr-convert-err-", async (root, world) => {
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: world.vms,
      dom0Home: world.dom0Home,
      volumeKiB: 256,
    }, root);
    const outDir = `${root}/out`;
    await Deno.mkdir(outDir);

    await t.step(
      "a flipped byte in a chunk: exit 4 with restore's message, no output",
      async () => {
        const dir = `${root}/entries`;
        const names = await untar(built.path, dir);
        const path = `${dir}/vm5/private.img.001`;
        const bytes = await Deno.readFile(path);
        bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
        await Deno.writeFile(path, bytes);
        const damaged = `${root}/damaged.backup`;
        await repack(dir, names, damaged);
        const restoreLine = assertOneLineError(
          await runCli(["verify", damaged], { passphrase: PASS }),
          4,
        );
        const line = assertOneLineError(
          await runCli(["convert", damaged, "--output", `${outDir}/new`], { passphrase: PASS }),
          4,
        );
        assert.equal(line, restoreLine);
        assert.match(line, /Cannot verify chunk "vm5\/private\.img\.001": HMAC does not match/);
        assert.deepEqual(await listFiles(outDir), [], "no output, no temporary file");
      },
    );

    await t.step({
      name: "a full disk: exit 7 naming the file, no output left",
      ignore: noTmpfs,
      fn: async () => {
        // The new file goes to a small tmpfs in a user and mount namespace of its own.
        const result = await runCliOnSmallTmpfs(
          "96k",
          (mount) => ["convert", built.path, "--output", `${mount}/new`],
          { passphrase: PASS },
        );
        const line = assertOneLineError(result, 7);
        assert.match(
          line,
          /^qubes-recover: Cannot write ".*\/new": no space left on device$/,
        );
        assert.deepEqual(result.left, [], "nothing left on the full disk");
      },
    });

    await t.step("wrong passphrase: exit 3, no output", async () => {
      const result = await runCli(["convert", built.path, "--output", `${outDir}/new`], {
        passphrase: "nope",
      });
      assertOneLineError(result, 3);
      assert.deepEqual(await listFiles(outDir), []);
    });

    await t.step(
      "an existing output is kept without --force (exit 7), replaced with it",
      async () => {
        const target = `${outDir}/existing`;
        await Deno.writeTextFile(target, "keep me\n");
        const line = assertOneLineError(
          await runCli(["convert", built.path, "--output", target], { passphrase: PASS }),
          7,
        );
        assert.match(line, /it exists \(use --force to replace it\)/);
        assert.equal(await Deno.readTextFile(target), "keep me\n");
        const forced = await runCli(["convert", built.path, "--output", target, "--force"], {
          passphrase: PASS,
        });
        assert.equal(forced.code, 0, forced.stderr);
        const check = await runCli(["verify", target], { passphrase: PASS });
        assert.equal(check.code, 0, check.stderr);
        assert.match(check.stderr, /format 3/);
        await Deno.remove(target);
      },
    );

    await t.step("a new passphrase: the old one no longer opens the result", async () => {
      const file = `${root}/newpass`;
      await Deno.writeTextFile(file, "a new passphrase\n");
      const target = `${outDir}/renewed`;
      const result = await runCli(
        ["convert", built.path, "--output", target, "--new-passphrase-file", file],
        { passphrase: PASS },
      );
      assert.equal(result.code, 0, result.stderr);
      assertOneLineError(await runCli(["verify", target], { passphrase: PASS }), 3);
      const out = `${root}/restored-renewed`;
      const restored = await runCli(["restore", target, "--output", out], {
        passphrase: "a new passphrase",
      });
      assert.equal(restored.code, 0, restored.stderr);
      await assertRestored(out, world);
      await Deno.remove(target);
    });

    await t.step("a format-3 source is refused with exit 6", async () => {
      const v3 = await buildBackup({
        format: 3,
        passphrase: PASS,
        encrypted: true,
        compressed: true,
        vms: world.vms.filter((vm) => vm.name === "my-tpl"),
      }, root);
      const line = assertOneLineError(
        await runCli(["convert", v3.path, "--output", `${outDir}/x`], { passphrase: PASS }),
        6,
      );
      assert.match(line, /already a format-3 backup/);
      assert.deepEqual(await listFiles(outDir), []);
    });

    await t.step(
      "usage: --output is needed, --compress and --no-compress exclude each other",
      async () => {
        assertOneLineError(await runCli(["convert", built.path], { passphrase: PASS }), 2);
        assertOneLineError(
          await runCli(
            ["convert", built.path, "-o", `${outDir}/y`, "--compress", "--no-compress"],
            { passphrase: PASS },
          ),
          2,
        );
        assert.equal((await sh(`ls -A '${outDir}'`)).trim(), "");
      },
    );

    await t.step(
      "an output that cannot be a file is refused before the passphrase is asked for",
      async () => {
        // No passphrase given: each refusal comes before the old backup is opened.
        const dash = assertOneLineError(await runCli(["convert", built.path, "-o", "-"]), 2);
        assert.match(dash, /convert writes a file, not standard output/);
        const missing = `${outDir}/no-such-folder/new`;
        const line = assertOneLineError(await runCli(["convert", built.path, "-o", missing]), 7);
        assert.equal(
          line,
          `qubes-recover: Cannot write "${missing}": its folder "${outDir}/no-such-folder" does not exist`,
        );
        await Deno.writeTextFile(`${outDir}/a-file`, "");
        const under = assertOneLineError(
          await runCli(["convert", built.path, "-o", `${outDir}/a-file/new`]),
          7,
        );
        assert.match(under, /Cannot write ".*\/a-file\/new": ".*\/a-file" is not a folder$/);
        await Deno.remove(`${outDir}/a-file`);
        assert.equal((await sh(`ls -A '${outDir}'`)).trim(), "");
      },
    );
  });
});
