/**
 * Buffer ownership under the debug checks (`setPieceChecks(true)`): the checks catch a use
 * after recycle, a double recycle, a use after hand-over, split or give-away, and the real
 * stages keep the rules for every codec and for `openssl enc` (CBC in place, CTR), on whole
 * and split pieces, for a read given up mid-chunk and an error mid-chunk, and for whole
 * backups of formats 2, 3 and 4.
 */

import assert from "node:assert/strict";
import { type Compression, decompressPieces } from "../../lib/compress/mod.ts";
import { opensslDecryptPieces } from "../../lib/crypto/mod.ts";
import { RecoverError } from "../../lib/errors.ts";
import { openBackup } from "../../lib/format/open.ts";
import {
  Piece,
  PieceOwnershipError,
  PiecePool,
  setPieceChecks,
} from "../../lib/streams/piece_pool.ts";
import { join, random, runTool, sha256, text } from "../compress/_fixtures.ts";
import { buildBackup, seededBytes } from "../support/mod.ts";
import { pieceBytes } from "./_pooled.ts";

/** Runs `body` with the checks on. */
async function checked<T>(body: () => Promise<T> | T): Promise<T> {
  const before = setPieceChecks(true);
  try {
    return await body();
  } finally {
    setPieceChecks(before);
  }
}

/**
 * `data` as pooled pieces of `size`, each handed over to the stream's reader; with `split`,
 * each piece is cut in three parts handed over one by one (as the zstd frame splitter and the
 * decryption's header do), so the buffer must come back with the last part only.
 */
function handedOverPieces(
  data: Uint8Array,
  size: number,
  { pool = new PiecePool(size, 8), split = false } = {},
): ReadableStream<Piece> {
  let at = 0;
  const parts: Piece[] = [];
  return new ReadableStream<Piece>({
    pull(controller) {
      if (parts.length === 0) {
        if (at === data.length) return controller.close();
        const piece = pool.take(Math.min(size, data.length - at));
        piece.bytes.set(data.subarray(at, at + piece.length));
        at += piece.length;
        if (!split || piece.length < 3) {
          parts.push(piece);
        } else {
          const [a, rest] = piece.split(Math.floor(piece.length / 3));
          parts.push(a, ...rest.split(Math.floor(rest.length / 2)));
        }
      }
      controller.enqueue(parts.shift()!.handOver());
    },
  }, { highWaterMark: 0 });
}

async function digest(stream: ReadableStream<Piece>): Promise<string> {
  return sha256(join(...await pieceBytes(stream)));
}

/** Takes and recycles pieces of `pool`: throws if a buffer it holds was lent twice or is stale. */
function assertSound(pool: PiecePool): void {
  const taken = Array.from({ length: 10 }, () => pool.take(1000));
  for (const [index, piece] of taken.entries()) piece.bytes.fill(index);
  for (const [index, piece] of taken.entries()) {
    assert.ok(piece.bytes.subarray(0, 1000).every((byte) => byte === index), "a buffer lent twice");
    piece.recycle();
  }
}

