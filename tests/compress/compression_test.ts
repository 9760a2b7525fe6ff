import assert from "node:assert/strict";
import { compressionForFilter } from "../../lib/compress/mod.ts";
import { UnsupportedError } from "../../lib/errors.ts";

Deno.test("compressionForFilter() maps every Qubes filter to its format", () => {
  const expected = {
    gzip: "gzip",
    pigz: "gzip",
    bzip2: "bzip2",
    pbzip2: "bzip2",
    xz: "xz",
    lzma: "lzma",
    zstd: "zstd",
    zstdmt: "zstd",
  };
  for (const [filter, compression] of Object.entries(expected)) {
    assert.equal(compressionForFilter(filter), compression, filter);
  }
});

Deno.test("compressionForFilter() uses only the first word of a filter with arguments", () => {
  assert.equal(compressionForFilter("gzip -3"), "gzip");
  assert.equal(compressionForFilter("  xz -9e "), "xz");
  assert.equal(compressionForFilter("/usr/bin/pigz -p 4"), "gzip");
});

Deno.test("compressionForFilter() rejects an unknown filter, naming it", () => {
  for (const filter of ["lz4", "", "gzipx", "toString", "cat"]) {
    assert.throws(
      () => compressionForFilter(filter),
      (error: unknown) =>
        error instanceof UnsupportedError && error.message ===
          `Cannot decompress with filter "${filter}": unknown compression program`,
    );
  }
});
