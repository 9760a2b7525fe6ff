/**
 * `decompressSalvaged` (lib/salvage/compressed.ts) on streams made by the real compressors,
 * with a range replaced by marked-lost zeros: before the break it gives exactly what the real
 * decompressor gives for the bytes before the lost range; after it, for bzip2, exactly the
 * output of every block that lies wholly after the lost range (the blocks cut out one by one
 * by the real `bzip2recover`), and nothing for the codecs that cannot restart.
 */

import assert from "node:assert/strict";
import { sh } from "../e2e/_cli.ts";
import { seededBytes } from "../support/vm_tree.ts";
import { decompressSalvaged } from "../../lib/salvage/compressed.ts";
import { gapCause } from "../../lib/salvage/gap.ts";
import { lostBytes } from "../../lib/salvage/lost.ts";
import { bzip2Blocks } from "./_bzip2.ts";

/** Input of 100 KiB pieces with `[from, to)` replaced by marked zeros. */
function* damagedInput(bytes: Uint8Array, from: number, to: number): Generator<Uint8Array> {
  const piece = 100 * 1024;
  for (let at = 0; at < from; at += piece) yield bytes.slice(at, Math.min(from, at + piece));
  yield* lostBytes(to - from, { reason: "hmac-mismatch", chunk: "x.003" });
  for (let at = to; at < bytes.length; at += piece) {
    yield bytes.slice(at, Math.min(bytes.length, at + piece));
  }
}

async function* toAsync(input: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* input;
}

/** The output, split at break markers. */
async function runs(input: Iterable<Uint8Array>, kind: "gzip" | "bzip2" | "xz" | "zstd") {
  const parts: Uint8Array[][] = [[]];
  const causes: string[] = [];
  for await (const piece of decompressSalvaged(toAsync(input), kind)) {
    const cause = gapCause(piece);
    if (cause !== undefined) {
      causes.push(`${cause.reason} ${cause.chunk}`);
      parts.push([]);
    } else parts.at(-1)!.push(piece.slice());
  }
  const join = (pieces: Uint8Array[]) => {
    const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of pieces) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  return { runs: parts.map(join), causes };
}

/** Text-like data (compressible, so blocks are many) of `length` bytes. */
function data(length: number): Uint8Array {
  const random = seededBytes(length, 7);
  const words = ["alpha ", "beta ", "gamma\n", "delta ", "qubes ", "backup "];
  const out = new Uint8Array(length);
  let at = 0;
  for (let i = 0; at < length; i++) {
    const word = new TextEncoder().encode(words[random[i % length]! % words.length]! + i);
    out.set(word.subarray(0, length - at), at);
    at += word.length;
  }
  return out;
}

Deno.test("decompressSalvaged: up to the damage, then restart (bzip2 only)", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-zsalvage-unit-" });
  try {
    const original = data(4_000_000);
    await Deno.writeFile(`${root}/data`, original);
    const tools = { gzip: "gzip", bzip2: "bzip2", xz: "xz", zstd: "zstd -q" } as const;
    for (const [kind, tool] of Object.entries(tools) as [keyof typeof tools, string][]) {
      await t.step(kind, async () => {
        await sh(`${tool} -c '${root}/data' > '${root}/data.${kind}'`);
        const compressed = await Deno.readFile(`${root}/data.${kind}`);
        const from = Math.floor(compressed.length * 0.4), to = from + 50_000;
        const got = await runs(damagedInput(compressed, from, to), kind);
        assert.deepEqual(got.causes[0], "hmac-mismatch x.003");
        const before = got.runs[0]!;
        if (kind !== "bzip2") {
          const expected = await sh(
            `head -c ${from} '${root}/data.${kind}' | ${tool} -dc 2>/dev/null | wc -c`,
          );
          assert.equal(before.length, Number(expected.trim()), "as the real decompressor");
          assert.deepEqual(before, original.subarray(0, before.length));
          assert.equal(got.runs.length, 2);
          assert.equal(got.runs[1]!.length, 0, "nothing after the damage");
          return;
        }
        // bzip2 -dc hands on whole 5000-byte buffers only; bzip2recover cuts out each block
        // with its bit offsets: the blocks wholly before the lost range are what comes before
        // the break, those wholly after it what the restart gives.
        const blocks = await bzip2Blocks(root, "data.bzip2");
        assert.ok(blocks.length >= 4, JSON.stringify(blocks));
        const whole = blocks.filter((b) => b.end <= from * 8);
        const prefixLength = whole.reduce((n, b) => n + b.length, 0);
        assert.equal(before.length, prefixLength, "every whole block before the damage");
        assert.deepEqual(before, original.subarray(0, before.length));
        const first = blocks.find((b) => b.start >= to * 8)!;
        assert.deepEqual(got.runs[1]!, original.subarray(first.output, original.length));
      });
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
