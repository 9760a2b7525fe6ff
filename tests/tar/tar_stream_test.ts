import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DamagedError, IncompleteError } from "../../lib/errors.ts";
import type { TarEvent } from "../../lib/tar/events.ts";
import { TarStream } from "../../lib/tar/tar_stream.ts";
import {
  assemble,
  assertRejects,
  assertSameAsExtracted,
  collect,
  equalBytes,
  fixChecksum,
  makeSparseFile,
  mergeRuns,
  piecewise,
  randomBytes,
  run,
} from "./_helpers.ts";
import { concat as concatPieces } from "../../lib/streams/mod.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const text = new TextEncoder();

function parse(bytes: Uint8Array, pieceSize = 64 * KiB) {
  return collect(piecewise(bytes, pieceSize).pipeThrough(new TarStream()));
}

/** A template-like directory: sparse images with many runs, long names, links, empty files. */
async function makeTree(root: string): Promise<void> {
  const base = `${root}/base`;
  await Deno.mkdir(`${base}/apps`, { recursive: true });
  const runs: [number, Uint8Array][] = [];
  for (let i = 0; i < 40; i++) {
    runs.push([i * 64 * KiB + (i % 3) * 4 * KiB, randomBytes(4 * KiB + (i % 5) * 512, i + 1)]);
  }
  await makeSparseFile(`${base}/private.img`, 3 * MiB, runs); // ends with a hole
  await makeSparseFile(`${base}/root.img`, 2 * MiB, [[MiB, randomBytes(8 * KiB, 99)], [
    2 * MiB - 4 * KiB,
    randomBytes(4 * KiB, 7),
  ]]);
  await makeSparseFile(`${base}/holes-only.img`, MiB, []);
  await Deno.writeFile(
    `${base}/firewall.xml`,
    text.encode('<QubesFirewallRules policy="allow"/>\n'),
  );
  await Deno.writeFile(`${base}/empty`, new Uint8Array(0));
  await Deno.writeFile(`${base}/blocks`, randomBytes(3 * 512, 5));
  const longName = `${"n".repeat(120)}-${"m".repeat(40)}.desktop`;
  await Deno.writeFile(`${base}/apps/${longName}`, text.encode("[Desktop Entry]\n"));
  await Deno.symlink("firewall.xml", `${base}/icon.png`);
  await Deno.symlink(`/usr/share/qubes/icons/${"x".repeat(130)}.png`, `${base}/long-link`);
  await Deno.link(`${base}/firewall.xml`, `${base}/firewall-hard.xml`);
}

async function withTree<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    await makeTree(dir);
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function extractAndCompare(dir: string, archive: Uint8Array, pieceSizes: number[]) {
  await Deno.writeFile(`${dir}/archive.tar`, archive);
  await Deno.mkdir(`${dir}/out`);
  await run("tar", ["-xf", `${dir}/archive.tar`, "-C", `${dir}/out`]);
  for (const size of pieceSizes) {
    const members = await parse(archive, size);
    await assertSameAsExtracted(members, `${dir}/out`);
  }
  return parse(archive);
}

Deno.test("TarStream restores an old-GNU sparse archive exactly as tar -x does", async () => {
  await withTree(async (dir) => {
    const archive = await run(
      "tar",
      ["-Pc", "--sparse", "--xform", "s:^base:vm5/\\0:", "base"],
      dir,
    );
    const members = await extractAndCompare(dir, archive, [1, 511, 513, 10240, 1 << 30]);
    const byName = new Map(members.map((m) => [m.entry.name, m]));
    const img = byName.get("vm5/base/private.img")!;
    assertEquals([img.entry.typeflag, img.entry.sparse, img.entry.size], ["S", true, 3 * MiB]);
    assertEquals(byName.get("vm5/base/holes-only.img")!.runs.length, 0);
    assertEquals(byName.get("vm5/base/icon.png")!.entry.kind, "symlink");
    assertEquals(
      byName.get("vm5/base/long-link")!.entry.linkname,
      `/usr/share/qubes/icons/${"x".repeat(130)}.png`,
    );
    const hard = members.find((m) => m.entry.kind === "hardlink")!;
    assert(hard.entry.linkname.startsWith("vm5/base/firewall"));
    assert(members.some((m) => m.entry.name.length > 150 && m.entry.name.endsWith(".desktop")));
    assertEquals(byName.get("vm5/base/")!.entry.kind, "directory");
  });
});

