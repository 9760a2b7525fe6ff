import assert from "node:assert/strict";
import { detectCompression } from "../../lib/compress/mod.ts";
import { runTool, text } from "./_fixtures.ts";

Deno.test("detectCompression() recognises the output of each real tool", async () => {
  const data = text(10_000);
  const zlib = [
    "python3",
    "-c",
    "import sys,zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))",
  ];
  const cases: [string[], string][] = [
    [["gzip", "-c"], "gzip"],
    [["pigz", "-c"], "gzip"],
    [["bzip2", "-c"], "bzip2"],
    [["xz", "-c"], "xz"],
    [["lzma", "-c"], "lzma"],
    [["zstd", "-q", "-c"], "zstd"],
    [zlib, "zlib"],
  ];
  for (const [command, expected] of cases) {
    const compressed = await runTool(command, data);
    assert.equal(detectCompression(compressed.subarray(0, 16)), expected, command.join(" "));
  }
});

Deno.test("detectCompression() recognises every zlib level header", () => {
  for (const second of [0x01, 0x5e, 0x9c, 0xda]) {
    assert.equal(detectCompression(new Uint8Array([0x78, second, 0, 0])), "zlib");
  }
  assert.equal(detectCompression(new Uint8Array([0x78, 0x9d])), undefined);
});

Deno.test("detectCompression() returns undefined for ciphertext, tar and short input", () => {
  assert.equal(detectCompression(new TextEncoder().encode("Salted__12345678")), undefined);
  const tar = new Uint8Array(512);
  tar.set(new TextEncoder().encode("vm1/private.img"));
  assert.equal(detectCompression(tar), undefined);
  assert.equal(detectCompression(new Uint8Array([0x1f])), undefined);
  assert.equal(detectCompression(new Uint8Array(0)), undefined);
  assert.equal(detectCompression(new TextEncoder().encode("BZh0")), undefined);
});
