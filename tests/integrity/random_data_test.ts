/**
 * What random-looking bytes (ciphertext, a wrong key's plaintext, the middle of a compressed
 * stream, a VM's own data) must not be taken for: a signature so short that such bytes match it
 * by chance makes a valid backup fail by chance (the test suite saw it as a flaky test).
 *
 * - The key derivation (MD5 or SHA-256) is settled by the plaintext the first chunk decrypts to
 *   under MD5 first: zlib's two-byte header (and gzip's, without its method byte) passed the
 *   wrong key's random plaintext one time in about 6 500, and a valid backup made with the
 *   SHA-256 derivation was then read with the MD5 key and refused.
 * - With a guessed header (damaged or missing), a format-3 chunk after the first that starts
 *   like a format-2 volume of its own is refused (`notStandaloneVolumes`): any compressor's magic
 *   counted, so ciphertext starting with zlib's or gzip's two bytes (one chunk in about 6 500)
 *   or a VM image holding a gzip file at a chunk boundary was refused, although a format-2
 *   backup writes every volume of an item the same way as its first.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { detectCompression } from "../../lib/compress/mod.ts";
import { plausiblePlaintext } from "../../lib/format/payload.ts";
import { restoreBackup } from "../../lib/commands/restore.ts";
import { RecoverError } from "../../lib/errors.ts";
import { sh } from "../e2e/_cli.ts";
import { repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, type SmallWorld, withSmallWorld } from "./_small.ts";
import { seededBytes } from "../support/vm_tree.ts";

/** `count` pseudo-random 512-byte blocks (AES-CTR under a fixed key: the same every run). */
function* randomBlocks(count: number): Generator<Uint8Array> {
  const cipher = createCipheriv("aes-256-ctr", new Uint8Array(32).fill(7), new Uint8Array(16));
  const per = 1024;
  for (let done = 0; done < count; done += per) {
    const bytes = new Uint8Array(cipher.update(new Uint8Array(512 * per)));
    for (let i = 0; i < per && done + i < count; i++) yield bytes.subarray(i * 512, i * 512 + 512);
  }
}

Deno.test("detectCompression() needs gzip's method byte, not its two magic bytes alone", () => {
  assert.equal(detectCompression(new Uint8Array([0x1f, 0x8b, 0x08, 0x00])), "gzip");
  assert.equal(detectCompression(new Uint8Array([0x1f, 0x8b, 0x07, 0x00])), undefined);
  assert.equal(detectCompression(new Uint8Array([0x1f, 0x8b])), undefined);
});

Deno.test("the wrong key's random plaintext is not taken for a Qubes stream's start", () => {
  // 50 000 blocks: the old test (any compressor's magic, zlib and two-byte gzip included)
  // passed about 8 of them; the one now in use passes about one in 8 million.
  let twoByteMagics = 0;
  let plausible = 0;
  for (const block of randomBlocks(50_000)) {
    const zlib = block[0] === 0x78 && (0x7800 + block[1]!) % 31 === 0;
    if (zlib || (block[0] === 0x1f && block[1] === 0x8b)) twoByteMagics++;
    if (plausiblePlaintext(block)) plausible++;
  }
  assert.ok(twoByteMagics > 0, "the data has blocks the old test passed");
  assert.equal(plausible, 0);
  // What it must still pass: a tar header, and each compressor Qubes filters write.
  const header = new Uint8Array(512);
  header.set(new TextEncoder().encode("vm5/private.img"));
  header.set(new TextEncoder().encode("0000644\0"), 100);
  header[156] = 0x30;
  header.fill(0x20, 148, 156);
  const sum = header.reduce((n, b) => n + b, 0);
  header.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  assert.ok(plausiblePlaintext(header));
  assert.ok(!plausiblePlaintext(new Uint8Array([0x78, 0x9c, ...new Uint8Array(510)])), "zlib");
});