for (const version of ["0.0", "0.1", "1.0"]) {
  Deno.test(`TarStream restores a pax sparse ${version} archive exactly as tar -x does`, async () => {
    await withTree(async (dir) => {
      const archive = await run("tar", [
        "-c",
        "--format=posix",
        "--sparse",
        `--sparse-version=${version}`,
        "base",
      ], dir);
      const members = await extractAndCompare(dir, archive, [1, 700, 1 << 30]);
      const img = members.find((m) => m.entry.name === "base/private.img")!;
      assertEquals([img.entry.sparse, img.entry.size, img.entry.typeflag], [true, 3 * MiB, "0"]);
    });
  });
}

Deno.test("TarStream skips volume labels and pax global headers", async () => {
  await withTree(async (dir) => {
    const labelled = await run("tar", ["-c", "--sparse", "--label=Qubes", "base"], dir);
    assertEquals(String.fromCharCode(labelled[156]!), "V");
    await extractAndCompare(dir, labelled, [1 << 20]);
    const global = await run(
      "tar",
      ["-c", "--format=posix", "--pax-option=comment=hi", "base"],
      dir,
    );
    assertEquals(String.fromCharCode(global[156]!), "g");
    await Deno.remove(`${dir}/out`, { recursive: true });
    await extractAndCompare(dir, global, [333]);
  });
});

