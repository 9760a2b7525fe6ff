/**
 * The outer archive: a concatenation of one-member `tar -cO --posix` archives, read entry by
 * entry from a file, standard input or a pipe.
 *
 * @module
 */

import { DamagedError, IncompleteError } from "../errors.ts";
import {
  BLOCK_SIZE,
  isZeroBlock,
  paddingAfter,
  parseDecimal,
  parseHeader,
  parsePaxRecords,
} from "../tar/mod.ts";

/** Anything with Deno.FsFile's read(): a file, standard input, a pipe. */
export interface ByteReader {
  /** Reads up to `p.length` bytes into `p`; resolves to the count, or `null` at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/** One file of the backup: a member of the outer archive or a file of an untarred backup. */
export interface OuterEntry {
  /** Entry name as stored, from the PAX `path` record if present, else ustar prefix + name, or GNU L. */
  readonly name: string;
  /** Data size in bytes (PAX `size` wins over the header field). */
  readonly size: number;
  /**
   * Reads the whole body into one new Uint8Array(size), reading directly into it from the
   * ByteReader (no intermediate copies); calls onPiece(view) for each newly filled piece as it
   * arrives (used to HMAC while reading). IncompleteError if the archive ends first.
   */
  read(onPiece?: (piece: Uint8Array) => void): Promise<Uint8Array>;
  /**
   * Reads the whole body as pieces of at most `pieceSize` bytes, each read into a buffer that
   * `allocate(n)` supplies (a new one by default; a memory budget or a pool may make it wait),
   * then passed to `onPiece`, which is awaited. IncompleteError if the archive ends first.
   */
  readPieces(
    pieceSize: number,
    onPiece: (piece: Uint8Array) => void | Promise<void>,
    allocate?: (bytes: number) => Uint8Array | Promise<Uint8Array>,
  ): Promise<void>;
  /** Discards the body. */
  skip(): Promise<void>;
}

/** Options of {@link readOuterArchive} and `readBackupDirectory`. */
export interface OuterArchiveOptions {
  /** Largest entry accepted, in bytes (default {@link DEFAULT_MAX_ENTRY_SIZE}). */
  maxEntrySize?: number;
}

/**
 * Default limit on the size of one outer entry: 101 MiB. No Qubes backup holds a larger one
 * (format 4 chunks are at most 100 MiB + 128 bytes, format 3 100 MiB, format 2 a 102 400 000
 * byte volume plus gzip or openssl overhead), and every entry may be held in memory before it
 * is authenticated, so a larger one is refused from its header.
 */
export const DEFAULT_MAX_ENTRY_SIZE = 101 * 1024 * 1024;

/** Largest pax header or GNU long name accepted in the outer archive. */
const MAX_META_SIZE = 1024 * 1024;
/** How much the reader may read ahead while looking for headers. */
const READ_AHEAD = 64 * 1024;
/** Buffer used for skipping bodies. */
const BUFFER_SIZE = 1024 * 1024;

/**
 * Fills `dest` from `reader` with as few read() calls as the reader allows, calling `onPiece`
 * with a view of each newly filled range.
 *
 * @param reader Where to read from.
 * @param dest The buffer to fill.
 * @param onPiece Called with each filled range, in order.
 * @returns The number of bytes filled: `dest.length` unless the reader ended first.
 */
export async function readFull(
  reader: ByteReader,
  dest: Uint8Array,
  onPiece?: (piece: Uint8Array) => void,
): Promise<number> {
  let filled = 0;
  while (filled < dest.length) {
    const n = await reader.read(dest.subarray(filled));
    if (n === null) break;
    onPiece?.(dest.subarray(filled, filled + n));
    filled += n;
  }
  return filled;
}

/** A reader with a small look-ahead buffer for header blocks; bodies bypass it. */
class BlockReader {
  readonly #reader: ByteReader;
  readonly #buffer = new Uint8Array(BUFFER_SIZE);
  #start = 0;
  #end = 0;
  #eof = false;
  /** Bytes handed out so far: the position in the archive. */
  position = 0;

