import assert from "node:assert/strict";
import {
  PiecePool,
  recycle,
  SCRATCH_BYTES,
  scratchAfter,
  setPieceChecks,
  soleView,
} from "../../lib/streams/piece_pool.ts";

// These tests look at which buffer objects come back: the pool's normal mode, without the
// ownership checks (which move every recycled buffer to a new object; see
// piece_ownership_test.ts).
setPieceChecks(false);

Deno.test("PiecePool lends buffers with scratch room and takes them back", async (t) => {
  await t.step("a recycled buffer is the next one taken", () => {
    const pool = new PiecePool(1024, 4);
    const first = pool.take(1000);
    assert.equal(first.length, 1000);
    assert.equal(first.buffer.byteLength, 1024 + SCRATCH_BYTES);
    const buffer = first.buffer;
    recycle(first);
    const second = pool.take(512);
    assert.equal(second.buffer, buffer);
    assert.equal(second.length, 512);
    assert.notEqual(pool.take(512).buffer, buffer);
  });

  await t.step("scratch room follows only the end of the data read into a buffer", () => {
    const pool = new PiecePool(1024, 4);
    const piece = pool.take(1000);
    assert.equal(scratchAfter(piece), 1024 + SCRATCH_BYTES - 1000);
    assert.equal(scratchAfter(piece.subarray(16)), 1024 + SCRATCH_BYTES - 1000);
    // The first bytes of a piece are followed by its own data, not by scratch.
    assert.equal(scratchAfter(piece.subarray(0, 16)), 0);
    assert.equal(scratchAfter(new Uint8Array(1000)), 0);
    recycle(piece);
    assert.equal(scratchAfter(piece), 0); // Given back: no longer this view's.
  });

  await t.step("a piece longer than the pool's is a plain buffer", () => {
    const pool = new PiecePool(1024, 4);
    const big = pool.take(2000);
    assert.equal(scratchAfter(big), 0);
    recycle(big);
    assert.notEqual(pool.take(1024).buffer, big.buffer);
  });

  await t.step("at most `keep` free buffers are kept", () => {
    const pool = new PiecePool(64, 1);
    const a = pool.take(64), b = pool.take(64);
    recycle(a);
    recycle(b);
    assert.equal(pool.take(64).buffer, a.buffer);
    assert.notEqual(pool.take(64).buffer, b.buffer);
  });

  await t.step("a piece transferred away and back is adopted again", () => {
    const pool = new PiecePool(1024, 4);
    const piece = pool.take(100);
    piece.set([1, 2, 3]);
    const back = structuredClone(piece.buffer, { transfer: [piece.buffer as ArrayBuffer] });
    const view = new Uint8Array(back, 0, 100);
    assert.equal(piece.length, 0); // Detached.
    assert.equal(scratchAfter(view), 0);
    pool.adopt(view);
    assert.equal(scratchAfter(view), 1024 + SCRATCH_BYTES - 100);
    recycle(view);
    assert.equal(pool.take(10).buffer, back);
  });
});

Deno.test("recycle gives a split piece back only with its last part", () => {
  const pool = new PiecePool(1024, 4);
  const piece = pool.take(1000);
  recycle(piece.subarray(0, 600)); // The rest is still to come: nothing happens.
  assert.notEqual(pool.take(1000).buffer, piece.buffer);
  recycle(piece.subarray(600));
  assert.equal(pool.take(1000).buffer, piece.buffer);
  const result = soleView(new Uint8Array(4096));
  recycle(result.subarray(0, 100));
  assert.equal(result.length, 4096);
  recycle(result.subarray(100));
  assert.equal(result.length, 0);
});

Deno.test("recycle frees a sole view's buffer at once and ignores foreign buffers", () => {
  const result = soleView(new Uint8Array(4096));
  recycle(result);
  assert.equal(result.length, 0);
  assert.equal(result.buffer.byteLength, 0);
  const foreign = new Uint8Array(4096);
  recycle(foreign);
  assert.equal(foreign.length, 4096);
});
