/**
 * Sanity checks of the fixture builder: the backups it makes come apart again with the real
 * tools, the way the Qubes emergency-restore pages describe.
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { join } from "node:path";
import { buildBackup, type FixtureVm } from "../support/backup_builder.ts";
import { ext4FileHashes, makeExt4Image, sha256File } from "../support/ext4.ts";
import { run, runPipeline, runText } from "../support/_run.ts";
import { describeTree, makeVmTree, seededBytes } from "../support/vm_tree.ts";

const PASSPHRASE = "pässwörd ✓";
const README = "You found it.\n";

/** An AppVM dir with an 8 MiB ext4 private.img (README + 200 kB of random bytes) and a firewall. */
async function makeAppVm(root: string, name = "work", qid = 5): Promise<FixtureVm> {
  const content = join(root, `${name}-content`);
  await Deno.mkdir(join(content, "home/user"), { recursive: true });
  await Deno.writeTextFile(join(content, "home/user/README.txt"), README);
  await Deno.writeFile(join(content, "home/user/random.bin"), seededBytes(200_000, qid));
  const dir = join(root, "appvms", name);
  await Deno.mkdir(dir, { recursive: true });
  await makeExt4Image(join(dir, "private.img"), content, 8 << 20);
  await Deno.writeTextFile(join(dir, "firewall.xml"), '<QubesFirewallRules policy="allow"/>\n');
  return { name, qid, kind: "app", dir };
}

/** Extracts every outer entry of `backup` into `dir` with `tar -xi`. */
async function untarOuter(backup: string, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await run("tar", ["-xi", "-f", backup, "-C", dir]);
}

/** HMAC-SHA512 of a file in hex, for checking `.hmac` entries independently of openssl. */
async function hmacHex(algorithm: string, path: string): Promise<string> {
  return createHmac(algorithm, PASSPHRASE).update(await Deno.readFile(path)).digest("hex");
}

const NEW_VOLUME_SCRIPT = `#!/bin/sh
printf '%s/%03d\\n' "$FIXTURE_VOLDIR" "$TAR_VOLUME" >&"$TAR_FD"
`;

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "builder-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("buildBackup() v2 encrypted multi-volume backup restores with openssl and tar -M", async () => {
  await withTemp(async (work) => {
    const vm = await makeAppVm(work);
    const built = await buildBackup(
      { format: 2, passphrase: PASSPHRASE, encrypted: true, volumeKiB: 20, vms: [vm] },
      work,
    );
    assert.deepEqual(built.chunkNames.slice(0, 4), [
      "backup-header",
      "backup-header.hmac",
      "qubes.xml.000",
      "qubes.xml.000.hmac",
    ]);
    assert.deepEqual(
      built.header,
      "hmac-algorithm=SHA512\ncrypto-algorithm=aes-256-cbc\nencrypted=True\ncompressed=False\n",
    );
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    const hmacText = await Deno.readTextFile(join(outer, "backup-header.hmac"));
    assert.deepEqual(
      hmacText,
      `(stdin)= ${await hmacHex("sha512", join(outer, "backup-header"))}\n`,
    );

    const item = built.items.find((i) => i.base === "private.img")!;
    assert(item.chunks.length > 3, `expected many volumes, got ${item.chunks.length}`);
    const volumes = join(work, "volumes");
    await Deno.mkdir(volumes);
    for (const [k, chunk] of item.chunks.entries()) {
      const stored = join(outer, chunk);
      assert.deepEqual(
        await Deno.readTextFile(`${stored}.hmac`),
        `(stdin)= ${await hmacHex("sha512", stored)}\n`,
      );
      const head = (await Deno.readFile(stored)).subarray(0, 8);
      assert.deepEqual(new TextDecoder().decode(head), "Salted__");
      const volume = join(volumes, String(k + 1).padStart(3, "0"));
      await run("openssl", [
        "enc",
        "-d",
        "-aes-256-cbc",
        "-md",
        "md5",
        "-pass",
        `pass:${PASSPHRASE}`,
      ], {
        stdinFile: stored,
        stdoutFile: volume,
      });
      if (k < item.chunks.length - 1) assert.deepEqual((await Deno.stat(volume)).size, 20 * 1024);
    }
    const script = join(work, "new-volume.sh");
    await Deno.writeTextFile(script, NEW_VOLUME_SCRIPT, { mode: 0o755 });
    const env = { FIXTURE_VOLDIR: volumes };
    const listing = await runText(
      "tar",
      ["-tvM", "-f", join(volumes, "001"), "-F", script],
      { env },
    );
    assert.match(listing, /vm5\/private\.img/);
    const restored = join(work, "restored");
    await Deno.mkdir(restored);
    await run("tar", ["-xM", "-f", join(volumes, "001"), "-F", script, "-C", restored], { env });
    assert.deepEqual(
      await sha256File(join(restored, "vm5/private.img")),
      await sha256File(join(vm.dir, "private.img")),
    );
    const inside = await ext4FileHashes(join(restored, "vm5/private.img"));
    assert.deepEqual(
      inside.get("home/user/README.txt"),
      await sha256File(join(work, "work-content/home/user/README.txt")),
    );
  });
});

