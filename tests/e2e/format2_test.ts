/**
 * Format 2 end to end: backups made by the real tools (GNU tar multi-volume, openssl enc,
 * openssl dgst, gzip, tar --posix), restored through the CLI with the release permissions.
 */

import assert from "node:assert/strict";
import { buildBackup, type FixtureSpec } from "../support/backup_builder.ts";
import { runCli } from "./_cli.ts";
import { assertRestored, assertSameFile, withWorld } from "./_world.ts";

const PASS = "correct horse battery staple";

Deno.test("restore of format 2 backups made by the real tools is bit-exact", async (t) => {
  await withWorld("qr-e2e-v2-", async (root, world) => {
    const base: FixtureSpec = {
      format: 2,
      passphrase: PASS,
      vms: world.vms,
      dom0Home: world.dom0Home,
      volumeKiB: 1024,
    };
    const variants: Array<[string, Partial<FixtureSpec>, RegExp?]> = [
      ["R2 final: encrypted, SHA512, hidden names", { encrypted: true }, /MD5/],
      ["R2 final: compressed, VM names in paths", { compressed: true }],
      ["R2 final: neither encrypted nor compressed", {}],
      ["emergency-page layout: gzip then openssl enc", {
        encrypted: true,
        compressed: true,
        v2Variant: "emergency-doc",
      }],
      ["R2 with SHA1 HMAC and the old --xform", {
        encrypted: true,
        hmacAlgorithm: "SHA1",
        xform: "old",
      }],
      ["R2-beta3: no header, SHA1, openssl enc -z", {
        encrypted: true,
        compressed: true,
        v2Variant: "beta3",
        zlibEmulation: true,
      }],
      ["re-encrypted with the OpenSSL 1.1+ key derivation", {
        encrypted: true,
        kdfDigest: "sha256",
      }, /SHA-256/],
      ["non-ASCII passphrase", { encrypted: true, passphrase: "pässwörd – ключ 🔑" }],
      ["volumes of 20 KiB: items span many chunks", { encrypted: true, volumeKiB: 20 }],
      ["OpenSSL 3 .hmac text", { compressed: true, hmacTextStyle: "openssl3" }],
    ];
    for (const [name, overrides, notice] of variants) {
      await t.step(name, async () => {
        const spec = { ...base, ...overrides };
        const built = await buildBackup(spec, root);
        const out = `${built.path}.out`;
        const result = await runCli(["restore", built.path, "--output", out], {
          passphrase: spec.passphrase,
        });
        assert.equal(result.code, 0, result.stderr);
        if (notice) assert.match(result.stderr, notice);
        await assertRestored(out, world, { deep: name.startsWith("R2 final: encrypted") });
        await Deno.remove(out, { recursive: true });
        await Deno.remove(built.path);
      });
    }
  });
});

