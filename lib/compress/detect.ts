/**
 * Recognising a compressed stream from its first bytes (spec §6.6).
 *
 * @module
 */

import type { Compression } from "./compression.ts";

/** The first bytes of an xz stream. */
export const XZ_MAGIC: readonly number[] = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/** Magic numbers that identify a format on their own, longest first. */
const MAGICS: ReadonlyArray<readonly [Compression, readonly number[]]> = [
  ["xz", XZ_MAGIC],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  // With its method byte: 8 (deflate) is the only one RFC 1952 defines. Two bytes alone match
  // random data (ciphertext, the middle of a compressed stream) one time in 65 536.
  ["gzip", [0x1f, 0x8b, 0x08]],
];

function startsWith(head: Uint8Array, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((byte, i) => head[i] === byte);
}

/**
 * Names the compression of a stream from its first bytes, or `undefined` when none matches.
 *
 * Recognises gzip (`1F 8B 08`), bzip2 (`BZh` and a level digit), xz (`FD 37 7A 58 5A 00`),
 * zstd (`28 B5 2F FD`), zlib (`78 xx` with the RFC 1950 header check: the big-endian 16-bit
 * value is a multiple of 31) and, weakest, lzma-alone (`5D 00 00`, the header of the default
 * `lzma` settings). Pass at least 6 bytes for every format to be recognisable.
 *
 * @param head The first bytes of the stream.
 * @returns The compression, or `undefined` for anything else (plain tar, ciphertext).
 *
 * @example
 * ```ts
 * detectCompression(new Uint8Array([0x1f, 0x8b, 8, 0])); // "gzip"
 * ```
 */
export function detectCompression(head: Uint8Array): Compression | undefined {
  for (const [compression, magic] of MAGICS) {
    if (!startsWith(head, magic)) continue;
    if (compression === "bzip2" && !isLevelDigit(head[3])) continue;
    return compression;
  }
  const b0 = head[0], b1 = head[1];
  if (b0 === 0x78 && b1 !== undefined && (b0 * 256 + b1) % 31 === 0) return "zlib";
  if (startsWith(head, [0x5d, 0x00, 0x00])) return "lzma";
  return undefined;
}

function isLevelDigit(byte: number | undefined): boolean {
  return byte === undefined || (byte >= 0x31 && byte <= 0x39);
}
