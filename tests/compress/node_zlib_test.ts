import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import { decompressPieces, runNodeZlib } from "../../lib/compress/mod.ts";
import { Piece } from "../../lib/streams/mod.ts";
import { pieceBytes, pooledPieces } from "../streams/_pooled.ts";
import { join, runTool, sha256, text } from "./_fixtures.ts";
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

/** Python's zlib fed one byte at a time: every byte it gives before the error. */
const PYTHON_UNTIL_ERROR =
  "import sys,zlib; d=zlib.decompressobj(31); b=sys.stdin.buffer.read(); " +
  "o=sys.stdout.buffer\n" +
  "try:\n  for i in range(len(b)): o.write(d.decompress(b[i:i+1]))\nexcept zlib.error: pass";

Deno.test("runNodeZlib hands on every byte decoded before an error, then throws", async () => {
  // A gzip stream with bytes of another one in its middle (as a chunk of another backup):
  // it inflates to wrong bytes for a while, then fails.
  const original = text(3 * MiB);
  const packed = await runTool(["gzip", "-c"], original);
  const other = await runTool(["gzip", "-c"], text(3 * MiB, 2));
  const spliced = packed.slice();
  const at = Math.floor(packed.length / 2);
  spliced.set(other.subarray(at + 1000, at + 200_000), at);
  const expected = await runTool(["python3", "-c", PYTHON_UNTIL_ERROR], spliced);
  assert.ok(expected.length > 0);
  async function* input() {
    for (let i = 0; i < spliced.length; i += 65536) {
      yield Piece.from(spliced.slice(i, i + 65536));
    }
  }
  const got: Uint8Array[] = [];
  await assert.rejects(async () => {
    for await (const piece of runNodeZlib(zlib.createGunzip(), input())) got.push(piece.slice());
  });
  assert.equal(sha256(join(...got)), sha256(expected), `${join(...got).length} bytes`);
});