Deno.test("piece checks catch a double recycle, a use after recycle and a use after hand-over", async (t) => {
  await checked(async () => {
    await t.step("a pooled piece recycled twice", () => {
      const piece = new PiecePool(1024, 4).take(1000);
      piece.recycle();
      assert.throws(() => piece.recycle(), PieceOwnershipError);
    });
    await t.step("a recycled piece read again, and a stale view of its bytes", () => {
      const pool = new PiecePool(1024, 4);
      const piece = pool.take(1000);
      const view = piece.bytes;
      view.fill(7);
      piece.recycle();
      assert.throws(() => piece.bytes, PieceOwnershipError);
      assert.throws(() => piece.withScratch(16), PieceOwnershipError);
      assert.equal(view.length, 0); // Detached: the stale view sees nothing...
      assert.throws(() => view.set([1], 0), TypeError); // ...and cannot write.
      const again = pool.take(1000); // The same memory, under a new buffer object.
      assert.equal(again.bytes[999], 7);
    });
    await t.step("a sole piece recycled twice", () => {
      const piece = Piece.sole(new Uint8Array(64));
      piece.recycle();
      assert.throws(() => piece.recycle(), PieceOwnershipError);
      assert.throws(() => piece.bytes, PieceOwnershipError);
    });
    await t.step("a plain piece recycled twice", () => {
      const piece = Piece.from(new Uint8Array(64));
      piece.recycle();
      assert.throws(() => piece.recycle(), PieceOwnershipError);
    });
    await t.step("the giver's piece and views after hand-over", () => {
      const piece = new PiecePool(1024, 4).take(100);
      const view = piece.bytes;
      view.fill(3);
      const given = piece.handOver();
      assert.equal(view.length, 0);
      assert.equal(given.bytes[99], 3);
      assert.throws(() => piece.bytes, PieceOwnershipError);
      assert.throws(() => piece.handOver(), PieceOwnershipError);
      assert.throws(() => piece.recycle(), PieceOwnershipError);
      assert.throws(() => piece.split(10), PieceOwnershipError);
      given.recycle();
      assert.throws(() => given.recycle(), PieceOwnershipError);
    });
    await t.step("split pieces: the buffer comes back with the last part, once", () => {
      const pool = new PiecePool(1024, 4);
      const piece = pool.take(1000);
      const [a, b] = piece.split(600);
      assert.throws(() => piece.bytes, PieceOwnershipError); // Its parts own it now.
      assert.throws(() => piece.recycle(), PieceOwnershipError);
      const aView = a.handOver().bytes; // A part is not moved: its sibling still reads.
      assert.equal(aView.length, 600);
      assert.equal(b.length, 400);
      const bGiven = b.handOver();
      bGiven.recycle();
      assert.equal(aView.length, 0); // Given back with the last part: every view detached.
      assert.throws(() => bGiven.recycle(), PieceOwnershipError);
      assert.throws(() => b.recycle(), PieceOwnershipError); // Handed over already.
      assertSound(pool);
    });
    await t.step("two parts both ending where the data ends: the second recycle throws", () => {
      const pool = new PiecePool(1024, 4);
      const piece = pool.take(1000);
      const tail = piece.part(900);
      const stale = piece.part(800); // A stage that cut the same piece twice.
      tail.recycle();
      assert.throws(() => stale.recycle(), PieceOwnershipError);
      assertSound(pool);
    });
    await t.step("a piece given away cannot be recycled or given away again", () => {
      const piece = new PiecePool(1024, 4).take(100);
      piece.giveAway();
      assert.throws(() => piece.recycle(), PieceOwnershipError);
      assert.throws(() => piece.giveAway(), PieceOwnershipError);
    });
  });
  // Without checks, a spent piece can still be read (one boolean test per call), but a second
  // recycle still cannot lend its buffer twice.
  const before = setPieceChecks(false);
  try {
    const pool = new PiecePool(64, 4);
    const piece = pool.take(64);
    piece.recycle();
    piece.recycle();
    assert.equal(piece.bytes.length, 64);
    assert.notEqual(pool.take(64).bytes.buffer, pool.take(64).bytes.buffer);
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
/**
 * Codecs that recycle their input as they go, so a few buffers serve every piece. bzip2 keeps
 * a block's bytes and gives pieces away; zstd recycles in write callbacks, which Deno's
 * `node:zlib` runs late (most at the end of a frame).
 */
const RECYCLING = new Set<Compression>(["gzip", "zlib", "xz", "lzma"]);

const compressed = new Map<Compression, Uint8Array>();
async function compressedInput(kind: Compression, command: string[]): Promise<Uint8Array> {
  let data = compressed.get(kind);
  if (data === undefined) compressed.set(kind, data = await runTool(command, INPUT));
  return data;
}

Deno.test("every codec keeps the ownership rules on whole and split pooled pieces", async (t) => {
  const expected = sha256(INPUT);
  for (const [kind, command] of CODECS) {
    const input = await compressedInput(kind, command);
    await t.step(kind, async () => {
      await checked(async () => {
        for (const split of [false, true]) {
          for (const size of [4099, 64 * 1024, 2 * 1024 * 1024]) {
            const pool = new PiecePool(size, 8);
            const out = handedOverPieces(input, size, { pool, split })
              .pipeThrough(decompressPieces(kind));
            const what = `${kind} in ${size}-byte pieces${split ? ", split" : ""}`;
            assert.equal(await digest(out), expected, what);
            const pieces = Math.ceil(input.length / size);
            if (RECYCLING.has(kind) && pieces > 16) {
              assert.ok(pool.created < pieces / 2, `${what}: ${pool.created} buffers`);
            }
            assertSound(pool);
          }
        }
      });
    });
  }
});

Deno.test("openssl enc decryption (CBC in place, CTR) keeps the ownership rules", async (t) => {
  const plain = join(text(700_000), random(300_000));
  const password = new TextEncoder().encode("qubes");
  for (const cipher of ["aes-256-cbc", "aes-256-ctr"]) {
    const encrypted = await runTool(
      ["openssl", "enc", "-e", `-${cipher}`, "-md", "md5", "-pass", "pass:qubes"],
      plain,
    );
    await t.step(cipher, async () => {
      await checked(async () => {
        for (const split of [false, true]) {
          for (const size of [4096, 64 * 1024 + 16, 2 * 1024 * 1024]) {
            const pool = new PiecePool(size, 8);
            const out = handedOverPieces(encrypted, size, { pool, split }).pipeThrough(
              opensslDecryptPieces({ password, digest: "md5", cipher }),
            );
            assert.equal(await digest(out), sha256(plain), `${size}-byte pieces, split ${split}`);
            assertSound(pool);
          }
        }
      });
    });
  }
});

Deno.test("a read given up mid-chunk and an error mid-chunk break no ownership rule", async (t) => {
  const encrypted = await runTool(
    ["openssl", "enc", "-e", "-aes-256-cbc", "-md", "md5", "-pass", "pass:qubes"],
    INPUT,
  );
  const password = new TextEncoder().encode("qubes");
  const stages: [string, Uint8Array, () => TransformStream<Piece, Piece>][] = [];
  for (const [kind, command] of CODECS) {
    stages.push([kind, await compressedInput(kind, command), () => decompressPieces(kind)]);
  }
  stages.push(["openssl enc", encrypted, () => opensslDecryptPieces({ password, digest: "md5" })]);
  await checked(async () => {
    for (const [name, input, stage] of stages) {
      await t.step(`${name}: cancelled after a few pieces`, async () => {
        for (const split of [false, true]) {
          const pool = new PiecePool(64 * 1024, 8);
          const reader = handedOverPieces(input, 64 * 1024, { pool, split })
            .pipeThrough(stage()).getReader();
          // (Split parts have no scratch room: the decryption gathers them into 4 MiB
          // slices, so it may have nothing to give before the end.)
          for (let i = 0; i < 3; i++) {
            const next = await reader.read();
            if (next.done) {
              assert.ok(split && name === "openssl enc", `${name} ended early`);
              break;
            }
            next.value.recycle();
          }
          await reader.cancel(new Error("given up"));
          assertSound(pool); // What comes back out of the pool is still sound.
        }
      });
      await t.step(`${name}: damaged in the middle`, async () => {
        const damaged = input.slice();
        const middle = Math.floor(damaged.length / 2);
        for (let i = 0; i < 64; i++) damaged[middle + i]! ^= 0x55;
        // A checksum-less codec (lzma) may decode damage to other bytes: never to an ownership
        // error.
        const pool = new PiecePool(64 * 1024, 8);
        const out = handedOverPieces(damaged, 64 * 1024, { pool, split: true })
          .pipeThrough(stage());
        try {
          assert.notEqual(await digest(out), sha256(INPUT), `${name}: damage unnoticed`);
          assert.ok(name === "lzma" || name === "openssl enc", `${name}: no error`);
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          assert.ok(error instanceof RecoverError, `not a RecoverError: ${error}`);
        }
        assertSound(pool);
      });
    }
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
      { format: 3 as const, encrypted: false, compressed: false, chunkBytes: 1024 * 1024 },
      { format: 4 as const, compressed: true, chunkBytes: 1024 * 1024, scryptLogN: 10 },
    ];
    for (const [n, spec] of specs.entries()) {
      await t.step(`format ${spec.format}, spec ${n}`, async () => {
        const dir = `${work}/${n}`;
        await Deno.mkdir(dir);
        const built = await buildBackup({ ...spec, passphrase: "qubes", vms }, dir);
        /** Digests of every item; with `giveUp`, the first item is left after a few events. */
        const read = async (giveUp = false) => {
          const backup = await openBackup(built.path, { passphrase: pass });
          const digests: string[] = [];
          try {
            for await (const item of backup.items()) {
              const parts: Uint8Array[] = [];
              let events = 0;
              for await (const event of item.events()) {
                if (event.type === "data") parts.push(event.bytes.slice());
                if (event.type === "entry") parts.push(new TextEncoder().encode(event.entry.name));
                if (giveUp && digests.length === 0 && ++events === 3) break; // Mid-chunk.
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
        assert.deepEqual(await checked(() => read()), plain);
        // Leaving the first item mid-chunk leaves the rest of the backup readable.
        const rest = await checked(() => read(true));
        assert.deepEqual(rest.slice(1), plain.slice(1));
      });
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
