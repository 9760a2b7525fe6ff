/**
 * `convert` keeps the compressed bytes of gzip format-2 volumes (lib/convert/gzip_splice.ts):
 * volumes made by the real tools (GNU `tar -M -L`, each volume through `gzip`, as Qubes R2 did)
 * become one gzip stream of the joined tar archive that GNU gzip, GNU tar and our reader read
 * bit-exact; the re-encoded start ends on every bit position a block can start on; the CRC-32
 * arithmetic agrees with a direct CRC.
 */

import assert from "node:assert/strict";
import { gunzipSync, gzipSync } from "node:zlib";
import { decompressStream } from "../../lib/compress/mod.ts";
import {
  crc32,
  crc32WithoutPrefix,
  gzipHeaderLength,
  walkDeflate,
} from "../../lib/convert/deflate_walk.ts";
import {
  reencodedStart,
  type SpliceCounts,
  splicedGzipItem,
  type StoredVolume,
} from "../../lib/convert/gzip_splice.ts";
import { gzipMember } from "../../lib/convert/pack_ops.ts";
import { joinVolumes, VolumeStarts } from "../../lib/tar/mod.ts";
import { seededBytes } from "../support/mod.ts";

async function sh(script: string, cwd: string): Promise<Uint8Array> {
  const out = await new Deno.Command("bash", {
    args: ["-c", `set -euo pipefail; ${script}`],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `${script}: ${new TextDecoder().decode(out.stderr)}`);
  return out.stdout;
}

/** Text, zeros and random bytes in runs, so gzip makes stored, fixed and dynamic blocks. */
function mixedBytes(size: number, seed: number): Uint8Array {
  const bytes = seededBytes(size, seed);
  const words = new TextEncoder().encode(
    "qubes backup volume continuation header deflate window block boundary ",
  );
  let at = 0;
  for (let run = 0; at < size; run++) {
    const length = Math.min(size - at, 20_000 + ((run * 7919) % 90_000));
    const kind = (run + seed) % 3;
    if (kind === 0) {
      for (let i = 0; i < length; i++) bytes[at + i] = words[(i * 31 + run) % words.length]!;
    } else if (kind === 1) {
      bytes.fill(0, at, at + length);
    }
    at += length;
  }
  return bytes;
}

const gzipAll = async function* (tar: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of tar) parts.push(part.slice());
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  yield gzipMember(joined);
};

async function collect(parts: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(ReadableStream.from(parts)).arrayBuffer());
}

Deno.test("crc32WithoutPrefix takes a prefix out of a CRC-32", () => {
  const bytes = seededBytes(70_000, 3);
  for (const cut of [0, 1, 512, 4096, 69_999]) {
    assert.equal(
      crc32WithoutPrefix(crc32(bytes), crc32(bytes.subarray(0, cut)), bytes.length - cut),
      crc32(bytes.subarray(cut)),
    );
  }
});

Deno.test("walkDeflate stops at a block start and decodes what comes before it", () => {
  const data = mixedBytes(600_000, 5);
  const member = gzipSync(data, { level: 6 });
  const header = gzipHeaderLength(member)!;
  assert.equal(header, 10);
  const { stop, output } = walkDeflate(member, header * 8, 33_280, 1 << 25);
  assert.ok(!stop.ended && stop.out >= 33_280);
  assert.deepEqual(output, data.subarray(0, stop.out));
  const whole = walkDeflate(member, header * 8, Infinity, 1 << 25);
  assert.ok(whole.stop.ended);
  assert.deepEqual(whole.output, data);
});

/** A 512-byte `M` header block with a valid checksum, as GNU tar starts a continued volume. */
function continuationBlock(name: string, size: number, offset: number): Uint8Array {
  const block = new Uint8Array(512);
  const put = (text: string, at: number) => block.set(new TextEncoder().encode(text), at);
  put(name, 0);
  put(size.toString(8).padStart(11, "0"), 124);
  put(offset.toString(8).padStart(11, "0"), 369);
  block[156] = 0x4d;
  block.fill(0x20, 148, 156);
  const sum = block.reduce((n, b) => n + b, 0);
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return block;
}

