import assert from "node:assert/strict";
import { join, runTool, sha256 } from "./_fixtures.ts";
import { codecSuite, decode, OTHER, SMALL } from "./_codec_suite.ts";
import { decompressPieces } from "../../lib/compress/mod.ts";
import { Piece } from "../../lib/streams/piece_pool.ts";
import { pieceBytes, pooledPieces } from "../streams/_pooled.ts";

codecSuite({ kind: "zstd", command: ["zstd", "-q", "-c"], concatenates: true });
codecSuite({ kind: "zstd", command: ["zstd", "-q", "-T2", "-B1MiB", "-c"], concatenates: true });

Deno.test('decompressStream("zstd") skips skippable frames and zero padding between frames', async () => {
  const a = await runTool(["zstd", "-q", "-c"], SMALL);
  const b = await runTool(["zstd", "-q", "-c"], OTHER);
  const skippable = new Uint8Array([0x5a, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
  const input = join(a, skippable, new Uint8Array(8), b, skippable);
  assert.equal((await decode("zstd", input, 7)).sha256, sha256(join(SMALL, OTHER)));
});

Deno.test('decompressPieces("zstd") reads frames that share one pooled or decrypted piece', async (t) => {
  // Several frames in each piece: the frame splitter hands the decoder parts of one buffer, and
  // giving the buffer back after the first part would let the next read overwrite the rest.
  const a = await runTool(["zstd", "-q", "-c"], SMALL);
  const b = await runTool(["zstd", "-q", "-c"], OTHER);
  const input = join(a, b, a, b, a);
  const plain = sha256(join(SMALL, OTHER, SMALL, OTHER, SMALL));
  await t.step("pooled pieces, reused for the next reads", async () => {
    const { stream, buffers } = pooledPieces(input, 4096);
    assert.equal(
      sha256(join(...await pieceBytes(stream.pipeThrough(decompressPieces("zstd"))))),
      plain,
    );
    assert.ok(buffers.size < Math.ceil(input.length / 4096), `${buffers.size} buffers`);
  });
  await t.step("pieces that are sole views of their buffers (decryption results)", async () => {
    const pieces = [input.slice(0, 50_000), input.slice(50_000)].map(Piece.sole);
    const stream = ReadableStream.from(pieces);
    assert.equal(
      sha256(join(...await pieceBytes(stream.pipeThrough(decompressPieces("zstd"))))),
      plain,
    );
  });
});
