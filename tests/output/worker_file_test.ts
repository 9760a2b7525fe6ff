import assert from "node:assert/strict";
import { WriteWorker } from "../../lib/output/_worker_file.ts";

// WriteWorker: when every shared buffer is with the worker, `file` returns undefined (the
// caller writes that file on its own thread) instead of waiting; a buffer the worker has
// written is used again without a turn of the event loop.

Deno.test("WriteWorker: with every buffer at the worker, file() hands the file back", async () => {
  const worker = WriteWorker.over(
    new Worker(new URL("./_held_worker.ts", import.meta.url), { type: "module" }),
  );
  try {
    assert.equal(await worker.ready, true);
    // Three files that each fill a buffer: each goes out as its own batch.
    const size = 4 << 20;
    for (let i = 0; i < 3; i++) {
      const file = worker.file("/nonexistent", `f${i}`, size);
      assert.ok(file !== undefined, `buffer ${i} is free`);
      await file.commit(size, 0o644, 0);
      // Never settles: the stand-in keeps the batch.
      file.publish(`/nonexistent/f${i}`, false).catch(() => {});
    }
    assert.equal(worker.file("/nonexistent", "f3", size), undefined);
    assert.equal(worker.file("/nonexistent", "f4", 10), undefined);
  } finally {
    worker.close();
  }
});

Deno.test("WriteWorker: a buffer comes back as soon as the worker has written its batch", async () => {
  const dir = await Deno.makeTempDir({ prefix: "worker_file_test_" });
  const worker = WriteWorker.start()!;
  try {
    assert.equal(await worker.ready, true);
    const size = 4 << 20;
    const published: Array<Promise<boolean>> = [];
    for (let i = 0; i < 3; i++) {
      const file = worker.file(dir, `f${i}`, size, { mode: 0o644 })!;
      await file.write(0, new Uint8Array([i + 1]));
      await file.commit(size, 0o644, 1_400_000_000);
      published.push(file.publish(`${dir}/f${i}`, false));
    }
    // Busy-wait without yielding: only the shared state can tell that a buffer is free.
    const until = performance.now() + 10_000;
    let next = worker.file(dir, "f3", 10, { mode: 0o644 });
    while (next === undefined && performance.now() < until) {
      next = worker.file(dir, "f3", 10, { mode: 0o644 });
    }
    assert.ok(next !== undefined, "a buffer came back within 10 s");
    await next.write(0, new Uint8Array(10).fill(7));
    await next.commit(10, 0o644, 1_400_000_000);
    published.push(next.publish(`${dir}/f3`, false));
    assert.deepEqual(await Promise.all(published), [true, true, true, true]);
    for (let i = 0; i < 3; i++) {
      const data = await Deno.readFile(`${dir}/f${i}`);
      assert.equal(data.length, size);
      assert.equal(data[0], i + 1);
    }
    assert.deepEqual(await Deno.readFile(`${dir}/f3`), new Uint8Array(10).fill(7));
  } finally {
    worker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("WorkerFile: bytes read straight into target() are written without a copy, holes kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "worker_file_test_" });
  const worker = WriteWorker.start()!;
  try {
    assert.equal(await worker.ready, true);
    const size = 3 * 4096;
    const file = worker.file(dir, "direct", size, { mode: 0o600 })!;
    // Beyond the file's room: no target.
    assert.equal(file.target(size - 10, 11), undefined);
    assert.equal(file.target(-1, 1), undefined);
    const first = file.target(0, 4096)!;
    first.fill(0x41);
    await file.write(0, first);
    // A copy from elsewhere still works beside it; the middle block stays a hole.
    await file.write(2 * 4096, new Uint8Array(4096).fill(0x43));
    await file.commit(size, 0o600, 1_400_000_000);
    assert.equal(await file.publish(`${dir}/direct`, false), true);
    const data = await Deno.readFile(`${dir}/direct`);
    assert.deepEqual(data.subarray(0, 4096), new Uint8Array(4096).fill(0x41));
    assert.deepEqual(data.subarray(4096, 8192), new Uint8Array(4096));
    assert.deepEqual(data.subarray(8192), new Uint8Array(4096).fill(0x43));
    // A published file has no target any more.
    assert.equal(file.target(0, 1), undefined);
  } finally {
    worker.close();
    await Deno.remove(dir, { recursive: true });
  }
});