Deno.test("buildBackup() v3 bzip2 encrypted backup restores with cat | openssl | bzip2 | tar", async () => {
  await withTemp(async (work) => {
    const vm = await makeAppVm(work);
    const built = await buildBackup({
      format: 3,
      passphrase: PASSPHRASE,
      encrypted: true,
      compressed: true,
      compressionFilter: "bzip2",
      chunkBytes: 16384,
      vms: [vm],
    }, work);
    assert.match(built.header!, /^version=3\n.*compression-filter=bzip2\n$/s);
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    const item = built.items.find((i) => i.base === "private.img")!;
    assert(item.chunks.length > 2);
    const parts = join(work, "parts");
    for (const [i, chunk] of item.chunks.entries()) {
      const bytes = await Deno.readFile(join(outer, chunk));
      assert.deepEqual(new TextDecoder().decode(bytes.subarray(0, 8)) === "Salted__", i === 0);
      assert.match(
        await Deno.readTextFile(join(outer, `${chunk}.hmac`)),
        /^\(stdin\)= [0-9a-f]{128}\n$/,
      );
      await Deno.writeFile(parts, bytes, { append: true });
    }
    const restored = join(work, "restored");
    await Deno.mkdir(restored);
    await runPipeline([
      {
        cmd: "openssl",
        args: ["enc", "-d", "-aes-256-cbc", "-md", "md5", "-pass", `pass:${PASSPHRASE}`],
      },
      { cmd: "bzip2", args: ["-d"] },
      { cmd: "tar", args: ["-x", "-C", restored] },
    ], { stdinFile: parts });
    assert.deepEqual(
      await sha256File(join(restored, "vm5/private.img")),
      await sha256File(join(vm.dir, "private.img")),
    );
  });
});

Deno.test("buildBackup() v4 backup restores with scrypt dec and tar", async () => {
  await withTemp(async (work) => {
    const vm = await makeAppVm(work);
    const built = await buildBackup({
      format: 4,
      passphrase: PASSPHRASE,
      compressed: true,
      chunkBytes: 65536,
      scryptLogN: 10,
      vms: [vm],
    }, work);
    assert.deepEqual(built.chunkNames.slice(0, 3), [
      "backup-header",
      "backup-header.hmac",
      "qubes.xml.000.enc",
    ]);
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    const decrypt = (input: string, password: string) =>
      run("scrypt", ["dec", "-f", "--passphrase", "env:PW", input], { env: { PW: password } });
    const header = await decrypt(join(outer, "backup-header.hmac"), `backup-header!${PASSPHRASE}`);
    assert.deepEqual(new TextDecoder().decode(header), built.header);
    const item = built.items.find((i) => i.base === "private.img")!;
    assert(item.chunks.length > 1);
    const stream = join(work, "stream.gz");
    for (const chunk of item.chunks) {
      const name = chunk.replace(/\.enc$/, "");
      const plain = await decrypt(join(outer, chunk), `${built.backupId}!${name}!${PASSPHRASE}`);
      await Deno.writeFile(stream, plain, { append: true });
    }
    const restored = join(work, "restored");
    await Deno.mkdir(restored);
    await runPipeline(
      [{ cmd: "gzip", args: ["-d"] }, { cmd: "tar", args: ["-x", "-C", restored] }],
      {
        stdinFile: stream,
      },
    );
    assert.deepEqual(
      await sha256File(join(restored, "vm5/private.img")),
      await sha256File(join(vm.dir, "private.img")),
    );
    assert.match(built.qubesXml, /<feature name="backup-path">vm5\/<\/feature>/);
  });
});

