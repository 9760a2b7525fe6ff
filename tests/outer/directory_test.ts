import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DamagedError } from "../../lib/errors.ts";
import { orderBackupFiles, readBackupDirectory } from "../../lib/outer/directory.ts";
import { readOuterArchive } from "../../lib/outer/tar_reader.ts";
import { assertRejects, equalBytes, randomBytes, run } from "../tar/_helpers.ts";

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of readBackupDirectory(dir)) out.push(entry.name);
  return out;
}

async function withFiles(paths: string[], fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    for (const [i, path] of paths.entries()) {
      await Deno.mkdir(`${dir}/${path}`.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.writeFile(`${dir}/${path}`, randomBytes(10 + i, i + 1));
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readBackupDirectory() yields files in backup order with chunks numerically", async () => {
  const indexes = ["000", "001", "009", "010", "099", "100", "998", "999", "1000", "1001", "10000"];
  const big = indexes.flatMap((n) => [`vm5/private.img.${n}`, `vm5/private.img.${n}.hmac`]);
  const expected = [
    "backup-header",
    "backup-header.hmac",
    "qubes.xml.000",
    "qubes.xml.000.hmac",
    "dom0-home/user.000",
    "dom0-home/user.000.hmac",
    "vm-templates/fedora-20-x64/..000",
    "vm-templates/fedora-20-x64/..000.hmac",
    "vm3/..000",
    "vm3/..000.hmac",
    "vm3/..001",
    "vm3/..001.hmac",
    ...big,
    "vm6/root.img.000.enc",
    "vm6/root.img.001.enc",
    "README",
    "orphan.000.hmac",
    "vm5/notes.txt",
  ];
  const shuffled = [...expected].sort((a, b) => (a.length * 7919 % 13) - (b.length * 7919 % 13));
  await withFiles(shuffled, async (dir) => {
    await Deno.symlink(`${dir}/qubes.xml.000`, `${dir}/vm5/private.img.1002`);
    assertEquals(await names(dir), expected);
  });
});

Deno.test("readBackupDirectory() reads file contents and reports pieces", async () => {
  await withFiles(["backup-header", "qubes.xml.000"], async (dir) => {
    for await (const entry of readBackupDirectory(dir)) {
      const pieces: Uint8Array[] = [];
      const body = await entry.read((p) => pieces.push(p.slice()));
      const onDisk = await Deno.readFile(`${dir}/${entry.name}`);
      assert(equalBytes(body, onDisk));
      assertEquals(entry.size, onDisk.length);
      assertEquals(pieces.reduce((n, p) => n + p.length, 0), body.length);
      await entry.skip();
    }
  });
});

Deno.test("readBackupDirectory() rejects a file above maxEntrySize", async () => {
  await withFiles(["backup-header", "qubes.xml.000"], async (dir) => {
    await assertRejects(
      async () => {
        for await (const _ of readBackupDirectory(dir, { maxEntrySize: 5 })) { /* nothing */ }
      },
      DamagedError,
      "more than the limit of 5",
    );
  });
});

Deno.test("readBackupDirectory() gives the order of the archive that tar -xf unpacked", async () => {
  const order = [
    "backup-header",
    "backup-header.hmac",
    "qubes.xml.000",
    "qubes.xml.000.hmac",
    "vm3/..000",
    "vm3/..000.hmac",
    "vm5/private.img.000",
    "vm5/private.img.000.hmac",
    "vm5/private.img.001",
    "vm5/private.img.001.hmac",
  ];
  await withFiles(order, async (src) => {
    const archive = await Deno.makeTempFile();
    const out = await Deno.makeTempDir();
    try {
      for (const name of order) {
        const bytes = await run("tar", ["-cO", "--posix", "-C", src, name]);
        await Deno.writeFile(archive, bytes, { append: true });
      }
      await run("tar", ["-ixf", archive, "-C", out]);
      const fromArchive: string[] = [];
      using file = await Deno.open(archive);
      for await (const entry of readOuterArchive(file)) fromArchive.push(entry.name);
      assertEquals(fromArchive, order);
      assertEquals(await names(out), order);
    } finally {
      await Deno.remove(archive);
      await Deno.remove(out, { recursive: true });
    }
  });
});

Deno.test("orderBackupFiles() sorts chunk numbers numerically", () => {
  assertEquals(orderBackupFiles([{ name: "a.1000" }, { name: "a.999" }]).map((f) => f.name), [
    "a.999",
    "a.1000",
  ]);
});