Deno.test("the kept blocks may start on any bit of a byte: GNU gzip and zlib read the splice", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-splice-bits-" });
  try {
    const first = mixedBytes(400_000, 1);
    first.fill(0, 0, 512); // not an M header
    const seen = new Set<number>();
    for (let seed = 100; seed < 400 && seen.size < 8; seed++) {
      const data = mixedBytes(200_000 + seed * 97, seed);
      data.set(continuationBlock("vm5/private.img", 123456789, 1024), 0);
      const member = gzipSync(data, { level: 1 + (seed % 9) });
      const { stop } = walkDeflate(member, 80, 512 + 32768, 1 << 25);
      const shift = stop.bit & 7;
      if (seen.has(shift)) continue;
      seen.add(shift);
      await t.step(`a kept block starting ${shift} bits into a byte (seed ${seed})`, async () => {
        const counts: SpliceCounts = { kept: 0, spliced: 0, recompressed: 0 };
        const volumes: StoredVolume[] = [
          { gzip: true, stream: ReadableStream.from([gzipSync(first)]) },
          { gzip: true, stream: ReadableStream.from([member]) },
        ];
        const out = await collect(
          splicedGzipItem(ReadableStream.from(volumes), gzipAll, new VolumeStarts(), counts),
        );
        assert.deepEqual(counts, { kept: 1, spliced: 1, recompressed: 0 });
        const expected = new Uint8Array(first.length + data.length - 512);
        expected.set(first);
        expected.set(data.subarray(512), first.length);
        assert.deepEqual(new Uint8Array(gunzipSync(out)), expected);
        await Deno.writeFile(`${root}/m.gz`, out);
        await Deno.writeFile(`${root}/expected`, expected);
        await sh(`gzip -t m.gz && gzip -dc m.gz | cmp - expected`, root);
      });
    }
    assert.equal(seen.size, 8, `bit positions seen: ${[...seen]}`);
    await t.step("re-encoded starts alone", () => {
      for (let shift = 0; shift < 8; shift++) {
        const bytes = reencodedStart(mixedBytes(40_000, shift), shift, 0);
        assert.ok(bytes.length > 0);
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("gzip volumes of GNU tar -M become one gzip stream of the joined archive", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-splice-" });
  try {
    // Two files; 256 KiB volumes, so most volumes start inside a member (an M header), some
    // between members; one file is sparse.
    await Deno.mkdir(`${root}/src`);
    await Deno.writeFile(`${root}/src/a.img`, mixedBytes(1_700_000, 21));
    await Deno.writeFile(`${root}/src/b.img`, mixedBytes(900_001, 22));
    await sh(
      "truncate -s 3M src/sparse.img && printf 'data' | dd of=src/sparse.img bs=1 seek=2000000 conv=notrunc status=none",
      root,
    );
    const files = Array.from({ length: 40 }, (_, i) => `-f v${String(i).padStart(2, "0")}`);
    await sh(`tar -c -M -L 256 --sparse ${files.join(" ")} -C src a.img b.img sparse.img`, root);
    const volumes = (await sh("ls v?? | sort", root)).length;
    assert.ok(volumes > 0);
    const names = new TextDecoder().decode(await sh("ls v?? | sort", root)).trim().split("\n")
      .filter((name) => Deno.statSync(`${root}/${name}`).size > 0);
    assert.ok(names.length >= 10, `${names.length} volumes`);
    for (const name of names) await sh(`gzip -c < ${name} > ${name}.gz`, root);

    const joined = await collect(
      joinVolumes(
        (async function* () {
          for (const name of names) {
            yield (await Deno.open(`${root}/${name}`)).readable;
          }
        })(),
      ),
    );
    await Deno.writeFile(`${root}/joined.tar`, joined);

    for (const split of [65_536, 1_000_003]) {
      await t.step(`volumes read in pieces of ${split} bytes`, async () => {
        const counts: SpliceCounts = { kept: 0, spliced: 0, recompressed: 0 };
        const starts = new VolumeStarts();
        async function* stored(): AsyncGenerator<StoredVolume> {
          for (const name of names) {
            const bytes = await Deno.readFile(`${root}/${name}.gz`);
            const pieces: Uint8Array[] = [];
            for (let at = 0; at < bytes.length; at += split) {
              pieces.push(bytes.subarray(at, at + split));
            }
            yield { gzip: true, stream: ReadableStream.from(pieces) };
          }
        }
        const out = await collect(splicedGzipItem(stored(), gzipAll, starts, counts));
        await Deno.writeFile(`${root}/item.gz`, out);
        assert.ok(counts.spliced >= 5, JSON.stringify(counts));
        assert.ok(counts.kept >= 1, JSON.stringify(counts));
        assert.equal(counts.spliced + counts.kept + counts.recompressed, names.length);
        assert.equal(starts.starts.length, names.length - 1);
        // GNU gzip and GNU tar; our reader.
        await sh("gzip -t item.gz && gzip -dc item.gz | cmp - joined.tar", root);
        await sh(
          "rm -rf x && mkdir x && tar -xzf item.gz -C x && cmp x/a.img src/a.img && cmp x/b.img src/b.img && cmp x/sparse.img src/sparse.img",
          root,
        );
        const ours = await collect(
          ReadableStream.from([out]).pipeThrough(decompressStream("gzip")),
        );
        assert.deepEqual(ours, joined);
        // Most of the compressed bytes were kept: the output is about as large as the input.
        let input = 0;
        for (const name of names) input += (await Deno.stat(`${root}/${name}.gz`)).size;
        assert.ok(out.length < input * 1.05, `${out.length} vs ${input}`);
      });
    }

    await t.step(
      "a volume that is not gzip is inflated and gzipped again; one cut short is refused",
      async () => {
        const counts: SpliceCounts = { kept: 0, spliced: 0, recompressed: 0 };
        async function* stored(): AsyncGenerator<StoredVolume> {
          for (const [i, name] of names.entries()) {
            if (i === 2) {
              yield { gzip: false, stream: (await Deno.open(`${root}/${name}`)).readable };
            } else yield { gzip: true, stream: (await Deno.open(`${root}/${name}.gz`)).readable };
          }
        }
        const out = await collect(splicedGzipItem(stored(), gzipAll, new VolumeStarts(), counts));
        assert.ok(counts.recompressed >= 1);
        await Deno.writeFile(`${root}/item2.gz`, out);
        await sh("gzip -dc item2.gz | cmp - joined.tar", root);
        // Cut short (a damaged source whose HMAC would not have matched): refused here, or at
        // the latest when convert reads its result back.
        const cut = await Deno.readFile(`${root}/${names[3]}.gz`);
        async function* broken(): AsyncGenerator<StoredVolume> {
          for (const [i, name] of names.entries()) {
            const bytes = i === 3
              ? cut.subarray(0, cut.length - 100)
              : await Deno.readFile(`${root}/${name}.gz`);
            yield { gzip: true, stream: ReadableStream.from([bytes]) };
          }
        }
        await assert.rejects(collect(splicedGzipItem(broken(), gzipAll, new VolumeStarts())));
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
