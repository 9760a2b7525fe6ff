/**
 * What a damaged, incomplete, tampered or wrongly opened format 2 backup does: one line that
 * names the file and the reason, a distinct exit code, no stack trace, and no output file
 * that looks complete when it is not.
 */

import assert from "node:assert/strict";
import { buildBackup } from "../support/backup_builder.ts";
import { runCli, runCliOnSmallTmpfs, sh } from "./_cli.ts";
import { assertOneLineError, listFiles, repack, untar } from "./_surgery.ts";
import { withWorld } from "./_world.ts";
import { canMountTmpfs } from "../support/tmpfs.ts";

const PASS = "tamper-proof?";

Deno.test("broken format 2 backups fail with one line, a distinct code and no partial files", async (t) => {
  await withWorld("qr-e2e-err-", async (root, world) => {
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: world.vms,
      dom0Home: world.dom0Home,
      volumeKiB: 256,
    }, root);
    const entriesDir = `${root}/entries`;
    const names = await untar(built.path, entriesDir);
    const privateChunks = names.filter((n) => /^vm5\/private\.img\.\d+$/.test(n));
    assert.ok(privateChunks.length >= 3, `private.img spans ${privateChunks.length} chunks`);
    let case_ = 0;
    const variant = async (edit: (dir: string, names: string[]) => Promise<string[]>) => {
      const dir = `${root}/case${++case_}`;
      await sh(`cp -a '${entriesDir}' '${dir}'`);
      const kept = await edit(dir, [...names]);
      const file = `${dir}.backup`;
      await repack(dir, kept, file);
      return file;
    };

    await t.step("wrong passphrase: exit 3", async () => {
      const result = await runCli(["restore", built.path, "-o", `${root}/o1`], {
        passphrase: "nope",
      });
      const line = assertOneLineError(result, 3);
      assert.match(line, /wrong passphrase or damaged header/);
      assert.deepEqual(await listFiles(`${root}/o1`), []);
    });

    await t.step("a flipped byte in a chunk: exit 4, names the chunk, no private.img", async () => {
      const file = await variant(async (dir, kept) => {
        const path = `${dir}/vm5/private.img.001`;
        const bytes = await Deno.readFile(path);
        bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
        await Deno.writeFile(path, bytes);
        return kept;
      });
      const out = `${root}/o2`;
      const line = assertOneLineError(
        await runCli(["restore", file, "-o", out], { passphrase: PASS }),
        4,
      );
      assert.match(line, /Cannot verify chunk "vm5\/private\.img\.001": HMAC does not match/);
      const files = await listFiles(out);
      assert.ok(!files.includes("./work/private.img"), files.join());
      assert.ok(!files.some((f) => f.includes("partial")), files.join());
    });

    await t.step("a missing chunk: exit 5, names it", async () => {
      const file = await variant((_, kept) =>
        Promise.resolve(kept.filter((n) => !n.startsWith("vm5/private.img.001")))
      );
      const line = assertOneLineError(
        await runCli(["verify", file], { passphrase: PASS }),
        5,
      );
      assert.match(line, /chunk "vm5\/private\.img\.001" is missing/);
    });

    await t.step("a missing .hmac: exit 5, names it", async () => {
      const file = await variant((_, kept) =>
        Promise.resolve(kept.filter((n) => n !== "vm5/private.img.001.hmac"))
      );
      const line = assertOneLineError(await runCli(["verify", file], { passphrase: PASS }), 5);
      assert.match(line, /"vm5\/private\.img\.001\.hmac" is missing/);
    });

    await t.step("the last volume of an item missing: exit 5", async () => {
      const last = privateChunks.at(-1)!;
      const file = await variant((_, kept) =>
        Promise.resolve(kept.filter((n) => n !== last && n !== `${last}.hmac`))
      );
      const out = `${root}/o5`;
      const line = assertOneLineError(
        await runCli(["restore", file, "-o", out], { passphrase: PASS }),
        5,
      );
      assert.match(line, /private\.img/);
      assert.ok(!(await listFiles(out)).includes("./work/private.img"));
    });

    await t.step("a truncated backup file: exit 5", async () => {
      const file = `${root}/truncated.backup`;
      await Deno.copyFile(built.path, file);
      const size = (await Deno.stat(file)).size;
      await Deno.truncate(file, Math.floor(size * 0.6) + 100);
      const line = assertOneLineError(await runCli(["verify", file], { passphrase: PASS }), 5);
      assert.match(line, /ends inside "/);
    });

    await t.step("chunks swapped between items (valid HMACs): exit 4", async () => {
      const file = await variant(async (dir, kept) => {
        const a = `${dir}/vm5/firewall.xml.000`;
        const b = `${dir}/vm5/whitelisted-appmenus.list.000`;
        await sh(`mv '${a}' '${dir}/tmp' && mv '${b}' '${a}' && mv '${dir}/tmp' '${b}'`);
        await sh(
          `mv '${a}.hmac' '${dir}/tmp' && mv '${b}.hmac' '${a}.hmac' && mv '${dir}/tmp' '${b}.hmac'`,
        );
        return kept;
      });
      const line = assertOneLineError(await runCli(["verify", file], { passphrase: PASS }), 4);
      assert.match(line, /lies outside it/);
    });

    await t.step("a tampered header: exit 3", async () => {
      const file = await variant(async (dir, kept) => {
        await Deno.writeTextFile(
          `${dir}/backup-header`,
          (await Deno.readTextFile(`${dir}/backup-header`)).replace(
            "encrypted=True",
            "encrypted=False",
          ),
        );
        return kept;
      });
      assertOneLineError(await runCli(["info", file], { passphrase: PASS }), 3);
    });

    await t.step("a file that is not a backup: one line, non-zero", async () => {
      const file = `${root}/random.bin`;
      await Deno.writeFile(file, crypto.getRandomValues(new Uint8Array(20000)));
      const result = await runCli(["info", file], { passphrase: PASS });
      assert.ok(result.code === 4 || result.code === 6, result.stderr);
      assertOneLineError(result, result.code);
    });

    await t.step("existing files are never overwritten without --force", async () => {
      const out = `${root}/o-exists`;
      const first = await runCli(["restore", built.path, "-o", out], { passphrase: PASS });
      assert.equal(first.code, 0, first.stderr);
      await Deno.writeTextFile(`${out}/work/firewall.xml`, "edited by the user\n");
      const again = await runCli(["restore", built.path, "-o", out], { passphrase: PASS });
      const line = assertOneLineError(again, 7);
      assert.match(
        line,
        /exists \(use --skip-existing to keep it and restore the rest, or --force to replace it\)/,
      );
      assert.equal(await Deno.readTextFile(`${out}/work/firewall.xml`), "edited by the user\n");
      const forced = await runCli(["restore", built.path, "-o", out, "--force"], {
        passphrase: PASS,
      });
      assert.equal(forced.code, 0, forced.stderr);
      assert.notEqual(await Deno.readTextFile(`${out}/work/firewall.xml`), "edited by the user\n");
    });

    await t.step({
      name: "a full disk: exit 7, names the file, leaves no partial file",
      ignore: !await canMountTmpfs(),
      fn: async () => {
        // A 1 MiB tmpfs in a private mount namespace.
        const result = await runCliOnSmallTmpfs(
          "1m",
          (mount) => ["restore", built.path, "-o", `${mount}/out`],
          { passphrase: PASS },
        );
        const line = assertOneLineError(result, 7);
        assert.match(line, /Cannot write ".*": no space left on device/);
        assert.doesNotMatch(result.left.join("\n"), /partial/);
      },
    });

    await t.step("usage errors: exit 2", async () => {
      assertOneLineError(await runCli(["restore", built.path]), 2);
      assertOneLineError(await runCli(["frobnicate", built.path]), 2);
      assertOneLineError(await runCli(["info", built.path, "--bogus"]), 2);
      assertOneLineError(await runCli(["info", `${root}/does-not-exist`]), 2);
      const noTty = await runCli(["info", built.path]);
      assert.match(assertOneLineError(noTty, 2), /QUBES_BACKUP_PASSPHRASE/);
    });
  });
});
