/**
 * The decompression stage: one stream for each {@linkcode Compression}.
 *
 * @module
 */

import { decodeBzip2 } from "./bzip2.ts";
import type { Compression } from "./compression.ts";
import { type Decoder, decoderStream } from "./_decoder_stream.ts";
import { decodeLzmaAlone, decodeXz } from "./liblzma.ts";
import { decodeGzip, decodeZlib } from "./node_zlib.ts";
import { decodeZstd } from "./zstd.ts";
import { Piece } from "../streams/mod.ts";

const DECODERS: Readonly<Record<Compression, Decoder>> = {
  gzip: decodeGzip,
  zlib: decodeZlib,
  bzip2: decodeBzip2,
  xz: decodeXz,
  lzma: decodeLzmaAlone,
  zstd: decodeZstd,
};

/**
 * Makes a stream that decompresses `kind`.
 *
 * Accepts what the Qubes filters write: concatenated members, streams and frames (pigz,
 * pbzip2, `cat a.xz b.xz`, multi-frame zstd), and zero padding after the last one. Output
 * pieces are at least 256 KiB (except the last) and only produced as fast as they are read.
 *
 * @param kind The compression of the input.
 * @returns A stream pair to use with `pipeThrough`. Its readable side errors with
 *   `DamagedError("Cannot decompress <kind> data: <reason>")` on corrupt data and with a
 *   `IncompleteError` saying the data ends early when the input stops inside a member; bytes
 *   that start no member after a member are corrupt data too, except for gzip after zero
 *   padding and for zlib, where `node:zlib` ignores whatever follows.
 *
 * @example
 * ```ts
 * const file = await Deno.open("private.img.tar.gz");
 * const tar = file.readable.pipeThrough(decompressStream("gzip"));
 * ```
 */
export function decompressStream(kind: Compression): TransformStream<Uint8Array, Uint8Array> {
  return decoderStream(kind, DECODERS[kind], Piece.from, (bytes: Uint8Array) => bytes);
}

/**
 * {@linkcode decompressStream} over pieces the stream owns (the pipeline's chunk pieces and
 * decryption results): each input piece is recycled once the decoder has used its bytes (or
 * given away where the decoder keeps them), and the output comes as plain pieces of the
 * decoder's new buffers, which the next stage owns.
 *
 * @example
 * ```ts
 * const tar = givenAway(decrypted.pipeThrough(decompressPieces("gzip")));
 * ```
 */
export function decompressPieces(kind: Compression): TransformStream<Piece, Piece> {
  return decoderStream(kind, DECODERS[kind], (piece: Piece) => piece, Piece.from);
}