Deno.test("buildBackup() v3 adds an empty chunk when the stream is a multiple of chunkBytes", async () => {
  await withTemp(async (work) => {
    const dir = join(work, "vm");
    await Deno.mkdir(dir);
    await Deno.writeTextFile(join(dir, "firewall.xml"), "<x/>\n");
    const built = await buildBackup({
      format: 3,
      passphrase: PASSPHRASE,
      chunkBytes: 5120,
      vms: [{ name: "tiny", qid: 9, kind: "app", dir }],
    }, work);
    // An unencrypted, uncompressed tar stream is whole 10240-byte records: 2 full chunks + empty.
    const item = built.items.find((i) => i.base === "firewall.xml")!;
    assert.deepEqual(item.chunks, [
      "appvms/tiny/firewall.xml.000",
      "appvms/tiny/firewall.xml.001",
      "appvms/tiny/firewall.xml.002",
    ]);
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    assert.deepEqual((await Deno.stat(join(outer, item.chunks[2]!))).size, 0);
    const emptyHmac = createHmac("sha512", PASSPHRASE).update(new Uint8Array(0)).digest("hex");
    assert.deepEqual(
      await Deno.readTextFile(join(outer, `${item.chunks[2]}.hmac`)),
      `(stdin)= ${emptyHmac}\n`,
    );
  });
});

Deno.test("buildBackup() v2 beta3 has no header, SHA1 HMACs and old --xform", async () => {
  await withTemp(async (work) => {
    const home = join(work, "home", "user");
    await Deno.mkdir(home, { recursive: true });
    await Deno.symlink("lib64", join(home, "lib"));
    const built = await buildBackup({
      format: 2,
      v2Variant: "beta3",
      passphrase: PASSPHRASE,
      compressed: true,
      vms: [],
      dom0Home: { user: "user", dir: home },
    }, work);
    assert.deepEqual(built.header, undefined);
    assert.deepEqual(built.chunkNames, [
      "qubes.xml.000",
      "qubes.xml.000.hmac",
      "dom0-home/user.000",
      "dom0-home/user.000.hmac",
    ]);
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    const chunk = join(outer, "dom0-home/user.000");
    assert.deepEqual(
      await Deno.readTextFile(`${chunk}.hmac`),
      `(stdin)= ${await hmacHex("sha1", chunk)}\n`,
    );
    const listing = await runPipeline([{ cmd: "gzip", args: ["-d"] }, {
      cmd: "tar",
      args: ["-tv"],
    }], {
      stdinFile: chunk,
    });
    // The ≤ R2-rc1 --xform prefixes every relative symlink target (trap T14).
    assert.match(new TextDecoder().decode(listing), /dom0-home\/user\/lib -> dom0-home\/lib64/);
  });
});

Deno.test("buildBackup() v2 emergency-doc chunks are gzip inside openssl enc", async () => {
  await withTemp(async (work) => {
    const vm = await makeAppVm(work);
    const built = await buildBackup({
      format: 2,
      v2Variant: "emergency-doc",
      passphrase: PASSPHRASE,
      encrypted: true,
      compressed: true,
      vms: [vm],
    }, work);
    assert.match(built.header!, /encrypted=True\ncompressed=True\n$/);
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    const restored = join(work, "restored");
    await Deno.mkdir(restored);
    await runPipeline([
      {
        cmd: "openssl",
        args: ["enc", "-d", "-aes-256-cbc", "-md", "md5", "-pass", `pass:${PASSPHRASE}`],
      },
      { cmd: "gzip", args: ["-d"] },
      { cmd: "tar", args: ["-x", "-C", restored] },
    ], { stdinFile: join(outer, "vm5/private.img.000") });
    assert.deepEqual(
      await sha256File(join(restored, "vm5/private.img")),
      await sha256File(join(vm.dir, "private.img")),
    );
  });
});

Deno.test("buildBackup() refuses an R2 backup that is both encrypted and compressed", async () => {
  await withTemp(async (work) => {
    await assert.rejects(
      () =>
        buildBackup(
          { format: 2, passphrase: "x", encrypted: true, compressed: true, vms: [] },
          work,
        ),
      /R2 refused it/,
    );
  });
});

