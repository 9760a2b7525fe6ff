/**
 * `convert` end to end: format-1 and format-2 backups made by the real tools, converted through
 * the CLI, then restored bit-exact by our `restore` AND by the format-3 manual procedure with
 * the real tools (openssl dgst, openssl enc -d -md md5, gzip -d, tar -x).
 */

import assert from "node:assert/strict";
import { buildBackup, type FixtureSpec } from "../support/backup_builder.ts";
import { runCli } from "../e2e/_cli.ts";
import { assertRestored, withWorld } from "../e2e/_world.ts";
import { assertManuallyRestored, manualRestore, outerNames } from "./_manual.ts";

const PASS = "correct horse battery staple";

interface Variant {
  name: string;
  spec: Partial<FixtureSpec>;
  /** Extra convert options. */
  args?: string[];
  /** Header lines the converted backup must have. */
  encrypted: boolean;
  compressed: boolean;
}

const FORMAT2: Variant[] = [
  { name: "R2 final: encrypted", spec: { encrypted: true }, encrypted: true, compressed: false },
  {
    name: "R2 final: compressed, VM names in paths",
    spec: { compressed: true },
    encrypted: true,
    compressed: true,
  },
  { name: "R2 final: plain", spec: {}, encrypted: true, compressed: false },
  {
    name: "multi-volume: volumes of 20 KiB (sparse maps and members cut across volumes)",
    spec: { encrypted: true, volumeKiB: 20 },
    encrypted: true,
    compressed: false,
  },
  {
    name: "emergency-page layout: gzip then openssl enc",
    spec: { encrypted: true, compressed: true, v2Variant: "emergency-doc" },
    encrypted: true,
    compressed: true,
  },
  {
    name: "R2 with SHA1 HMAC and the old --xform",
    spec: { encrypted: true, hmacAlgorithm: "SHA1", xform: "old" },
    encrypted: true,
    compressed: false,
  },
  {
    name: "R2-beta3: no header, SHA1, openssl enc -z",
    spec: { encrypted: true, compressed: true, v2Variant: "beta3", zlibEmulation: true },
    encrypted: true,
    compressed: true,
  },
  {
    name: "source re-encrypted with the OpenSSL 1.1+ key derivation: output uses MD5",
    spec: { encrypted: true, kdfDigest: "sha256" },
    encrypted: true,
    compressed: false,
  },
  {
    name: "non-ASCII passphrase",
    spec: { encrypted: true, passphrase: "pässwörd – ключ 🔑" },
    encrypted: true,
    compressed: false,
  },
  {
    name: "OpenSSL 3 .hmac text in the source, compressed source written uncompressed",
    spec: { compressed: true, hmacTextStyle: "openssl3" },
    args: ["--no-compress"],
    encrypted: true,
    compressed: false,
  },
  {
    name: "plain source kept plain on request, compressed on request",
    spec: {},
    args: ["--no-encrypt", "--compress"],
    encrypted: false,
    compressed: true,
  },
];

function pathsFor(hidden: boolean): { work: string; tpl: string } {
  return hidden ? { work: "vm5", tpl: "vm3" } : { work: "appvms/work", tpl: "vm-templates/my-tpl" };
}

Deno.test("convert: format-2 backups become format 3 that restore bit-exact, ours and by hand", async (t) => {
  await withWorld("qr-convert-v2-", async (root, world) => {
    for (const variant of FORMAT2) {
      await t.step(variant.name, async () => {
        const spec: FixtureSpec = {
          format: 2,
          passphrase: PASS,
          vms: world.vms,
          dom0Home: world.dom0Home,
          volumeKiB: 1024,
          ...variant.spec,
        };
        const built = await buildBackup(spec, root);
        const converted = `${built.path}.v3`;
        const result = await runCli(
          ["convert", built.path, "--output", converted, ...(variant.args ?? [])],
          { passphrase: spec.passphrase },
        );
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /Converted a format-2 backup .* format 3, .*verified/);
        const header = await new Deno.Command("tar", {
          args: ["-i", "-xOf", converted, "backup-header"],
          stdout: "piped",
        }).output();
        const text = new TextDecoder().decode(header.stdout);
        assert.match(text, new RegExp(`^encrypted=${variant.encrypted ? "True" : "False"}$`, "m"));
        assert.match(
          text,
          new RegExp(`^compressed=${variant.compressed ? "True" : "False"}$`, "m"),
        );

        const out = `${built.path}.out`;
        const restored = await runCli(["restore", converted, "--output", out], {
          passphrase: spec.passphrase,
        });
        assert.equal(restored.code, 0, restored.stderr);
        if (variant.encrypted) assert.match(restored.stderr, /Key derivation: MD5/);
        await assertRestored(out, world, { deep: variant.name === "R2 final: encrypted" });

        const manual = `${built.path}.manual`;
        const items = await manualRestore(converted, manual, spec.passphrase);
        assert.equal(items[0], "qubes.xml");
        const hidden = spec.hideVmNames ?? spec.encrypted ?? false;
        await assertManuallyRestored(manual, world, pathsFor(hidden));
        // qubes.xml is kept byte for byte.
        assert.equal(await Deno.readTextFile(`${manual}/qubes.xml`), built.qubesXml);

        for (const path of [built.path, converted]) await Deno.remove(path);
        for (const path of [out, manual]) await Deno.remove(path, { recursive: true });
      });
    }
  });
});