Deno.test("restore reads format 2 from stdin, from an untarred directory, and one VM at a time", async (t) => {
  await withWorld("qr-e2e-v2-src-", async (root, world) => {
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: world.vms,
      dom0Home: world.dom0Home,
      volumeKiB: 512,
    }, root);
    await t.step("standard input", async () => {
      const out = `${root}/out-stdin`;
      const result = await runCli(["restore", "-", "--output", out], {
        passphrase: PASS,
        stdin: await Deno.readFile(built.path),
      });
      assert.equal(result.code, 0, result.stderr);
      await assertRestored(out, world);
    });
    await t.step("an untarred backup directory", async () => {
      const dir = `${root}/untarred`;
      await Deno.mkdir(dir);
      const untar = await new Deno.Command("tar", { args: ["-xif", built.path, "-C", dir] })
        .output();
      assert.ok(untar.success);
      const out = `${root}/out-dir`;
      const result = await runCli(["restore", dir, "--output", out], { passphrase: PASS });
      assert.equal(result.code, 0, result.stderr);
      await assertRestored(out, world);
    });
    await t.step("--vm selects VMs; dom0 is the home", async () => {
      const out = `${root}/out-one`;
      const result = await runCli(
        ["restore", built.path, "--output", out, "--vm", "work", "--vm", "dom0"],
        { passphrase: PASS },
      );
      assert.equal(result.code, 0, result.stderr);
      await assertRestored(out, world, { vms: ["work", "dom0"] });
    });
    await t.step("VMs restored one run at a time into the same folder", async () => {
      const out = `${root}/out-runs`;
      for (const vm of ["my-tpl", "work", "dom0"]) {
        const result = await runCli(["restore", built.path, "--output", out, "--vm", vm], {
          passphrase: PASS,
        });
        assert.equal(result.code, 0, result.stderr);
      }
      await assertRestored(out, world);
    });
    await t.step("--vm with an unknown name is a usage error", async () => {
      const result = await runCli(
        ["restore", built.path, "--output", `${root}/out-x`, "--vm", "nosuch"],
        { passphrase: PASS },
      );
      assert.equal(result.code, 2);
      assert.match(result.stderr, /"nosuch": it is not in this backup \(it holds: .*work/);
    });
    await t.step("a hostile VM name in qubes.xml stays inside the output", async () => {
      const work = world.vms.find((vm) => vm.name === "work")!;
      const hostile = await buildBackup({
        format: 2,
        passphrase: PASS,
        encrypted: true,
        vms: [{ name: "../../evil", qid: 5, kind: "app", dir: work.dir }],
      }, root);
      const out = `${root}/out-hostile/inner`;
      const result = await runCli(["restore", hostile.path, "--output", out], { passphrase: PASS });
      assert.equal(result.code, 0, result.stderr);
      await assertSameFile(`${out}/vm5/private.img`, `${work.dir}/private.img`);
      await assert.rejects(Deno.stat(`${root}/evil`));
      await assert.rejects(Deno.stat(`${root}/out-hostile/evil`));
    });
    await t.step("info lists the VMs", async () => {
      const result = await runCli(["info", built.path], { passphrase: PASS });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Format:\s+2/);
      assert.match(result.stdout, /work\s+app\s+my-tpl/);
      assert.match(result.stdout, /my-tpl\s+template/);
      assert.match(result.stdout, /dom0\s+home of alice/);
      const json = await runCli(["info", built.path, "--json"], { passphrase: PASS });
      const records = json.stdout.trim().split("\n").map((line) => JSON.parse(line));
      assert.equal(records[0].type, "backup");
      assert.equal(records[0].format, 2);
      assert.equal(records.at(-1).type, "summary");
    });
    await t.step("verify checks everything and writes nothing", async () => {
      const result = await runCli(["verify", built.path], { passphrase: PASS });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /Verified: format 2/);
    });
    await t.step("--passphrase-file strips one trailing newline", async () => {
      await Deno.writeTextFile(`${root}/pass.txt`, `${PASS}\n`);
      const result = await runCli(["verify", built.path, "--passphrase-file", `${root}/pass.txt`]);
      assert.equal(result.code, 0, result.stderr);
      const fromStdin = await runCli(["verify", built.path, "--passphrase-file", "-"], {
        stdin: `${PASS}\n`,
      });
      assert.equal(fromStdin.code, 0, fromStdin.stderr);
    });
  });
});

Deno.test("restore of a format 2 item of 8 GiB and more (base-256 numbers) keeps it sparse", async () => {
  const size = 9 * 1024 ** 3 + 512 * 1024;
  await withWorld("qr-e2e-v2-big-", async (root, world) => {
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: world.vms.filter((vm) => vm.name === "work").map(({ template: _, ...vm }) => vm),
      volumeKiB: 256,
    }, root);
    const out = `${root}/out`;
    const result = await runCli(["restore", built.path, "--output", out], { passphrase: PASS });
    assert.equal(result.code, 0, result.stderr);
    const info = await Deno.stat(`${out}/work/private.img`);
    assert.equal(info.size, size);
    assert.ok((info.blocks ?? 0) * 512 < 64 * 1024 * 1024, "restored image is sparse");
    // Hashing 9 GiB twice would dominate the run: compare every data run and a hole instead.
    const source = world.dirs.get("work")!;
    for (const [offset, length] of [[0, 4096], [5 * 1024 ** 3, 1 << 20], [size - 8192, 8192]]) {
      assert.deepEqual(
        await readAt(`${out}/work/private.img`, offset!, length!),
        await readAt(`${source}/private.img`, offset!, length!),
        `bytes at ${offset}`,
      );
    }
    for (const name of ["firewall.xml", "whitelisted-appmenus.list"]) {
      await assertSameFile(`${out}/work/${name}`, `${source}/${name}`);
    }
  }, { bigPrivateImage: size });
});

async function readAt(path: string, offset: number, length: number): Promise<Uint8Array> {
  using file = await Deno.open(path);
  await file.seek(offset, Deno.SeekMode.Start);
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}