Deno.test("the wrong key's plaintext that starts with a compressor's magic is checked beyond it", async () => {
  // Random blocks behind each magic Qubes filters write: the magic alone passed all of them
  // (so the wrong key's plaintext one time in about 8 million for gzip's or lzma's three bytes);
  // the stream header after it passes about 3 in 2 048 behind gzip's, 1 in 65 536 behind lzma's.
  const magics: Record<string, number[]> = {
    gzip: [0x1f, 0x8b, 0x08],
    bzip2: [0x42, 0x5a, 0x68, 0x39],
    xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    zstd: [0x28, 0xb5, 0x2f, 0xfd],
    lzma: [0x5d, 0x00, 0x00],
  };
  const limits: Record<string, number> = { gzip: 250, bzip2: 0, xz: 30, zstd: 60_000, lzma: 10 };
  for (const [name, magic] of Object.entries(magics)) {
    let passed = 0;
    for (const block of randomBlocks(100_000)) {
      const head = block.slice();
      head.set(magic);
      assert.equal(detectCompression(head), name === "bzip2" ? "bzip2" : name);
      if (plausiblePlaintext(head)) passed++;
    }
    // zstd has only one reserved bit after its four-byte magic (2^-33 in all).
    assert.ok(passed <= limits[name]!, `${name}: ${passed} of 100 000 passed`);
  }
  // What every Qubes filter writes (tar piped through it, as --use-compress-program runs it)
  // still passes, with each tool's own output.
  const dir = await Deno.makeTempDir({ prefix: "qr-random-data-" });
  try {
    await Deno.writeFile(`${dir}/data`, seededBytes(50_000, 33));
    for (
      const filter of [
        "gzip",
        "gzip -1",
        "gzip -9",
        "pigz",
        "pigz -9",
        "bzip2",
        "pbzip2",
        "xz",
        "xz -T2",
        "lzma",
        "zstd",
        "zstd -19",
      ]
    ) {
      await sh(`cd '${dir}' && tar -c data | ${filter} > out && head -c 512 out > head`);
      const head = await Deno.readFile(`${dir}/head`);
      assert.notEqual(detectCompression(head), undefined, filter);
      assert.ok(plausiblePlaintext(head), `${filter}: ${[...head.subarray(0, 16)].join(" ")}`);
    }
    // An empty stream (bzip2 writes its end-of-stream marker at once).
    await sh(`cd '${dir}' && : | bzip2 > head`);
    assert.ok(plausiblePlaintext(await Deno.readFile(`${dir}/head`)), "empty bzip2");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Chunk size of the backups below. */
const C = 65536;

/**
 * Builds a plain format-3 backup of `world` whose `private.img` is `image` (64 KiB chunks),
 * checks that every chunk after the first starts with `head`, drops `backup-header`, and
 * restores the rest: exit 5 (the header missing) and the image bit-exact.
 */
async function restoredWithoutHeader(
  root: string,
  world: SmallWorld,
  image: Uint8Array,
  head: Uint8Array,
): Promise<void> {
  await Deno.writeFile(`${world.workDir}/private.img`, image);
  const built = await buildSmall(world, { format: 3, chunkBytes: C }, `${root}/b`);
  const chunks = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
    .chunks;
  assert.ok(chunks.length >= 4, `${chunks.length} chunks`);
  const names = await untar(built.path, `${root}/e`);
  for (const chunk of chunks.slice(1)) {
    const start = (await Deno.readFile(`${root}/e/${chunk}`)).subarray(0, head.length);
    assert.deepEqual(start, head, chunk);
  }
  await repack(`${root}/e`, names.filter((n) => n !== "backup-header"), `${root}/x.backup`);
  const warnings: string[] = [];
  let error: unknown;
  try {
    await restoreBackup(`${root}/x.backup`, {
      passphrase: () => Promise.resolve(new TextEncoder().encode(PASS)),
      output: `${root}/out`,
      reporter: { info() {}, warn: (message) => void warnings.push(message) },
    });
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof RecoverError, String(error));
  assert.equal(error.exitCode, 5, `${error.message}\n${warnings.join("\n")}`);
  assert.deepEqual(await Deno.readFile(`${root}/out/work/private.img`), image);
}

Deno.test("a guessed header: a format-3 image holding gzip data at its chunk boundaries is restored", async () => {
  await withSmallWorld("qr-random-data-", async (root, world) => {
    // Every 512-byte block of the image starts like a gzip file (as a VM image holding .gz
    // files may at a chunk boundary): every chunk after the first starts with 1F 8B 08 00.
    const image = seededBytes(4 * C + 3000, 31);
    const gzip = new Uint8Array([0x1f, 0x8b, 0x08, 0x00]);
    for (let at = 0; at < image.length; at += 512) image.set(gzip, at);
    // The header missing: read with format 3's defaults, and the image, whose chunks all
    // verify, restored.
    await restoredWithoutHeader(root, world, image, gzip);
  });
});

Deno.test("a guessed header: a format-3 image holding a tar volume's M header at its chunk boundaries is restored", async () => {
  await withSmallWorld("qr-random-data-", async (root, world) => {
    // A GNU multi-volume tar (as a user may keep in a VM: a split archive of their own files)
    // starts its later volumes with an `M` continuation header. Every 512-byte block of the
    // image is such a header, made by GNU tar, so every chunk after the first starts with a
    // valid `M` header naming the user's file, not a member of the item.
    await sh(
      `cd '${root}' && mkdir -p user && head -c 20000 /dev/zero > user/big.iso && tar --format=gnu -c -M -L 10 -f v1.tar -f v2.tar -f v3.tar user/big.iso`,
    );
    const m = (await Deno.readFile(`${root}/v2.tar`)).subarray(0, 512);
    assert.equal(String.fromCharCode(m[156]!), "M");
    const image = seededBytes(4 * C + 3000, 32);
    for (let at = 0; at + 512 <= image.length; at += 512) image.set(m, at);
    await restoredWithoutHeader(root, world, image, m);
  });
});