Deno.test("convert: a format-1 folder becomes format 3 with the backup attributes added", async (t) => {
  await withWorld("qr-convert-v1-", async (root, world) => {
    const built = await buildBackup({
      format: 1,
      passphrase: "",
      vms: [...world.vms, {
        name: "gone",
        qid: 9,
        kind: "app",
        template: "my-tpl",
        dir: world.dirs.get("work")!,
        included: false,
      }],
      dom0Home: world.dom0Home,
    }, root);
    const converted = `${root}/v1.v3`;
    await t.step("convert asks for the new passphrase only", async () => {
      const result = await runCli(["convert", built.path, "--output", converted], {
        passphrase: PASS,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /Converted a format-1 backup .*encrypted, not compressed/);
    });
    await t.step("our restore", async () => {
      const out = `${root}/out`;
      const restored = await runCli(["restore", converted, "--output", out], { passphrase: PASS });
      assert.equal(restored.code, 0, restored.stderr);
      await assertRestored(out, world, { deep: true });
      await assert.rejects(Deno.stat(`${out}/gone`), "the VM the old backup left out stays out");
    });
    await t.step("the manual procedure with the real tools", async () => {
      const manual = `${root}/manual`;
      const items = await manualRestore(converted, manual, PASS);
      assert.deepEqual(items, [
        "qubes.xml",
        "appvms/work/private.img",
        "appvms/work/firewall.xml",
        "appvms/work/whitelisted-appmenus.list",
        "vm-templates/my-tpl/.",
        "dom0-home/alice",
      ]);
      await assertManuallyRestored(manual, world, pathsFor(false));
      const xml = await Deno.readTextFile(`${manual}/qubes.xml`);
      assert.match(
        xml,
        /name="work"[^>]* backup_content="True" backup_path="appvms\/work" backup_size="\d+"/,
      );
      assert.match(xml, /name="gone"[^>]* backup_content="False" backup_path="" backup_size="0"/);
      assert.match(
        xml,
        /<QubesAdminVm qid="0" name="dom0" label="black" backup_content="True" backup_path="dom0-home\/alice" backup_size="\d+"\/>/,
      );
      // Only attributes were added: removing them gives the original back.
      const stripped = xml.replace(/\n {2}<QubesAdminVm [^>]*\/>/, "").replace(
        / backup_(content|path|size)="[^"]*"/g,
        "",
      );
      assert.equal(stripped, built.qubesXml);
    });
  });
});

