// deno-lint-ignore-file no-console
/**
 * Where our format-2 restore spends its time: each stage of the pipeline timed on its own over
 * a real backup's chunks held in memory (outer read, HMAC, AES, gunzip, volume join + tar
 * parse, tar + file writes), then the whole `restoreBackup()` for comparison.
 *
 * Usage: `deno run --allow-all tests/bench/stages.ts BACKUP` (a format-2 backup, gzip then
 * `openssl enc` per volume, e.g. one kept by `deno task bench --formats 2 --keep`; passphrase
 * from QUBES_BACKUP_PASSPHRASE). Needs memory for about three copies of the item's data.
 *
 * @module
 */

import { restoreBackup } from "../../lib/commands/mod.ts";
import { decompressStream } from "../../lib/compress/mod.ts";
import { opensslDecryptPieces } from "../../lib/crypto/mod.ts";
import { piecesStream, plainChunk } from "../../lib/format/payload.ts";
import { readOuterArchive } from "../../lib/outer/mod.ts";
import { TreeWriter } from "../../lib/output/mod.ts";
import { givenAway } from "../../lib/streams/mod.ts";
import { joinVolumes, TarStream } from "../../lib/tar/mod.ts";
import { OffThreadHmac, useHmacWorker } from "../../lib/verify/mod.ts";

const MB = 1e6;

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const pieces: Uint8Array[] = [];
  for await (const piece of stream) pieces.push(piece);
  return pieces;
}

function streamOf(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(pieces);
}

function total(pieces: Uint8Array[][]): number {
  return pieces.reduce((n, p) => n + p.reduce((m, q) => m + q.length, 0), 0);
}

async function timed<T>(label: string, bytes: () => number, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await run();
  const seconds = (performance.now() - start) / 1000;
  console.log(
    `${label.padEnd(46)} ${seconds.toFixed(2).padStart(6)} s  ` +
      `${(bytes() / MB).toFixed(0).padStart(5)} MB in  ${
        (bytes() / MB / seconds).toFixed(0).padStart(5)
      } MB/s`,
  );
  return result;
}

async function main(path: string): Promise<void> {
  const passphrase = new TextEncoder().encode(Deno.env.get("QUBES_BACKUP_PASSPHRASE") ?? "");
  const chunks: Uint8Array[] = [];
  await timed("outer read of private.img chunks (no HMAC)", () => total([chunks]), async () => {
    using file = await Deno.open(path);
    for await (const entry of readOuterArchive(file)) {
      if (/private\.img\.\d+$/.test(entry.name)) chunks.push(await entry.read());
      else await entry.skip();
    }
  });
  await timed(
    "HMAC-SHA512 in the worker, whole chunks (copied)",
    () => total([chunks]),
    async () => {
      const done = useHmacWorker();
      for (const chunk of chunks) {
        const mac = await OffThreadHmac.create("sha512", passphrase);
        mac.update(chunk.slice());
        await mac.finish();
      }
      done();
    },
  );
  const decrypted: Uint8Array[][] = [];
  await timed("AES-256-CBC (opensslDecryptPieces)", () => total([chunks]), async () => {
    for (const chunk of chunks) {
      const decrypt = opensslDecryptPieces({ password: passphrase, digest: "md5" });
      decrypted.push(
        await collect(givenAway(piecesStream(plainChunk("chunk", chunk)).pipeThrough(decrypt))),
      );
    }
  });
  chunks.length = 0;
  const volumes: Uint8Array[][] = [];
  await timed("gunzip (decompressStream, node:zlib)", () => total(decrypted), async () => {
    for (const pieces of decrypted) {
      volumes.push(await collect(streamOf(pieces).pipeThrough(decompressStream("gzip"))));
    }
  });
  decrypted.length = 0;
  let dataBytes = 0;
  await timed("volume join + TarStream (events drained)", () => total(volumes), async () => {
    async function* all() {
      for (const v of volumes) yield streamOf(v);
    }
    for await (const event of joinVolumes(all()).pipeThrough(new TarStream())) {
      if (event.type === "data") dataBytes += event.bytes.length;
    }
  });
  const out = await Deno.makeTempDir({ prefix: "qr-stages-" });
  try {
    await timed("volume join + TarStream + TreeWriter (writes)", () => total(volumes), async () => {
      async function* all() {
        for (const v of volumes) yield streamOf(v);
      }
      await joinVolumes(all()).pipeThrough(new TarStream()).pipeTo(
        new TreeWriter({ root: out, mapName: (name) => name }),
      );
    });
    volumes.length = 0;
    await Deno.remove(out, { recursive: true });
    await Deno.mkdir(out);
    let size = 0;
    await timed("whole restoreBackup() (HMAC included)", () => size, async () => {
      size = (await Deno.stat(path)).size;
      await restoreBackup(path, { output: out, passphrase: () => Promise.resolve(passphrase) });
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
  console.log(`(tar member data: ${(dataBytes / MB).toFixed(0)} MB)`);
}

const path = Deno.args[0];
if (path === undefined) {
  console.error("Usage: deno run --allow-all tests/bench/stages.ts BACKUP");
  Deno.exit(2);
}
await main(path);
