/**
 * Sparse maps of GNU tar members: old-GNU `S` headers and extension blocks, the GNU sparse 1.0
 * map text that precedes the data, the pax 0.x records, and the checks every map must pass.
 *
 * @module
 */

import { DamagedError } from "../errors.ts";
import { BLOCK_SIZE } from "./header.ts";
import { parseDecimal, readHeaderNumber } from "./numbers.ts";

/** A sparse map: stored data run `i` belongs at `offsets[i]` and is `sizes[i]` bytes long. */
export interface SparseMap {
  /** Logical offsets of the data runs, ascending. */
  offsets: number[];
  /** Lengths of the data runs; their sum is the member's stored data size. */
  sizes: number[];
}

/** The sparse fields of an old-GNU `S` header block. */
export interface OldGnuSparseHeader {
  /** Logical file size (field at 483). */
  realsize: number;
  /** Whether extension blocks follow the header (byte 482). */
  isExtended: boolean;
}

/**
 * Reads `count` 24-byte map entries (offset, numbytes) starting at `start`, appending them to
 * `map`; stops at the first entry whose numbytes field is empty, as GNU tar does.
 */
/**
 * The most entries a sparse map may have: 8 Mi runs (128 MiB of offsets and sizes). GNU tar
 * finds holes in 512-byte blocks, so an image needs more only when it is beyond 8 GiB and
 * fragmented at every other block; maps of 4 Mi entries (100 MB of map, the largest Qubes
 * issue 902 reports) fit. It bounds the memory a hostile map can take before it is refused.
 */
export const MAX_SPARSE_ENTRIES = 8 * 1024 * 1024;

/**
 * Whether a map of `entries` runs is possible for a file of `realsize` bytes: runs and the
 * holes between them are whole 512-byte blocks, except the last, and one empty run may end it.
 */
export function fitsImage(entries: number, realsize: number): boolean {
  return entries <= MAX_SPARSE_ENTRIES && entries <= Math.ceil(realsize / BLOCK_SIZE) + 2;
}

function readEntries(block: Uint8Array, start: number, count: number, map: SparseMap): void {
  if (map.offsets.length + count > MAX_SPARSE_ENTRIES) {
    throw new DamagedError({
      reason: "too-large",
      action: "read a sparse map",
      detail: `it has more than ${MAX_SPARSE_ENTRIES} entries`,
    });
  }
  for (let i = 0; i < count; i++) {
    const at = start + 24 * i;
    if (block[at + 12] === 0) return;
    map.offsets.push(readHeaderNumber(block, at, 12, "sparse offset"));
    map.sizes.push(readHeaderNumber(block, at + 12, 12, "sparse numbytes"));
  }
}

/**
 * Reads the sparse part of an old-GNU `S` header: 4 map entries at 386, `isextended` at 482,
 * `realsize` at 483.
 *
 * @param block The `S` header block.
 * @param map The map to append the header's entries to.
 * @returns The real size and whether extension blocks follow.
 * @throws {DamagedError} If a number is malformed.
 */
export function readOldGnuSparseHeader(block: Uint8Array, map: SparseMap): OldGnuSparseHeader {
  readEntries(block, 386, 4, map);
  return {
    realsize: readHeaderNumber(block, 483, 12, "realsize"),
    isExtended: block[482] !== 0,
  };
}

/**
 * Reads an old-GNU sparse extension block: 21 map entries, then `isextended` at 504.
 *
 * @param block The 512-byte extension block.
 * @param map The map to append the entries to.
 * @returns Whether another extension block follows.
 * @throws {DamagedError} If a number is malformed.
 */
export function readOldGnuSparseExtension(block: Uint8Array, map: SparseMap): boolean {
  readEntries(block, 0, 21, map);
  return block[504] !== 0;
}

/**
 * Parses a pax `GNU.sparse.map` value (sparse format 0.1): `offset,size,offset,size,...`.
 *
 * @param value The record value.
 * @returns The map.
 * @throws {DamagedError} If the list is malformed or has an odd number of values.
 */
export function parseSparseMapRecord(value: string): SparseMap {
  const map: SparseMap = { offsets: [], sizes: [] };
  if (value === "") return map;
  const numbers = value.split(",");
  if (numbers.length % 2 !== 0) {
    throw new DamagedError({
      reason: "damaged",
      action: 'read pax record "GNU.sparse.map"',
      detail: "it has an odd length",
    });
  }
  for (let i = 0; i < numbers.length; i += 2) {
    map.offsets.push(parseDecimal(numbers[i]!, `pax record "GNU.sparse.map"`));
    map.sizes.push(parseDecimal(numbers[i + 1]!, `pax record "GNU.sparse.map"`));
  }
  return map;
}

const decoder = new TextDecoder();
const NEWLINE = 0x0a;

/**
 * Incremental parser of the GNU sparse 1.0 map text that opens a member's data: decimal numbers
 * each ended by LF (`count`, then `offset`, `size` pairs), NUL-padded to a 512-byte boundary.
 * Feed it the member's first bytes until {@link SparseMapTextParser.done}.
 */
