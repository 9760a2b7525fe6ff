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
import { lostBytes, lostCause } from "../../lib/salvage/lost.ts";
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

Deno.test("decompressSalvaged: xz in blocks (xz 5.6's default): exactly the damaged blocks lost", async () => {
  const root = await Deno.makeTempDir({ prefix: "qr-zsalvage-xz-" });
  try {
    const original = data(3_000_000);
    await Deno.writeFile(`${root}/data`, original);
    // xz 5.6 and later cut blocks in several threads by default (24 MiB at the default level);
    // `-T2 --block-size` makes the same kind of stream, with blocks small enough for a test.
    await sh(`xz -T2 --block-size=300KiB -c '${root}/data' > '${root}/data.xz'`);
    const compressed = await Deno.readFile(`${root}/data.xz`);
    const blocks = (await sh(`xz --robot -lvv '${root}/data.xz'`)).split("\n")
      .filter((line) => line.startsWith("block\t")).map((line) => line.split("\t"))
      .map((f) => ({
        start: Number(f[4]),
        end: Number(f[4]) + Number(f[6]),
        output: Number(f[5]),
        length: Number(f[7]),
        header: Number(f[11]),
      }));
    assert.ok(blocks.length >= 6);
    const from = blocks[2]!.start + 1000, to = blocks[3]!.start + 10;
    for (
      const [a, b] of [[from, from + 100], [from, to], [blocks[4]!.start + 5, blocks[4]!.end - 5]]
    ) {
      const got = new Uint8Array(original.length + 1);
      const lost = new Uint8Array(original.length + 1);
      let at = 0, breaks = 0;
      const after: Uint8Array[] = [];
      for await (
        const piece of decompressSalvaged(toAsync(damagedInput(compressed, a!, b!)), "xz")
      ) {
        if (gapCause(piece) !== undefined) breaks++;
        else if (breaks > 0) after.push(piece.slice());
        if (lostCause(piece) !== undefined) lost.fill(1, at, at + piece.length);
        else got.set(piece, at);
        at += piece.length;
      }
      const hit = blocks.filter((block) => block.start < b! && block.end > a!);
      const headerLost = hit.some((block) => block.start + block.header > a!);
      if (headerLost) {
        // A block header lost: a break, then decoding restarts at the next block.
        assert.equal(breaks, 1);
        const next = blocks.find((block) => block.start >= b!)!;
        const restarted = new Uint8Array(after.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of after) restarted.set(p, (o += p.length) - p.length);
        assert.deepEqual(restarted, original.subarray(next.output));
        continue;
      }
      assert.equal(breaks, 0, `[${a}, ${b}): no break`);
      assert.equal(at, original.length, "every byte keeps its place");
      // A damaged block keeps what its bytes before the damage decode to (as `xz -dc` gives
      // it); the rest of it is lost; every other block is exact.
      for (const block of blocks) {
        const end = block.output + block.length;
        let keep = end;
        if (hit.includes(block)) {
          const before = Number(
            (await sh(`head -c ${a} '${root}/data.xz' | xz -dc 2>/dev/null | wc -c`)).trim(),
          );
          keep = before;
          assert.ok(keep > block.output, "the start of the damaged block is kept");
        }
        for (let i = block.output; i < end; i++) {
          if (i >= keep) assert.equal(lost[i], 1, `byte ${i} lost`);
          else if (lost[i] || got[i] !== original[i]) assert.fail(`byte ${i} of [${a}, ${b})`);
        }
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("decompressSalvaged: gzip members and zstd frames: restart at the next one after the damage", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-zsalvage-unit-" });
  try {
    const original = data(4_000_000);
    await Deno.writeFile(`${root}/data`, original);
    const PIECE = 300_000;
    const cases = [
      { label: "gzip members (split --filter='gzip -c')", kind: "gzip", tool: "gzip -c" },
      { label: "zstd frames (split --filter='zstd -c')", kind: "zstd", tool: "zstd -q -c" },
    ] as const;
    for (const { label, kind, tool } of cases) {
      await t.step(label, async () => {
        // Each piece compressed on its own: the unit sizes, then the whole stream.
        const sizes = (await sh(
          `split -b ${PIECE} --filter='${tool} | wc -c' '${root}/data'`,
        )).trim().split("\n").map(Number);
        await sh(`split -b ${PIECE} --filter='${tool}' '${root}/data' > '${root}/units'`);
        const compressed = await Deno.readFile(`${root}/units`);
        assert.equal(compressed.length, sizes.reduce((n, s) => n + s, 0));
        const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((n, s) => n + s, 0));
        for (const [from, to] of [[0.3, 0.45], [0.5, 0.51]] as const) {
          const a = Math.floor(compressed.length * from), b = Math.floor(compressed.length * to);
          const got = await runs(damagedInput(compressed, a, b), kind);
          assert.deepEqual(got.causes, ["hmac-mismatch x.003"]);
          const expected = await sh(
            `head -c ${a} '${root}/units' | ${tool} -dc 2>/dev/null | wc -c`,
          );
          const before = got.runs[0]!;
          assert.equal(before.length, Number(expected.trim()), "as the real decompressor");
          assert.deepEqual(before, original.subarray(0, before.length));
          // After: exactly the output of every unit that starts after the lost range.
          const next = starts.findIndex((s) => s >= b);
          assert.ok(next > 0);
          assert.deepEqual(got.runs[1]!, original.subarray(next * PIECE));
        }
        // A unit that does not check (a byte of a unit after the break changed, as a chunk
        // of another backup would): it is skipped with a break, the next one is used.
        const start = starts.findIndex((s) => s >= compressed.length * 0.5);
        const bad = compressed.slice();
        bad[starts[start + 1]! + 200] = bad[starts[start + 1]! + 200]! ^ 0xff;
        const got = await runs(damagedInput(bad, starts[start]! - 5000, starts[start]! - 10), kind);
        assert.deepEqual(got.causes, ["hmac-mismatch x.003", "undecodable "]);
        assert.deepEqual(got.runs[1]!, original.subarray(start * PIECE, (start + 1) * PIECE));
        assert.deepEqual(got.runs[2]!, original.subarray((start + 2) * PIECE));
        // Two lost ranges, the second inside a unit after the restart: one break each, the
        // unit the second one cuts is lost whole.
        const [a1, a2] = [starts[2]! + 100, starts[4]! + 100];
        const two = [
          ...damagedInput(compressed.subarray(0, a2), a1, a1 + 1000),
          ...lostBytes(1000, { reason: "missing", chunk: "x.005" }),
          compressed.slice(a2 + 1000),
        ];
        const both = await runs(two, kind);
        assert.deepEqual(both.causes, ["hmac-mismatch x.003", "missing x.005"]);
        assert.deepEqual(both.runs[1]!, original.subarray(3 * PIECE, 4 * PIECE));
        assert.deepEqual(both.runs[2]!, original.subarray(5 * PIECE));
      });
    }
    await t.step("zstd frames without a checksum are not used after the damage", async () => {
      await sh(`split -b ${PIECE} --filter='zstd -q -c --no-check' '${root}/data' > '${root}/nc'`);
      const compressed = await Deno.readFile(`${root}/nc`);
      const a = Math.floor(compressed.length * 0.3);
      const got = await runs(damagedInput(compressed, a, a + 1000), "zstd");
      assert.equal(got.runs.length, 2);
      assert.equal(got.runs[1]!.length, 0);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("decompressSalvaged: pzstd's frames (each after a skippable frame): restart at the next frame, no break between frames", async () => {
  const root = await Deno.makeTempDir({ prefix: "qr-zsalvage-unit-" });
  try {
    const original = data(40_000_000);
    await Deno.writeFile(`${root}/data`, original);
    await sh(`pzstd -q -p 2 -c '${root}/data' > '${root}/data.zst'`);
    const compressed = await Deno.readFile(`${root}/data.zst`);
    // Where each frame starts, and the output of every frame from the one after the damage.
    const starts: number[] = [];
    for (let i = 0; i + 4 <= compressed.length; i++) {
      if (
        compressed[i] === 0x28 && compressed[i + 1] === 0xb5 && compressed[i + 2] === 0x2f &&
        compressed[i + 3] === 0xfd
      ) starts.push(i);
    }
    assert.ok(starts.length >= 3, `${starts.length} frames`);
    const from = starts[1]! + 1000, to = from + 5000;
    const next = starts.findIndex((s) => s >= to);
    const rest = await sh(
      `tail -c +${starts[next]! + 1} '${root}/data.zst' | zstd -dcq | wc -c`,
    );
    const got = await runs(damagedInput(compressed, from, to), "zstd");
    assert.deepEqual(got.causes, ["hmac-mismatch x.003"]);
    assert.deepEqual(got.runs[1]!, original.subarray(original.length - Number(rest.trim())));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