Deno.test("convert: the outer archive is what GNU tar and spec sections 2-4 say", async () => {
  await withWorld("qr-convert-layout-", async (root, world) => {
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: world.vms,
      dom0Home: world.dom0Home,
      volumeKiB: 1024,
    }, root);
    const converted = `${root}/new.v3`;
    const result = await runCli(["convert", built.path, "--output", converted, "--compress"], {
      passphrase: PASS,
    });
    assert.equal(result.code, 0, result.stderr);
    const names = await outerNames(converted);
    assert.deepEqual(names.slice(0, 4), [
      "backup-header",
      "backup-header.hmac",
      "qubes.xml.000",
      "qubes.xml.000.hmac",
    ]);
    for (let i = 0; i < names.length; i += 2) {
      assert.equal(names[i + 1], `${names[i]}.hmac`, "every entry is followed by its .hmac");
    }
    const items = names.filter((n) => !n.endsWith(".hmac")).slice(2).map((n) =>
      n.replace(/\.[0-9]{3,}$/, "")
    );
    assert.deepEqual(items, [
      "vm5/private.img",
      "vm5/firewall.xml",
      "vm5/whitelisted-appmenus.list",
      "vm3/.",
      "dom0-home/alice",
    ]);
    const read = async (name: string) =>
      new TextDecoder().decode(
        (await new Deno.Command("tar", {
          args: ["-i", "-xOf", converted, name],
          stdout: "piped",
        }).output()).stdout,
      );
    assert.equal(
      await read("backup-header"),
      "version=3\nhmac-algorithm=SHA512\ncrypto-algorithm=aes-256-cbc\nencrypted=True\ncompressed=True\ncompression-filter=gzip\n",
    );
    for (const name of names.filter((n) => n.endsWith(".hmac"))) {
      assert.match(await read(name), /^\(stdin\)= [0-9a-f]{128}\n$/, name);
    }
    // Each entry is a `tar -cO --posix` archive: pax header, ustar header, records of 10240.
    const bytes = await Deno.readFile(converted);
    assert.equal(bytes.length % 10240, 0);
    const text = (from: number, to: number) =>
      new TextDecoder().decode(bytes.subarray(from, to)).replace(/\0+$/, "");
    assert.equal(text(0, 100), "./PaxHeaders/backup-header");
    assert.equal(String.fromCharCode(bytes[156]!), "x");
    assert.equal(text(257, 265), "ustar\x0000");
    assert.equal(text(1024, 1124), "backup-header");
    assert.equal(String.fromCharCode(bytes[1024 + 156]!), "0");
    const verbose = new TextDecoder().decode(
      (await new Deno.Command("tar", { args: ["-i", "-tvf", converted], stdout: "piped" })
        .output()).stdout,
    );
    assert.match(verbose, /^-rw-r--r-- root\/root +116 .* backup-header$/m);
    // The first chunk of an encrypted item starts with openssl's salt header.
    const chunk = await new Deno.Command("tar", {
      args: ["-i", "-xOf", converted, "vm5/private.img.000"],
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(chunk.stdout.subarray(0, 8)), "Salted__");
  });
});

Deno.test("convert: RECOVERY.txt's FORMAT 3 commands restore a converted format-2 backup", async () => {
  await withWorld("qr-convert-recovery-", async (root, world) => {
    const text = await Deno.readTextFile(new URL("../../RECOVERY.txt", import.meta.url));
    const start = text.indexOf("\nFORMAT 3");
    assert.ok(start >= 0);
    const rest = text.slice(start + 1);
    const section = rest.slice(0, rest.search(/\n(FORMAT 4|Important:)/));
    const block = section.split("\n").filter((line) => line.startsWith("    "))
      .map((line) => line.slice(4)).join("\n").replaceAll('"PASS"', '"$PASS"');
    assert.match(block, /^ITEM=qubes\.xml$/m, "the commands start with ITEM=qubes.xml");
    // The block is written for one item; run it for qubes.xml and for the image.
    const commands = ["qubes.xml", "vm5/private.img"]
      .map((item) => block.replace(/^ITEM=qubes\.xml$/m, `ITEM='${item}'`)).join("\n");
    const work = world.vms.find((vm) => vm.name === "work")!;
    const { template: _, ...standalone } = work;
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      volumeKiB: 64,
      vms: [standalone],
    }, root);
    assert.ok(built.chunkNames.filter((n) => n.startsWith("vm5/private.img.")).length > 2);
    const converted = `${built.path}.v3`;
    const result = await runCli(["convert", built.path, "--output", converted, "--compress"], {
      passphrase: PASS,
    });
    assert.equal(result.code, 0, result.stderr);
    const dir = `${root}/manual`;
    await Deno.mkdir(dir);
    const out = await new Deno.Command("bash", {
      args: ["-c", `set -e\ntar -i -xf '${converted}'\n${commands}\n`],
      cwd: dir,
      env: { PASS },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const [a, b] = [`${dir}/vm5/private.img`, `${work.dir}/private.img`];
    assert.equal((await Deno.stat(a)).size, (await Deno.stat(b)).size);
    const hash = async (path: string) =>
      new TextDecoder().decode(
        (await new Deno.Command("sha256sum", { args: [path], stdout: "piped" }).output()).stdout,
      ).split(" ")[0];
    assert.equal(await hash(a), await hash(b));
  });
});
