import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { decompressStream } from "../../lib/compress/mod.ts";
import { pieces, runTool, sha256, text } from "./_fixtures.ts";
import { codecSuite } from "./_codec_suite.ts";

// The 20 MiB input uses level 1: the default level takes 10 s to compress it.
codecSuite({
  kind: "xz",
  command: ["xz", "-c"],
  bigCommand: ["xz", "-1", "-c"],
  concatenates: true,
});
codecSuite({
  kind: "xz",
  command: ["xz", "-T2", "--block-size=64KiB", "-c"],
  bigCommand: ["xz", "-T2", "--block-size=1MiB", "-1", "-c"],
  concatenates: true,
});
codecSuite({
  kind: "lzma",
  command: ["lzma", "-c"],
  bigCommand: ["lzma", "-1", "-c"],
  concatenates: false,
});

Deno.test('decompressStream("xz") runs decoders side by side while the shared WASM heap grows', async () => {
  const plain = text(2_000_000);
  const compressed = await runTool(["xz", "-9", "-c"], plain); // 64 MiB dictionary each
  const readers = [0, 1, 2].map(() =>
    pieces(compressed, 1024 * 1024).pipeThrough(decompressStream("xz")).getReader()
  );
  const hashes = readers.map(() => createHash("sha256"));
  const done = readers.map(() => false);
  while (done.includes(false)) {
    for (const [i, reader] of readers.entries()) {
      if (done[i]) continue;
      const { value } = await reader.read();
      if (value === undefined) done[i] = true;
      else hashes[i]!.update(value);
    }
  }
  for (const hash of hashes) assert.equal(hash.digest("hex"), sha256(plain));
});
