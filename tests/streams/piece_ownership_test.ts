/**
 * Buffer ownership under the debug checks (`setPieceChecks(true)`): the checks catch a use
 * after recycle, a double recycle and a use after hand-over, and the real stages keep the
 * rules for every codec, for `openssl enc`, split pieces, a read given up mid-chunk and an
 * error mid-chunk, and for whole backups of formats 2, 3 and 4.
 */

import assert from "node:assert/strict";
import { type Compression, decompressStream } from "../../lib/compress/mod.ts";
import { OpensslDecryptStream } from "../../lib/crypto/mod.ts";
import { RecoverError } from "../../lib/errors.ts";
import { openBackup } from "../../lib/format/open.ts";
import {
  handOver,
  PieceOwnershipError,
  PiecePool,
  recycle,
  setPieceChecks,
  soleView,
} from "../../lib/streams/piece_pool.ts";
import { join, random, runTool, sha256, text } from "../compress/_fixtures.ts";
import { buildBackup, seededBytes } from "../support/mod.ts";

/** Runs `body` with the checks on. */
async function checked<T>(body: () => Promise<T> | T): Promise<T> {
  const before = setPieceChecks(true);
  try {
    return await body();
  } finally {
    setPieceChecks(before);
  }
}

/** `data` as pooled pieces of `size`, each handed over to the stream's reader. */
function handedOverPieces(data: Uint8Array, size: number, pool = new PiecePool(size, 8)) {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at === data.length) return controller.close();
      const piece = pool.take(Math.min(size, data.length - at));
      piece.set(data.subarray(at, at + piece.length));
      at += piece.length;
      controller.enqueue(handOver(piece));
    },
  }, { highWaterMark: 0 });
}

async function digest(stream: ReadableStream<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part.slice());
  return sha256(join(...parts));
}

Deno.test("piece checks catch a double recycle, a use after recycle and a use after hand-over", async (t) => {
  await checked(async () => {
    await t.step("a pooled piece recycled twice", () => {
      const pool = new PiecePool(1024, 4);
      const piece = pool.take(1000);
      recycle(piece);
      assert.throws(() => recycle(piece), PieceOwnershipError);
    });
    await t.step("a stale view of a recycled piece sees nothing and cannot write", () => {
      const pool = new PiecePool(1024, 4);
      const piece = pool.take(1000);
      piece.fill(7);
      recycle(piece);
      assert.equal(piece.length, 0);
      assert.throws(() => piece.set([1], 0), TypeError);
      const again = pool.take(1000); // The same memory, under a new buffer object.
      assert.equal(again[999], 7);
    });
    await t.step("a sole view recycled twice", () => {
      const view = soleView(new Uint8Array(64));
      recycle(view);
      assert.throws(() => recycle(view), PieceOwnershipError);
    });
    await t.step("the giver's view after hand-over", () => {
      const pool = new PiecePool(1024, 4);
      const piece = pool.take(100);
      piece.fill(3);
      const given = handOver(piece);
      assert.equal(piece.length, 0);
      assert.equal(given[99], 3);
      assert.throws(() => handOver(piece), PieceOwnershipError);
      assert.throws(() => recycle(piece), PieceOwnershipError);
      recycle(given);
      assert.throws(() => recycle(given), PieceOwnershipError);
    });
    await t.step(
      "split pieces: parts are not moved, the buffer comes back with the last part",
      () => {
        const pool = new PiecePool(1024, 4);
        const piece = pool.take(1000);
        const a = piece.subarray(0, 600), b = piece.subarray(600);
        assert.equal(handOver(a), a); // A part cannot be moved: its sibling still reads.
        recycle(a);
        assert.equal(b.length, 400); // Still readable.
        recycle(b);
        assert.equal(b.length, 0);
        assert.throws(() => recycle(b), PieceOwnershipError);
      },
    );
  });
  // Without checks, the same misuse goes unnoticed (which is why tests run with them).
  const before = setPieceChecks(false);
  try {
    const pool = new PiecePool(64, 1);
    const piece = pool.take(64);
    recycle(piece);
    recycle(piece);
    assert.equal(piece.length, 64);
  } finally {
    setPieceChecks(before);
  }
});

const INPUT = join(text(1024 * 1024), random(512 * 1024), text(1024 * 1024, 5));
const PYTHON_ZLIB =
  "import sys, zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))";
const CODECS: [Compression, string[]][] = [
  ["gzip", ["gzip", "-c"]],
  ["zlib", ["python3", "-c", PYTHON_ZLIB]],
  ["bzip2", ["bzip2", "-c"]],
  ["xz", ["xz", "-c", "-1"]],
  ["lzma", ["lzma", "-c", "-1"]],
  ["zstd", ["zstd", "-q", "-c", "-T2", "-B256KiB"]],
];

