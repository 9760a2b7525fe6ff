import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { isContinuationHeader, joinVolumes, VolumeStarts } from "../../lib/tar/multivolume.ts";
import { DamagedError } from "../../lib/errors.ts";
import { TarStream } from "../../lib/tar/tar_stream.ts";
import {
  assertSameAsExtracted,
  collect,
  equalBytes,
  fixChecksum,
  makeSparseFile,
  piecewise,
  randomBytes,
  run,
} from "./_helpers.ts";

const KiB = 1024;
const VOLUME = 10 * KiB; // tar -L 10

/**
 * Packs `paths` (relative to `dir`) the way format 2 did, `tar -Pc --sparse -M -L 10`, into
 * numbered volume files, and also extracts a single-volume archive of the same input with
 * `tar -x` into `dir/oracle` to compare against.
 */
async function packVolumes(dir: string, paths: string[], maxVolumes: number): Promise<string[]> {
  const common = ["-Pc", "--sparse", "--xform", "s:^base:vm5/\\0:", ...paths];
  await Deno.mkdir(`${dir}/vols`);
  const names = Array.from({ length: maxVolumes }, (_, i) => `vols/v${String(i).padStart(4, "0")}`);
  await run("tar", ["-M", "-L", "10", ...names.flatMap((n) => ["-f", n]), ...common], dir);
  const written = [];
  for (const name of names) {
    try {
      await Deno.stat(`${dir}/${name}`);
      written.push(`${dir}/${name}`);
    } catch {
      break;
    }
  }
  assert(written.length < maxVolumes, "ran out of volume names");
  await run("tar", ["-f", "single.tar", ...common], dir);
  await Deno.mkdir(`${dir}/oracle`);
  await run("tar", ["-xf", "single.tar", "-C", "oracle"], dir);
  return written;
}

async function* volumesOf(paths: string[], pieceSize: number) {
  for (const path of paths) yield piecewise(await Deno.readFile(path), pieceSize);
}

