/**
 * Number parsing for tar headers and pax records, each notation in exactly one place, with the
 * bounds checks done where the digits are read.
 *
 * @module
 */

import { DamagedError, type Subject } from "../errors.ts";

const SPACE = 0x20;

/**
 * Reads a numeric header field: ASCII octal (leading spaces allowed, ended by NUL, space or the
 * field's end) or GNU base-256 (first byte has bit 0x80 set; bit 0x40 marks a negative
 * two's-complement value). A field of only NULs and spaces reads as 0.
 *
 * @param block The header block.
 * @param offset Offset of the field inside the block.
 * @param length Length of the field in bytes.
 * @param field Field name used in error messages, e.g. `"size"`.
 * @param allowNegative Accept negative base-256 values (times); sizes and offsets never are.
 * @returns The value, a safe integer.
 * @throws {DamagedError} For a malformed field, a negative value where none is allowed, or a
 *   value above `Number.MAX_SAFE_INTEGER`.
 *
 * @example
 * ```ts
 * readHeaderNumber(new TextEncoder().encode("00000001750\0"), 0, 12, "size"); // 1000
 * ```
 */
export function readHeaderNumber(
  block: Uint8Array,
  offset: number,
  length: number,
  field: string,
  allowNegative = false,
): number {
  const first = block[offset] ?? 0;
  if (first & 0x80) return readBase256(block, offset, length, field, allowNegative);
  let i = offset;
  const end = offset + length;
  while (i < end && block[i] === SPACE) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0 || c === SPACE) break;
    if (c < 0x30 || c > 0x37) {
      throw new DamagedError({
        reason: "damaged",
        action: "read tar header",
        detail: `the ${field} field is not an octal number`,
      });
    }
    value = value * 8 + (c - 0x30);
    digits++;
  }
  // Only NULs and spaces may follow the digits.
  for (; i < end; i++) {
    const c = block[i]!;
    if (c !== 0 && c !== SPACE) {
      throw new DamagedError({
        reason: "damaged",
        action: "read tar header",
        detail: `the ${field} field is not an octal number`,
      });
    }
  }
  // 12 octal digits are at most 2^36 - 1, far below 2^53: no overflow check is needed here.
  return digits === 0 ? 0 : value;
}

function readBase256(
  block: Uint8Array,
  offset: number,
  length: number,
  field: string,
  allowNegative: boolean,
): number {
  const first = block[offset]!;
  const negative = (first & 0x40) !== 0;
  if (negative && !allowNegative) {
    throw new DamagedError({
      reason: "damaged",
      action: "read tar header",
      detail: `the ${field} field is negative`,
    });
  }
  // A negative value is -(inverted bits + 1); reading the inverted bytes keeps one code path.
  const flip = negative ? 0xff : 0;
  let value = (first ^ flip) & 0x3f;
  for (let i = offset + 1; i < offset + length; i++) {
    value = value * 256 + ((block[i]! ^ flip) & 0xff);
    if (value > Number.MAX_SAFE_INTEGER) {
      throw new DamagedError({
        reason: "too-large",
        action: "read tar header",
        detail: `the ${field} field is too large`,
      });
    }
  }
  return negative ? -(value + 1) : value;
}

/**
 * Parses an unsigned decimal number as written in pax records and GNU sparse 1.0 maps.
 *
 * @param text The digits, nothing else (no sign, no spaces).
 * @param what What the number is, for error messages, e.g. `pax record "size"`.
 * @returns The value, a safe integer.
 * @throws {DamagedError} If `text` is empty, holds a non-digit, or exceeds `Number.MAX_SAFE_INTEGER`.
 *
 * @example
 * ```ts
 * parseDecimal("21474836480", "pax record \"size\""); // 21474836480
 * ```
 */
export function parseDecimal(text: string, what: string, subject?: Subject): number {
  const about = subject === undefined ? {} : { subject: { ...subject, inDetail: true as const } };
  if (!/^[0-9]{1,40}$/.test(text)) {
    throw new DamagedError({
      reason: "damaged",
      action: `read ${what}`,
      ...about,
      detail: `"${text.slice(0, 40)}" is not a decimal number`,
    });
  }
  const value = Number(text);
  if (value > Number.MAX_SAFE_INTEGER) {
    throw new DamagedError({
      reason: "too-large",
      action: `read ${what}`,
      ...about,
      detail: `${text} is too large`,
    });
  }
  return value;
}