Deno.test("every codec keeps the ownership rules on handed-over pooled pieces", async (t) => {
  const expected = sha256(INPUT);
  for (const [kind, command] of CODECS) {
    const compressed = await runTool(command, INPUT);
    await t.step(kind, async () => {
      await checked(async () => {
        for (const size of [4099, 64 * 1024, 2 * 1024 * 1024]) {
          const out = handedOverPieces(compressed, size).pipeThrough(decompressStream(kind));
          assert.equal(await digest(out), expected, `${kind} in ${size}-byte pieces`);
        }
      });
    });
  }
});

Deno.test("openssl enc decryption (in-place into scratch room) keeps the ownership rules", async () => {
  const plain = join(text(700_000), random(300_000));
  const encrypted = await runTool(
    ["openssl", "enc", "-e", "-aes-256-cbc", "-md", "md5", "-pass", "pass:qubes"],
    plain,
  );
  await checked(async () => {
    for (const size of [4096, 64 * 1024 + 16, 2 * 1024 * 1024]) {
      const out = handedOverPieces(encrypted, size).pipeThrough(
        new OpensslDecryptStream({ password: new TextEncoder().encode("qubes"), digest: "md5" }),
      );
      assert.equal(await digest(out), sha256(plain), `${size}-byte pieces`);
    }
  });
});

Deno.test("a read given up mid-chunk and an error mid-chunk break no ownership rule", async (t) => {
  const compressed = await runTool(["gzip", "-c"], INPUT);
  await checked(async () => {
    await t.step("cancelled after a few pieces", async () => {
      const pool = new PiecePool(64 * 1024, 8);
      const reader = handedOverPieces(compressed, 64 * 1024, pool)
        .pipeThrough(decompressStream("gzip")).getReader();
      for (let i = 0; i < 3; i++) assert.equal((await reader.read()).done, false);
      await reader.cancel(new Error("given up"));
      // The pool is still sound: what comes back out of it can be taken and recycled.
      for (let i = 0; i < 10; i++) recycle(pool.take(1000));
    });
    await t.step("damaged in the middle", async () => {
      const damaged = compressed.slice();
      for (let i = 0; i < 64; i++) damaged[Math.floor(damaged.length / 2) + i]! ^= 0x55;
      const out = handedOverPieces(damaged, 64 * 1024).pipeThrough(decompressStream("gzip"));
      await assert.rejects(digest(out), (error) => {
        assert.ok(error instanceof RecoverError, `not a RecoverError: ${error}`);
        return true;
      });
    });
  });
});

Deno.test("whole backups of formats 2, 3 and 4 read the same with the checks on", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "qr-pieces-" });
  try {
    const vm = `${work}/vm`;
    await Deno.mkdir(vm);
    await Deno.writeFile(`${vm}/private.img`, seededBytes(3 * 1024 * 1024 + 123, 9));
    await Deno.writeFile(`${vm}/firewall.xml`, new TextEncoder().encode("<firewall/>\n"));
    const vms = [{ name: "work", qid: 5, kind: "app" as const, dir: vm }];
    const pass = () => Promise.resolve(new TextEncoder().encode("qubes"));
    const specs = [
      { format: 2 as const, encrypted: true, compressed: false, volumeKiB: 512 },
      { format: 2 as const, encrypted: false, compressed: true, volumeKiB: 512 },
      { format: 3 as const, encrypted: true, compressed: true, chunkBytes: 256 * 1024 },
      { format: 3 as const, encrypted: true, compressed: false, chunkBytes: 1024 * 1024 },
      { format: 4 as const, compressed: true, chunkBytes: 1024 * 1024, scryptLogN: 10 },
    ];
    for (const [n, spec] of specs.entries()) {
      await t.step(`format ${spec.format}, spec ${n}`, async () => {
        const dir = `${work}/${n}`;
        await Deno.mkdir(dir);
        const built = await buildBackup({ ...spec, passphrase: "qubes", vms }, dir);
        const read = async () => {
          const backup = await openBackup(built.path, { passphrase: pass });
          const digests: string[] = [];
          try {
            for await (const item of backup.items()) {
              const parts: Uint8Array[] = [];
              for await (const event of item.events()) {
                if (event.type === "data") parts.push(event.bytes.slice());
                if (event.type === "entry") parts.push(new TextEncoder().encode(event.entry.name));
              }
              digests.push(`${item.name} ${sha256(join(...parts))}`);
            }
          } finally {
            await backup.close();
          }
          return digests;
        };
        const plain = await read();
        assert.ok(plain.length >= 2, plain.join("\n"));
        assert.deepEqual(await checked(read), plain);
      });
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
