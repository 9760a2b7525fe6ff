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
// For salvage (`lib/salvage/compressed.ts`): the decoders driven directly, to decode up to a
// lost range and restart after it.
export { Bzip2Decoder } from "./bzip2.ts";
export { type Decoder, OUTPUT_PIECE } from "./_decoder_stream.ts";
export { decodeLzmaAlone, decodeXz } from "./liblzma.ts";
export { decodeGzip, decodeZlib, runNodeZlib } from "./node_zlib.ts";
export type { ZlibHandle } from "./node_zlib.ts";
export { decodeZstd, ZstdFrameSplitter } from "./zstd.ts";
