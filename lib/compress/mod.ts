/**
 * Decompression: gzip, zlib, bzip2, xz, lzma-alone and zstd as Web Streams, and how Qubes
 * backup headers and chunk magic numbers name them (spec §6.5, §6.6, §7).
 *
 * ```ts
 * import { compressionForFilter, decompressStream } from "./lib/compress/mod.ts";
 * const tar = decrypted.pipeThrough(decompressStream(compressionForFilter("gzip")));
 * ```
 *
 * @module
 */

export { type Compression, compressionForFilter } from "./compression.ts";
export { detectCompression } from "./detect.ts";
export { decompressPieces, decompressStream } from "./decompress_stream.ts";
