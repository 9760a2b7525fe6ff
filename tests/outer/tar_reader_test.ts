import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DamagedError, IncompleteError } from "../../lib/errors.ts";
import { readOuterArchive } from "../../lib/outer/tar_reader.ts";
import type { ByteReader, OuterEntry } from "../../lib/outer/tar_reader.ts";
import { assertRejects, equalBytes, fixChecksum, randomBytes, run } from "../tar/_helpers.ts";
import { concat as concatPieces } from "../../lib/streams/mod.ts";

const MiB = 1024 * 1024;
const longName = `appvms/${"w".repeat(120)}/private.img.000`;

/** Backup-like files, in backup order. */
const files: [string, Uint8Array][] = [
  ["backup-header", new TextEncoder().encode("version=3\nhmac-algorithm=SHA512\n")],
  ["backup-header.hmac", new TextEncoder().encode("(stdin)= 00ff\n")],
  ["qubes.xml.000", randomBytes(5000, 1)],
  ["qubes.xml.000.hmac", randomBytes(130, 2)],
  ["vm5/private.img.000", randomBytes(3 * MiB + 17, 3)],
  ["vm5/private.img.000.hmac", randomBytes(130, 4)],
  ["vm3/..000", randomBytes(512, 5)],
  ["vm3/..000.hmac", randomBytes(130, 6)],
  [longName, randomBytes(700, 7)],
  ["empty.000", new Uint8Array(0)],
];