Deno.test("TarStream reads base-256 sizes and offsets of a sparse file over 8 GiB", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const head = randomBytes(4096, 3);
    const far = text.encode("data at twelve GiB");
    await makeSparseFile(`${dir}/big.img`, 20 * GiB, [[0, head], [12 * GiB, far]]);
    for (const format of [["--format=gnu"], ["--format=posix", "--sparse-version=1.0"]]) {
      const archive = await run("tar", ["-c", "--sparse", ...format, "big.img"], dir);
      const [member] = await parse(archive, 4096);
      assertEquals(member!.entry.size, 20 * GiB);
      const runs = mergeRuns(member!);
      assertEquals(runs.map((r) => r.offset), [0, 12 * GiB]);
      assert(equalBytes(runs[0]!.bytes, head));
      // GNU tar stores whole filesystem blocks: the run at 12 GiB is padded with zeros.
      assert(equalBytes(runs[1]!.bytes.subarray(0, far.length), far));
      assert(runs[1]!.bytes.subarray(far.length).every((b) => b === 0));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A ustar header as python's tarfile / qubes.tarwriter write it. */
function ustarHeader(name: string, size: number, typeflag: string): Uint8Array {
  const block = new Uint8Array(512);
  const put = (offset: number, value: string) => block.set(text.encode(value), offset);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, size.toString(8).padStart(11, "0") + "\0");
  put(136, "00000000000\0");
  put(156, typeflag);
  put(257, "ustar\x0000");
  fixChecksum(block);
  return block;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return concatPieces(parts);
}

function padded(bytes: Uint8Array): Uint8Array {
  return concat(bytes, new Uint8Array((512 - bytes.length % 512) % 512));
}

function paxRecords(records: [string, string][]): Uint8Array {
  return text.encode(
    records.map(([k, v]) => {
      const body = ` ${k}=${v}\n`;
      let length = body.length + 1;
      while (String(length).length + body.length !== length) length++;
      return `${length}${body}`;
    }).join(""),
  );
}

/** The layout of qubes.tarwriter: pax 1.0 sparse member, data unpadded, then 1024 zero bytes. */
function tarwriterArchive(name: string, realsize: number, runs: [number, Uint8Array][]) {
  const map = padded(
    text.encode(`${runs.length}\n${runs.map(([o, b]) => `${o}\n${b.length}\n`).join("")}`),
  );
  const stored = map.length + runs.reduce((n, [, b]) => n + b.length, 0);
  const pax = paxRecords([
    ["GNU.sparse.major", "1"],
    ["GNU.sparse.minor", "0"],
    ["GNU.sparse.name", name],
    ["GNU.sparse.realsize", String(realsize)],
  ]);
  return concat(
    ustarHeader("././@PaxHeader", pax.length, "x"),
    padded(pax),
    ustarHeader(`vm5/GNUSparseFile.123/${name.split("/").at(-1)}`, stored, "0"),
    map,
    ...runs.map(([, b]) => b),
    new Uint8Array(1024),
  );
}

Deno.test("TarStream reads a qubes.tarwriter member whose data is not padded", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const runs: [number, Uint8Array][] = [[0, randomBytes(1024, 4)], [5000, randomBytes(333, 5)], [
      10007,
      new Uint8Array(0),
    ]];
    const archive = tarwriterArchive("vm5/private.img", 10007, runs);
    await Deno.writeFile(`${dir}/a.tar`, archive);
    await Deno.mkdir(`${dir}/out`);
    await run("tar", ["-xf", `${dir}/a.tar`, "-C", `${dir}/out`]); // the oracle accepts it
    for (const size of [1, 100, 1 << 20]) {
      const members = await parse(archive, size);
      assertEquals(members.map((m) => m.entry.name), ["vm5/private.img"]);
      await assertSameAsExtracted(members, `${dir}/out`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TarStream emits views of the input pieces, not copies", async () => {
  const data = randomBytes(100 * KiB, 9);
  const archive = concat(ustarHeader("f", data.length, "0"), data, new Uint8Array(1024));
  const pieces = [archive.slice(0, 5000), archive.slice(5000)];
  const events: TarEvent[] = [];
  const stream = ReadableStream.from(pieces).pipeThrough(new TarStream());
  for await (const event of stream) events.push(event);
  const buffers = new Set<ArrayBufferLike>(pieces.map((p) => p.buffer));
  const data_events = events.filter((e) => e.type === "data");
  assertEquals(data_events.length, 2);
  for (const e of data_events) assert(buffers.has(e.bytes.buffer));
});

Deno.test("TarStream ignores everything after the end-of-archive marker", async () => {
  const archive = concat(
    ustarHeader("f", 3, "0"),
    padded(text.encode("abc")),
    new Uint8Array(1024),
    randomBytes(2000),
  );
  const members = await parse(archive, 100);
  assertEquals(new TextDecoder().decode(assemble(members[0]!)), "abc");
});

Deno.test("TarStream rejects a stream that ends inside a member", async () => {
  const archive = concat(
    ustarHeader("vm5/firewall.xml", 10000, "0"),
    padded(randomBytes(10000)),
    new Uint8Array(1024),
  );
  await assertRejects(
    () => parse(archive.subarray(0, 512 + 3000), 1000),
    IncompleteError,
    'Cannot read tar member "vm5/firewall.xml": the archive ends early (7000 bytes missing)',
  );
});

Deno.test("TarStream rejects a stream that ends without an end-of-archive marker", async () => {
  const archive = concat(ustarHeader("f", 3, "0"), padded(text.encode("abc")));
  await assertRejects(() => parse(archive), IncompleteError, "end-of-archive marker");
  await assertRejects(
    () => parse(archive.subarray(0, 700)),
    IncompleteError,
    "end-of-archive marker",
  );
  await assertRejects(
    () => parse(concat(archive, ustarHeader("g", 0, "0").subarray(0, 100))),
    IncompleteError,
    "inside a header",
  );
});

Deno.test("TarStream rejects a header with a flipped byte", async () => {
  const archive = concat(
    ustarHeader("f", 3, "0"),
    padded(text.encode("abc")),
    new Uint8Array(1024),
  );
  archive[10] = archive[10]! ^ 0x01;
  await assertRejects(() => parse(archive), DamagedError, "checksum does not match");
});

Deno.test("TarStream rejects a size above Number.MAX_SAFE_INTEGER", async () => {
  const header = ustarHeader("f", 0, "0");
  header.set([0x80, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0], 124); // 2^56
  fixChecksum(header);
  await assertRejects(() => parse(concat(header, new Uint8Array(1024))), DamagedError, "too large");
  header.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], 124);
  fixChecksum(header);
  await assertRejects(() => parse(concat(header, new Uint8Array(1024))), DamagedError, "negative");
});

Deno.test("TarStream rejects sparse maps that do not fit the member", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await makeSparseFile(`${dir}/img`, MiB, [[4096, randomBytes(4096)], [
      512 * KiB,
      randomBytes(8192),
    ]]);
    const original = await run("tar", ["-c", "--sparse", "--format=gnu", "img"], dir);
    assertEquals(String.fromCharCode(original[156]!), "S");
    const patch = async (offset: number, value: string, message: string) => {
      const archive = original.slice();
      archive.set(text.encode(value), offset);
      fixChecksum(archive.subarray(0, 512));
      await assertRejects(() => parse(archive), DamagedError, message);
    };
    await t.step("beyond realsize", () => patch(483, "00000100000\0", "lies beyond the file size"));
    await t.step("not ascending", () => patch(386 + 24, "00000000000\0", "not in ascending order"));
    await t.step("sum differs from size", () => patch(124, "00000100000\0", "the member"));
    await t.step("tarwriter map beyond realsize", async () => {
      const archive = tarwriterArchive("vm5/a.img", 100, [[0, randomBytes(512)]]);
      await assertRejects(() => parse(archive), DamagedError, "lies beyond the file size 100");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
