import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import { decompressPieces } from "../../lib/compress/mod.ts";
import { pieceBytes, pooledPieces } from "../streams/_pooled.ts";
import { join, runTool, sha256 } from "./_fixtures.ts";
import { codecSuite, decode, MiB, OTHER, SMALL } from "./_codec_suite.ts";

const PYTHON_ZLIB =
  "import sys,zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))";
const PYTHON_DEFLATE = "import sys,zlib; c=zlib.compressobj(6, zlib.DEFLATED, -15); " +
  "sys.stdout.buffer.write(c.compress(sys.stdin.buffer.read()) + c.flush())";

codecSuite({ kind: "gzip", command: ["gzip", "-c"], concatenates: true });
codecSuite({ kind: "gzip", command: ["pigz", "-c"], concatenates: true });
// OpenSSL 3 here has no zlib, so `openssl enc -z` output is made with Python's zlib
codecSuite({
  kind: "zlib",
  command: ["python3", "-c", PYTHON_ZLIB],
  label: "python3 zlib.compress()",
  concatenates: false,
});

Deno.test('decompressStream("gzip") reads every member of `cat a.gz b.gz` (DecompressionStream cannot)', async () => {
  const a = await runTool(["gzip", "-c"], SMALL), b = await runTool(["pigz", "-c"], OTHER);
  const result = await decode("gzip", join(a, b, a), MiB);
  assert.equal(result.sha256, sha256(join(SMALL, OTHER, SMALL)));
});

Deno.test('decompressStream("zlib") falls back to raw deflate without a zlib header', async () => {
  const raw = await runTool(["python3", "-c", PYTHON_DEFLATE], SMALL);
  assert.equal((await decode("zlib", raw, 4099)).sha256, sha256(SMALL));
});

Deno.test("node:zlib streams expose the native handle the fast inflater drives", () => {
  // Without it decoding still works (through the Node stream), only slower.
  const gunzip = zlib.createGunzip() as unknown as { _handle?: { writeSync?: unknown } };
  assert.equal(typeof gunzip._handle?.writeSync, "function");
  (gunzip as unknown as { destroy(): void }).destroy();
});

Deno.test('decompressPieces("gzip") gives pooled input pieces back once inflated', async () => {
  const packed = await runTool(["gzip", "-c"], SMALL);
  const { stream: input, buffers } = pooledPieces(packed, 4096);
  const result = await pieceBytes(input.pipeThrough(decompressPieces("gzip")));
  assert.equal(sha256(join(...result)), sha256(SMALL));
  assert.ok(
    buffers.size < 4,
    `${buffers.size} buffers for ${Math.ceil(packed.length / 4096)} pieces`,
  );
});
