/**
 * Gzip and encryption in workers (lib/convert/packer.ts): an item of several 4 MiB blocks is
 * gzipped as a series of members by several workers at once and encrypted as ONE openssl CBC
 * chain by another; the real tools must read it back exactly as Qubes' restore does
 * (`openssl dgst -hmac` against every `.hmac`, `cat` of the chunks into `openssl enc -d` and
 * `gzip -d`, which reads every member). The same with the main-thread fallback, which must
 * write the same kind of stream.
 */

import assert from "node:assert/strict";
import { BackupWriter } from "../../lib/convert/backup_writer.ts";
import { BLOCK } from "../../lib/convert/packer.ts";
import { decompressStream } from "../../lib/compress/mod.ts";
import { seededBytes } from "../support/mod.ts";

const PASS = "pack-Passphrase";

async function sh(script: string, cwd: string): Promise<Uint8Array> {
  const out = await new Deno.Command("bash", {
    args: ["-c", `set -o pipefail; ${script}`],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `${script}: ${new TextDecoder().decode(out.stderr)}`);
  return out.stdout;
}

/** At least 2.5 blocks: random bytes (incompressible) alternating with text (compressible). */
function itemBytes(): Uint8Array {
  const size = Math.floor(Math.max(9_000_000, BLOCK * 2.5)) + 123;
  const bytes = seededBytes(size, 7);
  const text = new TextEncoder().encode("qubes-recover converts old backups. ".repeat(4096));
  for (let at = 0; at < size; at += 2 * text.length) {
    bytes.set(text.subarray(0, Math.min(text.length, size - at)), at);
  }
  return bytes;
}

Deno.test("packer: multi-member gzip and one CBC chain that the real tools read back", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-packer-" });
  try {
    const plain = itemBytes();
    await Deno.writeFile(`${root}/plain`, plain);
    const cases = [
      { compress: true, encrypt: true, workers: true },
      { compress: true, encrypt: true, workers: false },
      { compress: true, encrypt: false, workers: true },
      { compress: false, encrypt: true, workers: true },
      { compress: false, encrypt: true, workers: false },
    ];
    for (const settings of cases) {
      const label = `${settings.compress ? "gzip" : "no gzip"}, ${
        settings.encrypt ? "encrypted" : "not encrypted"
      }, ${settings.workers ? "in workers" : "on the main thread"}`;
      await t.step(label, async () => {
        const dir = await Deno.makeTempDir({ dir: root });
        const file = await Deno.open(`${dir}/backup`, { write: true, createNew: true });
        const writer = new BackupWriter(file, {
          passphrase: new TextEncoder().encode(PASS),
          chunkSize: 512 * 1024,
          ...settings,
        });
        try {
          await writer.writeHeader();
          // Odd piece sizes: blocks and AES blocks never line up with them.
          const pieces: Uint8Array[] = [];
          for (let at = 0; at < plain.length; at += 777_777) {
            pieces.push(plain.slice(at, at + 777_777));
          }
          await writer.writeItem("vm1/private.img", ReadableStream.from(pieces));
        } finally {
          writer.close();
          file.close();
        }
        await sh("mkdir x && tar -i -xf backup -C x", dir);
        const chunks = new TextDecoder().decode(
          await sh("ls x/vm1/ | grep -v hmac | sort", dir),
        ).trim().split("\n");
        assert.ok(chunks.length >= 6, `${chunks.length} chunks`);
        for (const chunk of chunks) {
          const mine = new TextDecoder().decode(
            await sh(`openssl dgst -sha512 -hmac '${PASS}' < x/vm1/${chunk}`, dir),
          );
          const stored = await Deno.readTextFile(`${dir}/x/vm1/${chunk}.hmac`);
          assert.equal(stored.split("= ")[1], mine.split("= ")[1], chunk);
        }
        const decrypt = settings.encrypt
          ? `| openssl enc -d -aes-256-cbc -md md5 -pass 'pass:${PASS}'`
          : "";
        const unzip = settings.compress ? "| gzip -d" : "";
        await sh(
          `cat ${chunks.map((c) => `x/vm1/${c}`).join(" ")} ${decrypt} ${unzip} > back`,
          dir,
        );
        assert.equal(
          new TextDecoder().decode(await sh("cmp back ../plain && echo same", dir)).trim(),
          "same",
        );
        if (settings.compress) {
          // A member per block: gzip -d read all of them (cmp above); there are several.
          const joined = await sh(
            `cat ${chunks.map((c) => `x/vm1/${c}`).join(" ")} ${decrypt}`,
            dir,
          );
          let members = 0;
          for (let i = 0; i + 3 < joined.length; i++) {
            if (joined[i] === 0x1f && joined[i + 1] === 0x8b && joined[i + 2] === 8) {
              if (joined[i + 3] === 0 && joined[i + 9] === 3) members++;
            }
          }
          assert.ok(members >= 3, `${members} gzip members`);
          // Our own reader (what `restore` uses) reads every member too.
          const ours = new Uint8Array(
            await new Response(
              ReadableStream.from([joined]).pipeThrough(decompressStream("gzip")),
            ).arrayBuffer(),
          );
          assert.equal(ours.length, plain.length);
          assert.ok(ours.every((byte, i) => byte === plain[i]), "our gunzip differs");
        }
      });
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a failing item stops the writer only once the chunk it was finishing is written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qr-packer-fail-" });
  try {
    const file = await Deno.open(`${dir}/backup`, { write: true, createNew: true });
    const writer = new BackupWriter(file, {
      passphrase: new TextEncoder().encode(PASS),
      encrypt: false,
      compress: false,
      chunkSize: 256 * 1024,
    });
    const source = seededBytes(3 * 256 * 1024 + 1000, 3);
    const failing = async function* (): AsyncGenerator<Uint8Array> {
      // Three full chunks, then the source fails while the third one is being finished.
      for (let at = 0; at < source.length; at += 64 * 1024) {
        yield source.slice(at, at + 64 * 1024);
      }
      throw new Error("the source broke");
    };
    try {
      await writer.writeHeader();
      await assert.rejects(writer.writeItem("vm1/private.img", failing()), /the source broke/);
      const size = (await file.stat()).size;
      assert.equal(size, writer.written, "every write counted when the writer gave up");
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal((await file.stat()).size, size, "nothing written after the writer gave up");
      // The three full chunks and their .hmac entries, in order, and nothing of the fourth.
      const names = new TextDecoder().decode(await sh("tar -i -tf backup", dir)).trim();
      assert.equal(
        names,
        [
          "backup-header",
          "backup-header.hmac",
          "vm1/private.img.000",
          "vm1/private.img.000.hmac",
          "vm1/private.img.001",
          "vm1/private.img.001.hmac",
          "vm1/private.img.002",
          "vm1/private.img.002.hmac",
        ].join("\n"),
      );
      assert.equal(writer.chunks, 3);
    } finally {
      writer.close();
      file.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
