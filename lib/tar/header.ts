/**
 * The 512-byte tar header block: checksum, field map (POSIX ustar, GNU and old-GNU), zero blocks.
 *
 * @module
 */

import { DamagedError } from "../errors.ts";
import { readHeaderNumber } from "./numbers.ts";

/** Size of a tar block: headers, extension blocks and data padding all use it. */
export const BLOCK_SIZE = 512;

/** Which header flavour the magic field names. */
export type HeaderFormat = "ustar" | "gnu" | "v7";

/** The fields of one header block that a reader needs, numbers already parsed. */
export interface TarHeader {
  /** Name field; for POSIX ustar headers the non-empty prefix is joined with `/`. */
  name: string;
  /** Permission and type bits. */
  mode: number;
  /** Size of the member data stored in the archive (for `S` members: stored bytes). */
  size: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Typeflag as a one-character string; NUL is returned as `"\0"`. */
  typeflag: string;
  /** Link name field. */
  linkname: string;
  /** `ustar` for `ustar\0`+`00`, `gnu` for old-GNU `ustar  \0`, `v7` for anything else. */
  format: HeaderFormat;
}

const decoder = new TextDecoder();

/**
 * Reads a NUL-terminated text field.
 *
 * @param block The header block.
 * @param offset Offset of the field.
 * @param length Length of the field.
 * @returns The field up to its first NUL, decoded as UTF-8.
 */
export function readString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return decoder.decode(nul < 0 ? field : field.subarray(0, nul));
}

/**
 * Tells whether a block consists of zero bytes only (an end-of-archive marker).
 *
 * @param block A 512-byte block.
 * @returns True if every byte is zero.
 */
export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * Verifies a header checksum: the sum of all bytes with the checksum field counted as spaces,
 * as unsigned bytes or (old writers) as signed chars.
 *
 * @param block A 512-byte block.
 * @returns True if the stored octal checksum matches either sum.
 */
export function hasValidChecksum(block: Uint8Array): boolean {
  if (block.length < BLOCK_SIZE) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  let stored: number;
  try {
    stored = readHeaderNumber(block, 148, 8, "checksum");
  } catch {
    return false;
  }
  // An all-blank checksum field reads as 0, which no real header sums to.
  return stored === unsigned || stored === signed;
}

/**
 * Tells which flavour a header is from its magic and version fields.
 *
 * @param block A header block.
 * @returns The header format.
 */
export function headerFormat(block: Uint8Array): HeaderFormat {
  const m = (i: number) => block[257 + i];
  if (m(0) !== 0x75 || m(1) !== 0x73 || m(2) !== 0x74 || m(3) !== 0x61 || m(4) !== 0x72) {
    return "v7";
  }
  if (m(5) === 0) return "ustar";
  if (m(5) === 0x20 && m(6) === 0x20 && m(7) === 0) return "gnu";
  return "v7";
}

/**
 * Parses a header block whose checksum is valid.
 *
 * @param block A 512-byte block that is not a zero block.
 * @param position Byte offset of the block in its stream, for error messages.
 * @returns The parsed fields.
 * @throws {DamagedError} If the checksum does not match or a numeric field is malformed.
 *
 * @example
 * ```ts
 * const header = parseHeader(block, 0);
 * if (header.typeflag === "5") console.log(`directory ${header.name}`);
 * ```
 */
export function parseHeader(block: Uint8Array, position: number): TarHeader {
  if (!hasValidChecksum(block)) {
    throw new DamagedError({
      reason: "damaged",
      action: `read tar header at byte ${position}`,
      detail: "the checksum does not match",
    });
  }
  const format = headerFormat(block);
  let name = readString(block, 0, 100);
  // The old-GNU header keeps atime, ctime and the sparse map where ustar has the prefix.
  if (format === "ustar") {
    const prefix = readString(block, 345, 155);
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  return {
    name,
    mode: readHeaderNumber(block, 100, 8, "mode"),
    size: readHeaderNumber(block, 124, 12, "size"),
    mtime: readHeaderNumber(block, 136, 12, "mtime", true),
    typeflag: String.fromCharCode(block[156]!),
    linkname: readString(block, 157, 100),
    format,
  };
}

/**
 * Number of padding bytes that follow `size` data bytes up to the next block boundary.
 *
 * @param size Data size in bytes.
 * @returns A number in 0..511.
 */
export function paddingAfter(size: number): number {
  const rest = size % BLOCK_SIZE;
  return rest === 0 ? 0 : BLOCK_SIZE - rest;
}
