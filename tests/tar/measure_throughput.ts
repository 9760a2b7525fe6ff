// deno-lint-ignore-file no-console
/**
 * Measures {@link TarStream} throughput on a 1 GiB sparse image (about 30% random data, 30%
 * text, 40% holes) archived by GNU tar, fed in 1 MiB pieces to a consumer that only counts
 * bytes, next to the time `tar -xf` takes for the same archive. Not a test (too slow for the
 * suite): `deno run --allow-all tests/tar/measure_throughput.ts [--format=posix]`.
 *
 * @module
 */

import { TarStream } from "../../lib/tar/tar_stream.ts";
import { randomBytes, run } from "./_helpers.ts";

const MiB = 1024 * 1024;
const SEGMENT = 64 * 1024;
const SIZE = 1024 * MiB;
const extra = Deno.args;

async function makeImage(path: string): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const random = randomBytes(4 * MiB, 42);
  const text = new TextEncoder().encode(
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit; /usr/lib/qubes config=1\n".repeat(
      4 * MiB / 82 + 1,
    ),
  ).subarray(0, 4 * MiB);
  let seed = 12345;
  for (let at = 0; at < SIZE; at += SEGMENT) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const kind = (seed >>> 8) % 10; // 0-2 random, 3-5 text, 6-9 hole
    if (kind >= 6) continue;
    const source = kind < 3 ? random : text;
    const from = (seed >>> 4) % (source.length - SEGMENT);
    await file.seek(at, Deno.SeekMode.Start);
    await file.write(source.subarray(from, from + SEGMENT));
  }
  await file.truncate(SIZE);
}

function pieces(path: string): ReadableStream<Uint8Array> {
  let file: Deno.FsFile;
  return new ReadableStream({
    async start() {
      file = await Deno.open(path);
    },
    async pull(controller) {
      const buffer = new Uint8Array(MiB);
      let filled = 0;
      while (filled < MiB) {
        const n = await file.read(buffer.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      if (filled > 0) controller.enqueue(buffer.subarray(0, filled));
      if (filled < MiB) {
        file.close();
        controller.close();
      }
    },
  });
}

const dir = await Deno.makeTempDir();
try {
  await makeImage(`${dir}/private.img`);
  await run("tar", ["-c", "--sparse", ...extra, "-f", `${dir}/img.tar`, "-C", dir, "private.img"]);
  const archiveSize = (await Deno.stat(`${dir}/img.tar`)).size;
  await run("cat", [`${dir}/img.tar`]); // warm the page cache

  let t = performance.now();
  let read = 0;
  for await (const piece of pieces(`${dir}/img.tar`)) read += piece.length;
  const readOnly = performance.now() - t;

  t = performance.now();
  let bytes = 0;
  let events = 0;
  for await (const event of pieces(`${dir}/img.tar`).pipeThrough(new TarStream())) {
    events++;
    if (event.type === "data") bytes += event.bytes.length;
  }
  const parsed = performance.now() - t;

  await Deno.mkdir(`${dir}/out`);
  t = performance.now();
  await run("tar", ["-xf", `${dir}/img.tar`, "-C", `${dir}/out`]);
  const tarX = performance.now() - t;

  const mb = archiveSize / 1e6;
  const line = (what: string, ms: number) =>
    `${what.padEnd(34)} ${(ms / 1000).toFixed(2).padStart(6)} s  ${
      (mb / (ms / 1000)).toFixed(0).padStart(5)
    } MB/s`;
  console.log(
    `archive ${
      (archiveSize / MiB).toFixed(0)
    } MiB (${read} bytes), data ${bytes} bytes, ${events} events`,
  );
  console.log(line("read in 1 MiB pieces only", readOnly));
  console.log(line("TarStream, consumer counts bytes", parsed));
  console.log(line("tar -xf (writes the sparse file)", tarX));
} finally {
  await Deno.remove(dir, { recursive: true });
}
