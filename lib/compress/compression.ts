/**
 * The compressions a Qubes backup may use, and how a `compression-filter` header value names them.
 *
 * @module
 */

import { UnsupportedError } from "../errors.ts";

/**
 * A compressed-stream format this tool decodes.
 *
 * `zlib` is the RFC 1950 stream of `openssl enc -z` (R2-beta3); `lzma` is the legacy
 * lzma-alone (`.lzma`) format of the `lzma` filter; the others are what their tools write.
 */
export type Compression = "gzip" | "zlib" | "bzip2" | "xz" | "lzma" | "zstd";

/** The compressions Qubes backups name, keyed by the program named in the header. */
const FILTERS: Readonly<Record<string, Compression>> = {
  gzip: "gzip",
  pigz: "gzip",
  bzip2: "bzip2",
  pbzip2: "bzip2",
  xz: "xz",
  lzma: "lzma",
  zstd: "zstd",
  zstdmt: "zstd",
};

/**
 * Maps a Qubes `compression-filter` header value to the format it writes.
 *
 * Only the first word counts, so filters with arguments (`gzip -3`, trap T19) and paths
 * (`/usr/bin/pigz`) are accepted.
 *
 * @param filter The header value, e.g. `"gzip"`, `"pbzip2"`, `"gzip -3"`, `"zstdmt"`.
 * @returns The compression to decode.
 * @throws {UnsupportedError} When the program is not one Qubes knows.
 *
 * @example
 * ```ts
 * compressionForFilter("gzip -3"); // "gzip"
 * compressionForFilter("pbzip2"); // "bzip2"
 * ```
 */
export function compressionForFilter(filter: string): Compression {
  const program = filter.trim().split(/\s+/, 1)[0] ?? "";
  const name = program.slice(program.lastIndexOf("/") + 1);
  const compression = Object.hasOwn(FILTERS, name) ? FILTERS[name] : undefined;
  if (compression === undefined) {
    throw new UnsupportedError({
      reason: "unsupported",
      action: `decompress with filter "${filter}"`,
      detail: "unknown compression program",
    });
  }
  return compression;
}
