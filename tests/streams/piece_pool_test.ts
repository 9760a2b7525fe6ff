import assert from "node:assert/strict";
import { Piece, PiecePool, SCRATCH_BYTES, setPieceChecks } from "../../lib/streams/piece_pool.ts";

// These tests look at which buffer objects come back: the pool's normal mode, without the
// ownership checks (which move every recycled buffer to a new object; see
// piece_ownership_test.ts).
setPieceChecks(false);

Deno.test("PiecePool lends buffers with scratch room and takes them back", async (t) => {
  await t.step("a recycled buffer is the next one taken", () => {
    const pool = new PiecePool(1024, 4);
    const first = pool.take(1000);
    assert.equal(first.length, 1000);
    assert.equal(first.bytes.buffer.byteLength, 1024 + SCRATCH_BYTES);
    const buffer = first.bytes.buffer;
    first.recycle();
    const second = pool.take(512);
    assert.equal(second.bytes.buffer, buffer);
    assert.equal(second.length, 512);
    assert.notEqual(pool.take(512).bytes.buffer, buffer);
    assert.equal(pool.created, 2);
  });

  await t.step("scratch room follows only the end of the data read into a buffer", () => {
    const pool = new PiecePool(1024, 4);
    const piece = pool.take(1000);
    assert.equal(piece.scratch, 1024 + SCRATCH_BYTES - 1000);
    const [head, rest] = piece.split(16);
    assert.equal(rest.scratch, 1024 + SCRATCH_BYTES - 1000);
    // The first bytes of a piece are followed by its own data, not by scratch.
    assert.equal(head.scratch, 0);
    assert.throws(() => head.withScratch(SCRATCH_BYTES), RangeError);
    assert.equal(rest.withScratch(SCRATCH_BYTES).length, 1000 - 16 + SCRATCH_BYTES);
    assert.equal(Piece.from(new Uint8Array(1000)).scratch, 0);
    assert.equal(Piece.sole(new Uint8Array(1000)).scratch, 0);
  });

  await t.step("a piece longer than the pool's is a plain buffer", () => {
    const pool = new PiecePool(1024, 4);
    const big = pool.take(2000);
    assert.equal(big.scratch, 0);
    const buffer = big.bytes.buffer;
    big.recycle();
    assert.notEqual(pool.take(1024).bytes.buffer, buffer);
  });

  await t.step("at most `keep` free buffers are kept", () => {
    const pool = new PiecePool(64, 1);
    const a = pool.take(64), b = pool.take(64);
    const bufferA = a.bytes.buffer, bufferB = b.bytes.buffer;
    a.recycle();
    b.recycle();
    assert.equal(pool.take(64).bytes.buffer, bufferA);
    assert.notEqual(pool.take(64).bytes.buffer, bufferB);
  });

  await t.step("a piece given away to a worker and back is adopted again", () => {
    const pool = new PiecePool(1024, 4);
    const piece = pool.take(100);
    piece.bytes.set([1, 2, 3]);
    const bytes = piece.giveAway();
    const back = structuredClone(bytes.buffer, { transfer: [bytes.buffer as ArrayBuffer] });
    assert.equal(bytes.length, 0); // Detached.
    const adopted = pool.adopt(new Uint8Array(back, 0, 100));
    assert.equal(adopted.scratch, 1024 + SCRATCH_BYTES - 100);
    assert.deepEqual([...adopted.bytes.subarray(0, 3)], [1, 2, 3]);
    adopted.recycle();
    assert.equal(pool.take(10).bytes.buffer, back);
    // Bytes of another size are not the pool's: a plain piece.
    assert.equal(pool.adopt(new Uint8Array(100)).scratch, 0);
  });

  await t.step("a recycled piece is not given back twice, even without checks", () => {
    const pool = new PiecePool(64, 4);
    const piece = pool.take(64);
    const buffer = piece.bytes.buffer;
    piece.recycle();
    piece.recycle(); // Spent: nothing happens (with checks on, this throws).
    assert.equal(pool.take(64).bytes.buffer, buffer);
    assert.notEqual(pool.take(64).bytes.buffer, buffer);
  });
});

Deno.test("a split piece goes back only with its last part", () => {
  const pool = new PiecePool(1024, 4);
  const piece = pool.take(1000);
  const buffer = piece.bytes.buffer;
  const [a, b] = piece.split(600);
  a.recycle(); // The rest is still to come: nothing happens.
  assert.notEqual(pool.take(1000).bytes.buffer, buffer);
  b.recycle();
  assert.equal(pool.take(1000).bytes.buffer, buffer);
  const result = Piece.sole(new Uint8Array(4096));
  const [first, last] = result.split(100);
  first.recycle();
  assert.equal(last.length, 3996);
  last.recycle();
  assert.equal(last.length, 0);
});

Deno.test("recycle frees a sole piece's buffer at once and leaves plain ones alone", () => {
  const bytes = new Uint8Array(4096);
  Piece.sole(bytes).recycle();
  assert.equal(bytes.length, 0);
  assert.equal(bytes.buffer.byteLength, 0);
  const foreign = new Uint8Array(4096);
  Piece.from(foreign).recycle();
  assert.equal(foreign.length, 4096);
});