Deno.test("buildBackup() v1 copies VM folders, the template and dom0 home", async () => {
  await withTemp(async (work) => {
    const vm = await makeAppVm(work);
    const template = join(work, "tpl");
    await makeVmTree(template, 2);
    const home = join(work, "home", "alice");
    await makeVmTree(home, 3);
    const built = await buildBackup({
      format: 1,
      passphrase: "",
      vms: [{ ...vm, template: "tpl" }, { name: "tpl", qid: 1, kind: "template", dir: template }],
      dom0Home: { user: "alice", dir: home },
    }, work);
    assert.deepEqual(built.chunkNames, [
      "qubes.xml",
      "appvms/work/private.img",
      "appvms/work/firewall.xml",
      "vm-templates/tpl",
      "dom0-home/alice",
    ]);
    assert(!built.qubesXml.includes("backup_"));
    assert.deepEqual(
      await describeTree(join(built.path, "vm-templates/tpl")),
      await describeTree(template),
    );
    assert.deepEqual(
      await describeTree(join(built.path, "dom0-home/alice")),
      await describeTree(home),
    );
    const copy = await Deno.stat(join(built.path, "vm-templates/tpl/disk/sparse.img"));
    assert(copy.blocks! * 512 < copy.size / 4, "the sparse file lost its holes");
  });
});

Deno.test("buildBackup() v4 pax-sparse emulation writes GNU sparse 1.0 members", async () => {
  await withTemp(async (work) => {
    const dir = join(work, "vm");
    await makeVmTree(dir, 5);
    await Deno.rename(join(dir, "disk/sparse.img"), join(dir, "private.img"));
    const built = await buildBackup({
      format: 4,
      passphrase: PASSPHRASE,
      scryptLogN: 10,
      v4Tar: "pax-sparse",
      vms: [{ name: "lvm", qid: 7, kind: "app", dir }],
    }, work);
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    const plain = await run("scrypt", [
      "dec",
      "--passphrase",
      "env:PW",
      join(outer, "vm7/private.img.000.enc"),
    ], {
      env: { PW: `${built.backupId}!vm7/private.img.000!${PASSPHRASE}` },
    });
    const text = new TextDecoder("latin1").decode(plain.subarray(0, 4096));
    assert.match(text, /GNU\.sparse\.major=1/);
    assert.match(text, /GNU\.sparse\.name=vm7\/private\.img/);
    const restored = join(work, "restored");
    await Deno.mkdir(restored);
    await run("tar", ["-x", "-C", restored], { stdinBytes: plain });
    assert.deepEqual(
      await sha256File(join(restored, "vm7/private.img")),
      await sha256File(join(dir, "private.img")),
    );
  });
});

Deno.test("buildBackup() v2 beta3 encrypted+compressed with zlibEmulation stores zlib(openssl enc)", async () => {
  await withTemp(async (work) => {
    const dir = join(work, "vm");
    await Deno.mkdir(dir);
    await Deno.writeTextFile(join(dir, "firewall.xml"), "<x/>\n");
    const built = await buildBackup({
      format: 2,
      v2Variant: "beta3",
      passphrase: PASSPHRASE,
      encrypted: true,
      compressed: true,
      zlibEmulation: true,
      vms: [{ name: "z", qid: 4, kind: "app", dir }],
    }, work);
    assert.deepEqual(built.items[1]!.chunks, ["vm4/firewall.xml.000"]);
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    const chunk = await Deno.readFile(join(outer, "vm4/firewall.xml.000"));
    assert.equal(chunk[0], 0x78);
    const inflated = await runPipeline([{ cmd: "pigz", args: ["-d", "-z", "-c"] }], {
      stdinBytes: chunk,
    });
    assert.equal(new TextDecoder().decode(inflated.subarray(0, 8)), "Salted__");
  });
});

Deno.test("makeVmTree() is reproducible and leaves holes in the sparse file", async () => {
  await withTemp(async (work) => {
    await makeVmTree(join(work, "a"), 9);
    await makeVmTree(join(work, "b"), 9);
    const a = await describeTree(join(work, "a"));
    assert.deepEqual(a, await describeTree(join(work, "b")));
    assert.equal(a.get("link-relative"), "link hello.txt");
    assert.ok([...a.keys()].some((k) => k.length > 100));
    const sparse = await Deno.stat(join(work, "a/disk/sparse.img"));
    assert.ok(sparse.blocks! * 512 < sparse.size / 4);
  });
});