export class SparseMapTextParser {
  /** The map read so far; complete once {@link done} is true. */
  readonly map: SparseMap = { offsets: [], sizes: [] };
  /** Bytes consumed so far, including the padding once done. */
  consumed = 0;
  /** True once the map and its padding have been consumed. */
  done = false;
  #digits = "";
  #count = -1;
  #pending: number | undefined;
  #padding = -1;
  readonly #limit: number;
  readonly #name: string;

  /**
   * @param limit The member's stored size: the map text cannot be longer.
   * @param name The member name, for error messages.
   */
  readonly #realsize: number;

  /**
   * @param limit Stored bytes of the member (the map text is part of them).
   * @param name Member name, for messages.
   * @param realsize The file's size: a map with more entries than it can have is refused
   *   from its count, before any entry is kept.
   */
  constructor(limit: number, name: string, realsize = Infinity) {
    this.#limit = limit;
    this.#name = name;
    this.#realsize = realsize;
  }

  /**
   * Consumes map bytes from the start of `bytes`.
   *
   * @param bytes The next bytes of the member.
   * @returns How many bytes were consumed; fewer than given only once done.
   * @throws {DamagedError} If the text is malformed or longer than the member.
   */
  push(bytes: Uint8Array): number {
    let pos = 0;
    while (pos < bytes.length && !this.done) {
      if (this.#padding >= 0) {
        const n = Math.min(this.#padding, bytes.length - pos);
        this.#padding -= n;
        pos += n;
        this.consumed += n;
        if (this.#padding === 0) this.done = true;
        continue;
      }
      const newline = bytes.indexOf(NEWLINE, pos);
      const end = newline < 0 ? bytes.length : newline;
      this.#digits += decoder.decode(bytes.subarray(pos, end));
      if (this.#digits.length > 40) this.#fail("a number is too long");
      this.consumed += end - pos + (newline < 0 ? 0 : 1);
      pos = newline < 0 ? end : end + 1;
      if (this.consumed > this.#limit) this.#fail("it is longer than the member");
      if (newline >= 0) {
        this.#number(
          parseDecimal(this.#digits, this.#what(), { kind: "member", name: this.#name }),
        );
      }
    }
    return pos;
  }

  #what(): string {
    return `the sparse map of tar member "${this.#name}"`;
  }

  #fail(why: string): never {
    throw new DamagedError({
      reason: "damaged",
      action: `read ${this.#what()}`,
      subject: { kind: "member", name: this.#name, inDetail: true },
      detail: why,
    });
  }

  #number(value: number): void {
    this.#digits = "";
    if (this.#count < 0) {
      // Every entry takes at least 4 bytes ("0\n0\n"): reject counts the member cannot hold.
      if (value > this.#limit / 4) this.#fail(`${value} entries do not fit in the member`);
      if (!fitsImage(value, this.#realsize)) {
        this.#fail(`${value} entries are more than a file of ${this.#realsize} bytes can have`);
      }
      this.#count = value;
    } else if (this.#pending === undefined) {
      this.#pending = value;
    } else {
      this.map.offsets.push(this.#pending);
      this.map.sizes.push(value);
      this.#pending = undefined;
    }
    if (this.map.offsets.length === this.#count && this.#pending === undefined) {
      const rest = this.consumed % BLOCK_SIZE;
      this.#padding = rest === 0 ? 0 : BLOCK_SIZE - rest;
      if (this.consumed + this.#padding > this.#limit) this.#fail("it is longer than the member");
      if (this.#padding === 0) this.done = true;
    }
  }
}

/**
 * Checks a sparse map: runs ascending and not overlapping, all inside `realsize`, their
 * lengths adding up to the stored data size.
 *
 * @param map The map to check.
 * @param realsize The logical file size.
 * @param stored The number of data bytes stored in the archive for the member.
 * @param name The member name, for error messages.
 * @throws {DamagedError} If any condition fails.
 */
export function validateSparseMap(
  map: SparseMap,
  realsize: number,
  stored: number,
  name: string,
): void {
  const fail = (reason: string): never => {
    throw new DamagedError({
      reason: "damaged",
      action: "read the sparse map of tar member",
      subject: { kind: "member", name },
      detail: reason,
    });
  };
  if (map.offsets.length !== map.sizes.length) fail("it has an odd number of values");
  if (!fitsImage(map.offsets.length, realsize)) {
    fail(`its ${map.offsets.length} entries are more than a file of ${realsize} bytes can have`);
  }
  let end = 0;
  let sum = 0;
  for (let i = 0; i < map.offsets.length; i++) {
    const offset = map.offsets[i]!;
    const size = map.sizes[i]!;
    if (offset < end) fail(`entry ${i} (offset ${offset}) is not in ascending order`);
    if (offset > realsize || size > realsize - offset) {
      fail(`entry ${i} (${offset}+${size}) lies beyond the file size ${realsize}`);
    }
    end = offset + size;
    sum += size;
    if (sum > stored) break;
  }
  if (sum !== stored) {
    fail(`its runs hold ${sum > stored ? "more than " : ""}${sum} bytes, the member ${stored}`);
  }
}
