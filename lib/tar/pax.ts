/**
 * POSIX pax extended header records (`x` and `g` members): `"<len> <key>=<value>\n"`.
 *
 * @module
 */

import { DamagedError } from "../errors.ts";
import { parseDecimal } from "./numbers.ts";

/** One `key=value` record, in archive order (GNU sparse 0.0 repeats keys, so order matters). */
export interface PaxRecord {
  /** Record key, e.g. `path` or `GNU.sparse.realsize`. */
  key: string;
  /** Record value, decoded as UTF-8. */
  value: string;
}

const decoder = new TextDecoder();
const SPACE = 0x20;
const NEWLINE = 0x0a;
const EQUALS = 0x3d;

/**
 * Parses the data of a pax extended header.
 *
 * @param data The member data (records; trailing NUL padding is tolerated).
 * @param name Name of the pax member, for error messages.
 * @returns The records in archive order.
 * @throws {DamagedError} If a record's length or layout is malformed.
 *
 * @example
 * ```ts
 * parsePaxRecords(new TextEncoder().encode("19 path=vm5/a.img\n"), "x"); // [{ key: "path", value: "vm5/a.img" }]
 * ```
 */
export function parsePaxRecords(data: Uint8Array, name: string): PaxRecord[] {
  const records: PaxRecord[] = [];
  const about = {
    action: `read pax header "${name}"`,
    subject: { kind: "entry" as const, name, inDetail: true as const },
  };
  let pos = 0;
  while (pos < data.length && data[pos] !== 0) {
    const space = data.indexOf(SPACE, pos);
    if (space < 0 || space - pos > 20) {
      throw new DamagedError({ reason: "damaged", ...about, detail: "a record has no length" });
    }
    const length = parseDecimal(
      decoder.decode(data.subarray(pos, space)),
      `pax header "${name}"`,
      about.subject,
    );
    const end = pos + length;
    if (length <= space - pos + 1 || end > data.length || data[end - 1] !== NEWLINE) {
      throw new DamagedError({
        reason: "damaged",
        ...about,
        detail: "a record has a wrong length",
      });
    }
    const equals = data.indexOf(EQUALS, space + 1);
    if (equals < 0 || equals >= end - 1) {
      throw new DamagedError({ reason: "damaged", ...about, detail: 'a record has no "="' });
    }
    records.push({
      key: decoder.decode(data.subarray(space + 1, equals)),
      value: decoder.decode(data.subarray(equals + 1, end - 1)),
    });
    pos = end;
  }
  return records;
}

/**
 * Parses a pax time value (`1700000000.123456789`, possibly negative) to whole seconds.
 *
 * @param value The record value.
 * @param what What the value is, for error messages.
 * @returns Seconds since the epoch, rounded down.
 * @throws {DamagedError} If the value is not a decimal time.
 */
export function parsePaxTime(value: string, what: string): number {
  const match = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(value);
  if (!match) {
    throw new DamagedError({
      reason: "damaged",
      action: `read ${what}`,
      detail: `"${value}" is not a time`,
    });
  }
  const seconds = parseDecimal(match[2]!, what);
  const fraction = /[1-9]/.test(match[3] ?? "");
  return match[1] === "-" ? -seconds - (fraction ? 1 : 0) : seconds;
}
