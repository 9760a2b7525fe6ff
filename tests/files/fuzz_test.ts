import assert from "node:assert/strict";
import { fuzz, fuzzImages, readEverything } from "./_fuzz.ts";

/**
 * Cases per image variant in the normal suite (four variants); `deno task fuzz-ext` runs more.
 */
const CASES = 1000;

Deno.test(`ext reader fuzzer: ${CASES} mutated images per variant read or refused cleanly`, async () => {
  const work = await Deno.makeTempDir({ prefix: "ext-fuzz-test-" });
  try {
    const images = await fuzzImages(work);
    for (const image of images.values()) {
      const clean = await readEverything(image);
      assert.equal(clean.outcome, "read");
      assert.equal(clean.notices, 0);
    }
    const totals = await fuzz(images, 1, CASES);
    assert.equal(totals.read + totals.refused, CASES * images.size);
    // No mutation may make the reader produce more data than a 1 MiB image can hold per file
    // times its files: a loose bound that still catches runaway loops.
    assert.ok(totals.maxDataBytes < 64 * 1024 * 1024, `${totals.maxDataBytes} bytes`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
