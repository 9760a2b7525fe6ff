import assert from "node:assert/strict";
import { decompressStream } from "../../lib/compress/mod.ts";
import { DamagedError } from "../../lib/errors.ts";
import { drain, join, pieces, random, runTool } from "./_fixtures.ts";
import { KiB, MiB, SMALL } from "./_codec_suite.ts";

Deno.test("decompressStream() yields bounded pieces of a huge output and stops when cancelled", async () => {
  const zeros = await runTool(["zstd", "-q", "-c"], new Uint8Array(256 * MiB));
  assert.ok(zeros.length < 64 * KiB);
  const reader = pieces(zeros, MiB).pipeThrough(decompressStream("zstd")).getReader();
  for (let i = 0; i < 3; i++) {
    const { value } = await reader.read();
    assert.ok(value !== undefined && value.length <= MiB && value.every((b) => b === 0));
  }
  await reader.cancel();
});

Deno.test("decompressStream() passes an upstream error through unchanged", async () => {
  const failure = new Error("disk on fire");
  const compressed = await runTool(["gzip", "-c"], SMALL);
  const upstream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(compressed.subarray(0, 100));
      controller.error(failure);
    },
  });
  await assert.rejects(drain(upstream.pipeThrough(decompressStream("gzip"))), (e) => e === failure);
});

Deno.test("decompressStream() errors its writable side on corrupt data", async () => {
  const stream = decompressStream("gzip");
  const input = join(new TextEncoder().encode("not gzip"), random(8 * MiB));
  const piped = pieces(input, 64 * KiB).pipeTo(stream.writable);
  await assert.rejects(drain(stream.readable), DamagedError);
  await assert.rejects(piped, DamagedError);
});