/** A reader over bytes that hands out at most `max` bytes per read() and counts the calls. */
class MemoryReader implements ByteReader {
  at = 0;
  calls = 0;
  constructor(readonly bytes: Uint8Array, readonly max = Infinity) {}
  read(p: Uint8Array): Promise<number | null> {
    this.calls++;
    if (this.at >= this.bytes.length) return Promise.resolve(null);
    const n = Math.min(p.length, this.max, this.bytes.length - this.at);
    p.set(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return Promise.resolve(n);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  return concatPieces(parts);
}

/** Drops the zero blocks GNU tar appends after the last member. */
function withoutTrailingZeros(archive: Uint8Array): Uint8Array {
  let end = archive.length;
  while (end >= 512 && archive.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
  return archive.subarray(0, end);
}

/** Appends one `tar -cO --posix` archive per file, as the backup writers did. */
async function makeOuter(format = "--posix", padding = true): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    const parts = [];
    for (const [name, bytes] of files) {
      await Deno.mkdir(`${dir}/${name}`.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.writeFile(`${dir}/${name}`, bytes);
      const archive = await run("tar", ["-cO", format, "-C", dir, name]);
      parts.push(padding ? archive : withoutTrailingZeros(archive));
    }
    return concat(parts);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readAll(reader: ByteReader, options = {}): Promise<[string, Uint8Array][]> {
  const out: [string, Uint8Array][] = [];
  for await (const entry of readOuterArchive(reader, options)) {
    out.push([entry.name, await entry.read()]);
  }
  return out;
}

function assertSameFiles(got: [string, Uint8Array][]) {
  assertEquals(got.map(([n]) => n), files.map(([n]) => n));
  for (let i = 0; i < files.length; i++) assert(equalBytes(got[i]![1], files[i]![1]), files[i]![0]);
}

Deno.test("readOuterArchive() reads concatenated tar -cO --posix archives", async (t) => {
  const padded = await makeOuter();
  const unpadded = await makeOuter("--posix", false);
  assert(unpadded.length < padded.length);
  await t.step("with zero padding between entries", async () => {
    assertSameFiles(await readAll(new MemoryReader(padded)));
  });
  await t.step("without zero padding between entries", async () => {
    assertSameFiles(await readAll(new MemoryReader(unpadded)));
  });
  await t.step("from a reader that returns short reads", async () => {
    assertSameFiles(await readAll(new MemoryReader(padded, 1000)));
  });
  await t.step("from a file", async () => {
    const path = await Deno.makeTempFile();
    try {
      await Deno.writeFile(path, padded);
      using file = await Deno.open(path);
      assertSameFiles(await readAll(file));
    } finally {
      await Deno.remove(path);
    }
  });
  await t.step("GNU long names and ustar prefixes", async () => {
    assertSameFiles(await readAll(new MemoryReader(await makeOuter("--format=gnu"))));
    assertSameFiles(await readAll(new MemoryReader(await makeOuter("--format=ustar"))));
  });
});

Deno.test("readOuterArchive() reads a body with few read() calls and reports its pieces", async () => {
  const reader = new MemoryReader(await makeOuter());
  for await (const entry of readOuterArchive(reader)) {
    const before = reader.calls;
    const pieces: Uint8Array[] = [];
    const body = await entry.read((piece) => pieces.push(piece.slice()));
    assert(equalBytes(concat(pieces), body));
    if (entry.name === "vm5/private.img.000") {
      assertEquals(body.length, 3 * MiB + 17);
      assert(reader.calls - before <= 3, `${reader.calls - before} read() calls`);
    }
  }
});

Deno.test("readOuterArchive() skips entries that were not read", async () => {
  const names: string[] = [];
  const read: [string, Uint8Array][] = [];
  let i = 0;
  for await (const entry of readOuterArchive(new MemoryReader(await makeOuter()))) {
    names.push(entry.name);
    if (i % 3 === 1) await entry.skip();
    else if (i % 3 === 2) read.push([entry.name, await entry.read()]);
    i++;
  }
  assertEquals(names, files.map(([n]) => n));
  for (const [name, bytes] of read) {
    assert(equalBytes(bytes, files.find(([n]) => n === name)![1]));
  }
});

Deno.test("readOuterArchive() skips directories, symlinks and other non-files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/vm5/sub`, { recursive: true });
    await Deno.writeFile(`${dir}/vm5/sub/a.000`, randomBytes(100));
    await Deno.symlink("sub/a.000", `${dir}/vm5/link`);
    const archive = await run("tar", ["-cO", "--posix", "-C", dir, "vm5"]);
    const got = await readAll(new MemoryReader(archive));
    assertEquals(got.map(([n]) => n), ["vm5/sub/a.000"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readOuterArchive() ends cleanly at an entry boundary or inside trailing zeros", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/qubes.xml.000`, randomBytes(1000));
  const one = await run("tar", ["-cO", "--posix", "-C", dir, "qubes.xml.000"]);
  await Deno.remove(dir, { recursive: true });
  const unpadded = withoutTrailingZeros(one);
  assertEquals((await readAll(new MemoryReader(unpadded))).length, 1);
  assertEquals((await readAll(new MemoryReader(one.subarray(0, unpadded.length + 700)))).length, 1);
});

Deno.test("readOuterArchive() rejects a truncated backup", async () => {
  const archive = await makeOuter();
  // Locate the chunk's data by its content, then cut 1000 bytes into it.
  const first = files[4]![1];
  const start = findBytes(archive, first.subarray(0, 64));
  assert(start > 0);
  await assertRejects(
    () => readAll(new MemoryReader(archive.subarray(0, start + 1000))),
    IncompleteError,
    `Cannot read the backup: it ends inside "vm5/private.img.000" (1000 of ${first.length} bytes)`,
  );
  await assertRejects(
    () => readAll(new MemoryReader(archive.subarray(0, start - 100))),
    IncompleteError,
    "Cannot read the backup: it ends inside a header",
  );
});

function findBytes(haystack: Uint8Array, needle: Uint8Array): number {
  for (let i = haystack.indexOf(needle[0]!); i >= 0; i = haystack.indexOf(needle[0]!, i + 1)) {
    if (equalBytes(haystack.subarray(i, i + needle.length), needle)) return i;
  }
  return -1;
}

Deno.test("readOuterArchive() rejects an entry above maxEntrySize", async () => {
  const archive = await makeOuter();
  await assertRejects(
    () => readAll(new MemoryReader(archive), { maxEntrySize: MiB }),
    DamagedError,
    `entry "vm5/private.img.000" is ${3 * MiB + 17} bytes, more than the limit of ${MiB}`,
  );
});

Deno.test("readOuterArchive() rejects garbage and damaged headers", async () => {
  const archive = await makeOuter();
  await assertRejects(() => readAll(new MemoryReader(randomBytes(4096))), DamagedError, "checksum");
  const flipped = archive.slice();
  flipped[5] = flipped[5]! ^ 0x20;
  await assertRejects(() => readAll(new MemoryReader(flipped)), DamagedError, "checksum");
  const huge = archive.slice(0, 1024 * 1024);
  const x = huge.subarray(0, 512);
  x.set(new TextEncoder().encode("77777777777\0"), 124); // an 8 GiB pax header
  fixChecksum(x);
  await assertRejects(() => readAll(new MemoryReader(huge)), DamagedError, "implausible size");
});

Deno.test("OuterEntry.read() cannot be called twice", async () => {
  for await (const entry of readOuterArchive(new MemoryReader(await makeOuter()))) {
    await entry.read();
    await assertRejects(() => entry.read(), Error, "already read or skipped");
    await assertRejects(() => (entry as OuterEntry).skip(), Error, "already read or skipped");
    break;
  }
});
