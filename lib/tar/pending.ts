/**
 * What the meta members before a tar member (`x` pax headers, GNU `L` and `K` long names) say
 * about it, and how its typeflag maps to a {@link TarEntryKind}.
 *
 * @module
 */

import type { TarEntryKind } from "./events.ts";
import { parseDecimal } from "./numbers.ts";
import type { PaxRecord } from "./pax.ts";
import { parsePaxTime } from "./pax.ts";
import { parseSparseMapRecord } from "./sparse.ts";
import type { SparseMap } from "./sparse.ts";

/** What `x`, `L` and `K` members say about the member that follows them; all optional. */
export interface Pending {
  /** From a GNU `L` member. */
  longName?: string;
  /** From a GNU `K` member. */
  longLink?: string;
  /** Pax `path`. */
  path?: string;
  /** Pax `linkpath`. */
  linkpath?: string;
  /** Pax `size`: the stored size, overriding the header field. */
  size?: number;
  /** Pax `mtime`, whole seconds. */
  mtime?: number;
  /** `GNU.sparse.major`: 1 means the map text opens the member data. */
  sparseMajor?: number;
  /** `GNU.sparse.name`: the real member name. */
  sparseName?: string;
  /** `GNU.sparse.realsize` (1.0) or `GNU.sparse.size` (0.x): the logical size. */
  sparseRealsize?: number;
  /** The map of sparse formats 0.0 (`offset`/`numbytes` records) and 0.1 (`map`). */
  sparseMap?: SparseMap;
}

/**
 * Maps a typeflag to the kind of thing a restore creates.
 *
 * @param typeflag The header's typeflag character.
 * @returns `file` for `0`, NUL, `7` and `S`; `directory` for `5` and `D`; links; else `other`.
 */
export function kindOf(typeflag: string): TarEntryKind {
  switch (typeflag) {
    case "0":
    case "\0":
    case "7":
    case "S":
      return "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "5":
    case "D":
      return "directory";
    default:
      return "other";
  }
}

/**
 * Applies the records of an `x` header to the pending attributes of the next member: `path`,
 * `linkpath`, `size`, `mtime` and the `GNU.sparse.*` keys of sparse formats 0.0, 0.1 and 1.0;
 * other keys are ignored.
 *
 * @param pending The attributes to update.
 * @param records The records in archive order.
 * @throws {DamagedError} If a number in a record is malformed.
 */
export function applyPaxRecords(pending: Pending, records: PaxRecord[]): void {
  const what = (key: string) => `pax record "${key}"`;
  for (const { key, value } of records) {
    switch (key) {
      case "path":
        pending.path = value;
        break;
      case "linkpath":
        pending.linkpath = value;
        break;
      case "size":
        pending.size = parseDecimal(value, what(key));
        break;
      case "mtime":
        pending.mtime = parsePaxTime(value, what(key));
        break;
      case "GNU.sparse.major":
        pending.sparseMajor = parseDecimal(value, what(key));
        break;
      case "GNU.sparse.name":
        pending.sparseName = value;
        break;
      case "GNU.sparse.realsize":
      case "GNU.sparse.size":
        pending.sparseRealsize = parseDecimal(value, what(key));
        break;
      case "GNU.sparse.map":
        pending.sparseMap = parseSparseMapRecord(value);
        break;
      case "GNU.sparse.offset":
        pending.sparseMap ??= { offsets: [], sizes: [] };
        pending.sparseMap.offsets.push(parseDecimal(value, what(key)));
        break;
      case "GNU.sparse.numbytes":
        pending.sparseMap ??= { offsets: [], sizes: [] };
        pending.sparseMap.sizes.push(parseDecimal(value, what(key)));
        break;
    }
  }
}
