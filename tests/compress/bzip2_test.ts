import assert from "node:assert/strict";
import { join, runTool, sha256 } from "./_fixtures.ts";
import { codecSuite, decode, OTHER, SMALL } from "./_codec_suite.ts";

codecSuite({ kind: "bzip2", command: ["bzip2", "-c"], concatenates: true });
// -b1: 100 kB blocks, so the 20 MiB input becomes ~200 streams. Without pbzip2 (Debian
// package pbzip2) these tests fail: "Failed to spawn 'pbzip2'".
codecSuite({ kind: "bzip2", command: ["pbzip2", "-c", "-b1"], concatenates: true });

Deno.test('decompressStream("bzip2") reads two bzip2 streams of different levels, as pbzip2 writes', async () => {
  const a = await runTool(["bzip2", "-c", "-1"], SMALL), b = await runTool(["bzip2", "-c"], OTHER);
  assert.equal((await decode("bzip2", join(a, b), 4099)).sha256, sha256(join(SMALL, OTHER)));
});