  constructor(reader: ByteReader) {
    this.#reader = reader;
  }

  /** Returns the next `n` (<= READ_AHEAD) bytes as a short-lived view; shorter at the end. */
  async take(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n && !this.#eof) {
      if (this.#buffer.length - this.#start < n) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      const room = Math.max(n, READ_AHEAD) - (this.#end - this.#start);
      const got = await this.#reader.read(this.#buffer.subarray(this.#end, this.#end + room));
      if (got === null) this.#eof = true;
      else this.#end += got;
    }
    const view = this.#buffer.subarray(this.#start, Math.min(this.#start + n, this.#end));
    this.#start += view.length;
    this.position += view.length;
    return view;
  }

  /** Fills `dest` from the look-ahead first, then straight from the reader. */
  async readInto(dest: Uint8Array, onPiece?: (piece: Uint8Array) => void): Promise<number> {
    const buffered = Math.min(this.#end - this.#start, dest.length);
    if (buffered > 0) {
      dest.set(this.#buffer.subarray(this.#start, this.#start + buffered));
      this.#start += buffered;
      onPiece?.(dest.subarray(0, buffered));
    }
    const direct = this.#eof ? 0 : await readFull(this.#reader, dest.subarray(buffered), onPiece);
    if (buffered + direct < dest.length) this.#eof = true;
    this.position += buffered + direct;
    return buffered + direct;
  }

  /** Discards `n` bytes; returns how many there were. */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n) {
      const inBuffer = this.#end - this.#start;
      if (inBuffer === 0) {
        if (this.#eof) break;
        this.#start = this.#end = 0;
        const got = await this.#reader.read(
          this.#buffer.subarray(0, Math.min(n - skipped, BUFFER_SIZE)),
        );
        if (got === null) this.#eof = true;
        else this.#end = got;
        continue;
      }
      const k = Math.min(inBuffer, n - skipped);
      this.#start += k;
      skipped += k;
    }
    this.position += skipped;
    return skipped;
  }
}

/**
 * Iterates the outer archive: a concatenation of one-member `tar -cO --posix` archives, so zero
 * blocks between entries are skipped (like tar -i). Skips x/g records after applying them,
 * directory entries, and other non-file types. An entry not read or skipped by the time the
 * next one is requested is skipped automatically. Entries larger than options.maxEntrySize
 * (default 101 MiB) -> DamagedError (never allocate an attacker-chosen size). Truncation ->
 * IncompleteError('Cannot read the backup: it ends inside "<name>" (<got> of <size> bytes)');
 * garbage/bad checksum -> DamagedError. A backup that ends cleanly at an entry boundary (with
 * or without zero blocks) ends the iteration.
 *
 * @param reader The backup file or stream, positioned at its start.
 * @param options Limits.
 * @returns The file entries in archive order.
 *
 * @example
 * ```ts
 * using file = await Deno.open("qubes-backup-2014-07-01T120000");
 * for await (const entry of readOuterArchive(file)) {
 *   if (entry.name === "backup-header") console.log(new TextDecoder().decode(await entry.read()));
 * }
 * ```
 */
export async function* readOuterArchive(
  reader: ByteReader,
  options: OuterArchiveOptions = {},
): AsyncGenerator<OuterEntry> {
  const maxEntrySize = options.maxEntrySize ?? DEFAULT_MAX_ENTRY_SIZE;
  const input = new BlockReader(reader);
  let path: string | undefined;
  let longName: string | undefined;
  let size: number | undefined;
  /** Settles once the previous entry's body (and padding) has been consumed. */
  let previous: (() => Promise<void>) | undefined;

  const readMeta = async (name: string, length: number): Promise<Uint8Array> => {
    if (length > MAX_META_SIZE) {
      throw new DamagedError({
        reason: "too-large",
        subject: { kind: "entry", name, inDetail: true },
        action: "read the backup",
        detail: `"${name}" has an implausible size ${length}`,
      });
    }
    const data = new Uint8Array(length);
    const got = await input.readInto(data);
    if (got < length) throw incomplete(name, got, length);
    await input.skip(paddingAfter(length));
    return data;
  };

  while (true) {
    if (previous) await previous();
    previous = undefined;
    const at = input.position;
    const block = await input.take(BLOCK_SIZE);
    if (block.length < BLOCK_SIZE) {
      if (block.every((b) => b === 0)) return;
      throw new IncompleteError({
        reason: "truncated",
        action: "read the backup",
        detail: `it ends inside a header at byte ${at}`,
      });
    }
    if (isZeroBlock(block)) continue;
    const header = parseHeader(block, at);
    switch (header.typeflag) {
      case "x":
        for (
          const { key, value } of parsePaxRecords(
            await readMeta(header.name, header.size),
            header.name,
          )
        ) {
          if (key === "path") path = value;
          else if (key === "size") {
            size = parseDecimal(value, `pax record "size" in "${header.name}"`);
          }
        }
        continue;
      case "L": {
        const data = await readMeta(header.name, header.size);
        const nul = data.indexOf(0);
        longName = new TextDecoder().decode(nul < 0 ? data : data.subarray(0, nul));
        continue;
      }
    }
    const name = path ?? longName ?? header.name;
    const entrySize = size ?? header.size;
    path = longName = size = undefined;
    if (header.typeflag !== "0" && header.typeflag !== "\0" && header.typeflag !== "7") {
      // Directories, links, `g` and `K` records: nothing a backup needs.
      const skipped = await input.skip(entrySize);
      if (skipped < entrySize) throw incomplete(name, skipped, entrySize);
      await input.skip(paddingAfter(entrySize));
      continue;
    }
    if (entrySize > maxEntrySize) {
      throw new DamagedError({
        reason: "too-large",
        subject: { kind: "entry", name, inDetail: true },
        action: "read the backup",
        detail:
          `entry "${name}" is ${entrySize} bytes, more than the limit of ${maxEntrySize} (no Qubes backup chunk is that large)`,
      });
    }
    let consumed: Promise<void> | undefined;
    const claim = (body: () => Promise<void>): Promise<void> => {
      if (consumed) throw new Error(`Cannot read "${name}" again: it was already read or skipped`);
      consumed = body();
      return consumed;
    };
    previous = () => consumed ?? claim(() => skipBody(input, name, entrySize));
    yield {
      name,
      size: entrySize,
      async read(onPiece?: (piece: Uint8Array) => void): Promise<Uint8Array> {
        if (consumed) await claim(() => Promise.resolve());
        const out = new Uint8Array(entrySize);
        await claim(async () => {
          const got = await input.readInto(out, onPiece);
          if (got < entrySize) throw incomplete(name, got, entrySize);
          await input.skip(paddingAfter(entrySize));
        });
        return out;
      },
      async readPieces(pieceSize, onPiece, allocate = newPiece): Promise<void> {
        if (consumed) await claim(() => Promise.resolve());
        await claim(async () => {
          for (let at = 0; at < entrySize;) {
            const length = Math.min(pieceSize, entrySize - at);
            const piece = await allocate(length);
            const got = await input.readInto(piece);
            if (got < length) throw incomplete(name, at + got, entrySize);
            at += length;
            await onPiece(piece);
          }
          await input.skip(paddingAfter(entrySize));
        });
      },
      skip(): Promise<void> {
        return claim(() => skipBody(input, name, entrySize));
      },
    };
  }
}

/** The default piece buffer of `readPieces`. */
export function newPiece(length: number): Uint8Array {
  return new Uint8Array(length);
}

async function skipBody(input: BlockReader, name: string, size: number): Promise<void> {
  const skipped = await input.skip(size);
  if (skipped < size) throw incomplete(name, skipped, size);
  await input.skip(paddingAfter(size));
}

function incomplete(name: string, got: number, size: number): IncompleteError {
  return new IncompleteError({
    reason: "truncated",
    subject: { kind: "entry", name, inDetail: true },
    action: "read the backup",
    detail: `it ends inside "${name}" (${got} of ${size} bytes)`,
  });
}
