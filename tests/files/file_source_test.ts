import assert from "node:assert/strict";
import { FileSource, ImageDamage, SliceSource } from "../../lib/ext/mod.ts";
import { VIEW_WINDOW } from "../../lib/ext/image.ts";

// FileSource.view: the bytes of small files that lie one after the other come from one window
// read; anything else is left to readInto; nothing outside the image is ever handed out.

function pattern(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + (i >> 8)) & 0xff);
}

Deno.test("FileSource.view: views that follow on share one window; a jump is read by the caller", async () => {
  const path = await Deno.makeTempFile({ prefix: "file_source_test_" });
  const size = 3 * VIEW_WINDOW + 1000;
  const bytes = pattern(size);
  await Deno.writeFile(path, bytes);
  const source = await FileSource.open(path);
  try {
    const first = source.view(0, 5000)!;
    assert.deepEqual(first, bytes.subarray(0, 5000));
    // The next file starts in the next block: the same window, no read.
    const second = source.view(8192, 3000)!;
    assert.deepEqual(second, bytes.subarray(8192, 11_192));
    assert.equal(second.buffer, first.buffer);
    // Past the window's end but following on: a new window from there.
    const third = source.view(VIEW_WINDOW - 100, 4000)!;
    assert.deepEqual(third, bytes.subarray(VIEW_WINDOW - 100, VIEW_WINDOW + 3900));
    // A jump backwards or far ahead (outside the window): left to the caller.
    assert.equal(source.view(100, 10), undefined);
    assert.equal(source.view(2 * VIEW_WINDOW + 500_000, 10), undefined);
    // A piece larger than a window: left to the caller.
    assert.equal(source.view(VIEW_WINDOW, VIEW_WINDOW + 1), undefined);
    // The last window is cut at the end of the image.
    const from = size - 2000;
    assert.equal(source.view(from - 10, 5), undefined);
    const last = source.view(from, 2000)!;
    assert.deepEqual(last, bytes.subarray(from));
    // Outside the image: damage, never bytes.
    assert.throws(() => source.view(size - 10, 11), ImageDamage);
    assert.throws(() => source.view(-1, 1), ImageDamage);
    // Through a partition's window: offsets are the partition's.
    const slice = new SliceSource(source, 4096, 100_000);
    assert.deepEqual(
      slice.view(4096, 100) ?? bytes.subarray(8192, 8292),
      bytes.subarray(8192, 8292),
    );
    assert.throws(() => slice.view(99_990, 11), ImageDamage);
  } finally {
    source.close();
    await Deno.remove(path);
  }
});
