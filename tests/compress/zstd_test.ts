import assert from "node:assert/strict";
import { join, runTool, sha256 } from "./_fixtures.ts";
import { codecSuite, decode, OTHER, SMALL } from "./_codec_suite.ts";

codecSuite({ kind: "zstd", command: ["zstd", "-q", "-c"], concatenates: true });
codecSuite({ kind: "zstd", command: ["zstd", "-q", "-T2", "-B1MiB", "-c"], concatenates: true });

Deno.test('decompressStream("zstd") skips skippable frames and zero padding between frames', async () => {
  const a = await runTool(["zstd", "-q", "-c"], SMALL);
  const b = await runTool(["zstd", "-q", "-c"], OTHER);
  const skippable = new Uint8Array([0x5a, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
  const input = join(a, skippable, new Uint8Array(8), b, skippable);
  assert.equal((await decode("zstd", input, 7)).sha256, sha256(join(SMALL, OTHER)));
});