Deno.test("ext4FileHashes() lists the files makeExt4Image() put in", async () => {
  await withTemp(async (work) => {
    const src = join(work, "src");
    await Deno.mkdir(join(src, "home/user"), { recursive: true });
    await Deno.writeTextFile(join(src, "home/user/README.txt"), README);
    await makeExt4Image(join(work, "img"), src, 1 << 20);
    assert.deepEqual(
      await ext4FileHashes(join(work, "img")),
      new Map([["home/user/README.txt", await sha256File(join(src, "home/user/README.txt"))]]),
    );
  });
});

Deno.test("sample-v2.qubes-backup restores with the real tools to the hashes in sample-v2.json", async () => {
  const fixtures = join(import.meta.dirname!, "../fixtures");
  const expected = JSON.parse(await Deno.readTextFile(join(fixtures, "sample-v2.json")));
  await withTemp(async (work) => {
    const outer = join(work, "outer");
    await untarOuter(join(fixtures, expected.file), outer);
    const restored = join(work, "restored");
    await Deno.mkdir(restored);
    const entries: string[] = expected.entries;
    for (const name of entries.filter((e) => !e.endsWith(".hmac") && e !== "backup-header")) {
      const stored = join(outer, name);
      const mac = createHmac("sha512", expected.passphrase).update(await Deno.readFile(stored));
      assert.equal(await Deno.readTextFile(`${stored}.hmac`), `(stdin)= ${mac.digest("hex")}\n`);
      await runPipeline([
        {
          cmd: "openssl",
          args: ["enc", "-d", "-aes-256-cbc", "-md", "md5", "-pass", `pass:${expected.passphrase}`],
        },
        { cmd: "tar", args: ["-x", "-C", restored] },
      ], { stdinFile: stored });
    }
    const check = async (
      base: string,
      files: Record<string, { sha256?: string; symlink?: string }>,
    ) => {
      for (const [path, want] of Object.entries(files)) {
        const got = join(restored, base, path);
        if (want.symlink !== undefined) assert.equal(await Deno.readLink(got), want.symlink);
        else assert.equal(await sha256File(got), want.sha256, path);
      }
    };
    for (const vm of Object.values(expected.vms) as Array<{ backupPath: string; files: never }>) {
      await check(vm.backupPath, vm.files);
    }
    await check(expected.dom0Home.backupPath, expected.dom0Home.files);
    const inside = await ext4FileHashes(join(restored, "vm5/private.img"));
    assert.deepEqual(Object.fromEntries(inside), expected.vms.work.imageFiles["private.img"]);
  });
});

Deno.test("buildBackup() honours kdfDigest, hmacTextStyle and VMs left out of the backup", async () => {
  await withTemp(async (work) => {
    const dir = join(work, "vm");
    await Deno.mkdir(dir);
    await Deno.writeTextFile(join(dir, "firewall.xml"), "<x/>\n");
    const built = await buildBackup({
      format: 3,
      passphrase: PASSPHRASE,
      encrypted: true,
      kdfDigest: "sha256",
      hmacTextStyle: "openssl3",
      vms: [
        { name: "fw", qid: 4, kind: "app", dir },
        { name: "old", qid: 8, kind: "app", dir, included: false },
      ],
    }, work);
    assert.deepEqual(built.items.map((i) => i.owner), ["", "fw"]);
    assert.match(built.qubesXml, /name="old"[^>]*backup_content="False" backup_path="vm8"/);
    const outer = join(work, "outer");
    await untarOuter(built.path, outer);
    const chunk = join(outer, "vm4/firewall.xml.000");
    assert.equal(
      await Deno.readTextFile(`${chunk}.hmac`),
      `SHA2-512(stdin)= ${await hmacHex("sha512", chunk)}\n`,
    );
    const decrypt = (md: string) =>
      runPipeline([
        {
          cmd: "openssl",
          args: ["enc", "-d", "-aes-256-cbc", "-md", md, "-pass", `pass:${PASSPHRASE}`],
        },
        { cmd: "tar", args: ["-xO"] },
      ], { stdinFile: chunk });
    assert.equal(new TextDecoder().decode(await decrypt("sha256")), "<x/>\n");
    await assert.rejects(() => decrypt("md5"));
  });
});