/** The members of joined volumes, with the continuation check on (as format 2 reads them). */
function checkedMembers(paths: string[], pieceSize: number) {
  const starts = new VolumeStarts();
  return collect(
    joinVolumes(volumesOf(paths, pieceSize), starts).pipeThrough(new TarStream(starts)),
  );
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/base`);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("joinVolumes() rejoins a sparse file whose map spans several volumes", async () => {
  await withDir(async (dir) => {
    // 1000 data runs: about 48 KiB of sparse map, spread over five 10 KiB volumes.
    const runs: [number, Uint8Array][] = [];
    for (let i = 0; i < 1000; i++) runs.push([i * 8 * KiB, randomBytes(100, i + 1)]);
    await makeSparseFile(`${dir}/base/private.img`, 1000 * 8 * KiB + 5000, runs);
    await Deno.writeFile(`${dir}/base/firewall.xml`, randomBytes(3000, 77));
    const volumes = await packVolumes(dir, ["base"], 600);
    assert(volumes.length > 300);
    // GNU tar's own -M reader fails on such sets; volume 2 starts with extension blocks, no M.
    assert(!isContinuationHeader(await Deno.readFile(volumes[1]!)));
    for (const pieceSize of [100, 64 * KiB]) {
      const members = await checkedMembers(volumes, pieceSize);
      assertEquals(
        members.map((m) => m.entry.name),
        [
          "vm5/base/",
          "vm5/base/firewall.xml",
          "vm5/base/private.img",
        ].filter((n) => members.some((m) => m.entry.name === n)),
      );
      assertEquals(members.length, 3);
      await assertSameAsExtracted(members, `${dir}/oracle`);
    }
  });
});

Deno.test("joinVolumes() rejoins long names split across volumes and members ending on a boundary", async () => {
  await withDir(async (dir) => {
    const longName = `${"l".repeat(110)}-${"x".repeat(30)}.desktop`;
    // Header (512) + 9728 bytes: the first member ends exactly at the end of volume 1.
    await Deno.writeFile(`${dir}/base/exact`, randomBytes(VOLUME - 512, 1));
    await Deno.writeFile(`${dir}/base/${longName}`, randomBytes(25000, 2));
    // Ends exactly at a later boundary too: 3 blocks of L data and header before it.
    await Deno.writeFile(`${dir}/base/exact2`, randomBytes(2 * VOLUME - 512, 3));
    await Deno.writeFile(`${dir}/base/after`, randomBytes(700, 4));
    const paths = ["base/exact", `base/${longName}`, "base/exact2", "base/after"];
    const volumes = await packVolumes(dir, paths, 20);
    let continued = 0;
    for (const volume of volumes.slice(1)) {
      if (isContinuationHeader(await Deno.readFile(volume))) continued++;
    }
    assert(continued >= 3, `only ${continued} volumes start with an M header`);
    for (const pieceSize of [1, 200, 511, 513, 1 << 20]) {
      const members = await checkedMembers(volumes, pieceSize);
      assertEquals(members.map((m) => m.entry.name), paths.map((p) => `vm5/${p}`));
      await assertSameAsExtracted(members, `${dir}/oracle`);
    }
  });
});

Deno.test("isContinuationHeader() needs typeflag M and a valid checksum, not the magic", () => {
  const block = new Uint8Array(512);
  block.set(new TextEncoder().encode("vm5/private.img"), 0);
  block.set(new TextEncoder().encode("00000001000\0"), 124);
  block[156] = 0x4d;
  fixChecksum(block);
  assert(isContinuationHeader(block));
  assert(!isContinuationHeader(block.subarray(0, 511)));
  const broken = block.slice();
  broken[0] = 0x56;
  assert(!isContinuationHeader(broken));
  const regular = block.slice();
  regular[156] = 0x30;
  fixChecksum(regular);
  assert(!isContinuationHeader(regular));
  assert(!isContinuationHeader(new Uint8Array(512)));
});

Deno.test("joinVolumes() drops an M header that arrives split over several pieces", async () => {
  const header = new Uint8Array(512);
  header.set(new TextEncoder().encode("00000000100\0"), 124);
  header[156] = 0x4d;
  fixChecksum(header);
  const rest = randomBytes(1000, 5);
  const pieces: Uint8Array[] = [
    header.subarray(0, 100),
    header.subarray(100, 300),
    new Uint8Array(0),
  ];
  const second = new Uint8Array(212 + 50);
  second.set(header.subarray(300), 0);
  second.set(rest.subarray(0, 50), 212);
  pieces.push(second, rest.subarray(50));
  // Every volume but the last has the first one's size.
  const first = new Uint8Array(512 + 1000);
  first.set([1, 2, 3]);
  async function* volumes() {
    yield ReadableStream.from([first]);
    yield ReadableStream.from(pieces);
    yield ReadableStream.from([new Uint8Array([9, 9])]); // shorter than a block: kept as is
  }
  const out: Uint8Array[] = [];
  for await (const piece of joinVolumes(volumes())) out.push(piece);
  const joined = new Uint8Array(out.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of out) {
    joined.set(piece, at);
    at += piece.length;
  }
  assert(equalBytes(joined.subarray(0, 1512), first));
  assert(equalBytes(joined.subarray(1512, 2512), rest));
  assert(equalBytes(joined.subarray(2512), new Uint8Array([9, 9])));
});

Deno.test("joinVolumes() with TarStream(starts) refuses volumes out of order, as tar -M does", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/base/private.img`, randomBytes(6 * VOLUME, 9));
    await makeSparseFile(`${dir}/base/sparse.img`, 40 * VOLUME, [
      [0, randomBytes(3 * VOLUME, 10)],
      [20 * VOLUME, randomBytes(4 * VOLUME, 11)],
    ]);
    const volumes = await packVolumes(dir, ["base"], 40);
    assert(volumes.length >= 8);
    const members = await checkedMembers(volumes, 4096);
    await assertSameAsExtracted(members, `${dir}/oracle`);
    for (const [a, b] of [[2, 3], [1, 4], [5, 6], [0, 1]] as const) {
      const swapped = [...volumes];
      [swapped[a], swapped[b]] = [swapped[b]!, swapped[a]!];
      await assertRejectsDamaged(checkedMembers(swapped, 4096), /out of order/);
    }
    // A volume left out: the next one does not continue where the archive stands.
    const gap = volumes.filter((_, i) => i !== 3);
    await assertRejectsDamaged(checkedMembers(gap, 4096), /out of order/);
    // A shorter volume in the middle: every volume but the last has one size.
    const short = [...volumes];
    short[2] = short.at(-1)!;
    await assertRejectsDamaged(checkedMembers(short, 4096), /out of order|bytes/);
  });
});

async function assertRejectsDamaged(promise: Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert(error instanceof DamagedError, String(error));
    assert(message.test(error.message), error.message);
    return;
  }
  throw new Error("resolved, expected a DamagedError");
}
