/**
 * Salvage of xz data block by block. xz 5.6 and later compress in several threads by default
 * (as in the dom0 of Qubes R4.3): the stream is cut into blocks (24 MiB of input at the default
 * level), each coded on its own, and each block header records the block's compressed and
 * uncompressed size. So a block that is lost (wholly or in part) costs exactly its uncompressed
 * size, as marked zeros of known length (`lost.ts`), and the blocks after it keep their exact
 * place in the stream. Each block is decoded on its own (liblzma, fed the stream header and the
 * block) and its output is used only once its check (CRC64 by default) matched.
 *
 * A block without sizes in its header (xz before 5.6, one thread: the whole item is one block)
 * is decoded as a stream up to the first lost range, then a break (`gap.ts`), as
 * `compressed.ts` does for the other codecs. When a lost range swallows a block header, the
 * place of what follows is not known: a break, then the next valid block header (its CRC32
 * matches) is looked for and decoding goes on from there, placed only through tar headers.
 *
 * Where the chunks' places are not authenticated (format 3, `unchecked`), what the start of a
 * block cut by a lost range decodes to is marked unchecked once it reaches a chunk after the
 * first: nothing checks it (whole blocks are checked by their check).
 *
 * @module
 */

import * as zlib from "node:zlib";
import { decodeXz } from "../compress/mod.ts";
import { DamagedError, IncompleteError } from "../errors.ts";
import { asPieces } from "../streams/mod.ts";
import { gapMarker } from "./gap.ts";
import { lostBytes, type LostCause, lostCause, uncheckedBytes } from "./lost.ts";

const STREAM_HEADER = 12;
/** The largest block output held until the block's check matched. */
const MAX_HELD = 256 * 1024 * 1024;
/** The largest block header (1024 bytes), and then some to search in. */
const LONGEST_HEADER = 2048;
const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

/** Reads input pieces on demand; lost pieces are kept with their cause. */
class Input {
  readonly #source: AsyncIterator<Uint8Array>;
  #pieces: Uint8Array[] = [];
  #ended = false;
  #taken = 0;

  constructor(source: AsyncIterator<Uint8Array>) {
    this.#source = source;
  }

  /** Bytes taken or dropped from the front so far: where the buffered bytes start. */
  get taken(): number {
    return this.#taken;
  }

  /** Buffered bytes. */
  get length(): number {
    return this.#pieces.reduce((n, p) => n + p.length, 0);
  }

  /** Buffers at least `n` bytes (fewer at the end of the input); returns whether it could. */
  async want(n: number): Promise<boolean> {
    let have = this.length;
    while (have < n && !this.#ended) {
      const next = await this.#source.next();
      if (next.done) this.#ended = true;
      else {
        this.#pieces.push(next.value);
        have += next.value.length;
      }
    }
    return have >= n;
  }

  /**
   * The first `n` buffered bytes, the cause of the first lost byte among them, and how many
   * verified bytes come before it.
   */
  take(n: number): { bytes: Uint8Array; lost: LostCause | undefined; verified: number } {
    const bytes = new Uint8Array(n);
    this.#taken += n;
    let at = 0;
    let lost: LostCause | undefined;
    let verified = n;
    while (at < n) {
      const piece = this.#pieces[0]!;
      const k = Math.min(piece.length, n - at);
      if (lost === undefined && lostCause(piece) !== undefined) {
        lost = lostCause(piece);
        verified = at;
      }
      bytes.set(piece.subarray(0, k), at);
      at += k;
      if (k === piece.length) this.#pieces.shift();
      else {
        const rest = piece.subarray(k);
        const cause = lostCause(piece);
        // Keep the mark on what is left of a lost piece.
        this.#pieces[0] = cause === undefined ? rest : [...lostBytes(rest.length, cause)][0]!;
      }
    }
    return { bytes, lost, verified };
  }

  /**
   * The verified bytes at the front, up to `n` (at least `n` unless a lost piece or the end
   * follows); a lost piece at the front is dropped instead (undefined).
   */
  verified(n: number): Uint8Array | undefined {
    const pieces: Uint8Array[] = [];
    let length = 0;
    for (const piece of this.#pieces) {
      if (lostCause(piece) !== undefined) break;
      pieces.push(piece);
      length += piece.length;
      if (length >= n) break;
    }
    if (pieces.length === 0) {
      this.#taken += this.#pieces.shift()?.length ?? 0;
      return undefined;
    }
    const out = new Uint8Array(length);
    let at = 0;
    for (const piece of pieces) {
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }

  /** Drops `n` verified bytes from the front. */
  drop(n: number): void {
    this.#taken += n;
    while (n > 0) {
      const piece = this.#pieces[0]!;
      if (piece.length <= n) {
        this.#pieces.shift();
        n -= piece.length;
      } else {
        this.#pieces[0] = piece.subarray(n);
        n = 0;
      }
    }
  }

  /** Everything left, piece by piece (buffered first). */
  async *rest(): AsyncGenerator<Uint8Array> {
    while (this.#pieces.length > 0) yield this.#pieces.shift()!;
    for (;;) {
      const next = await this.#source.next();
      if (next.done) return;
      yield next.value;
    }
  }
}

/** Reads a variable-length integer at `at`; [value, bytes] or undefined. */
function vli(bytes: Uint8Array, at: number): [number, number] | undefined {
  let value = 0;
  for (let i = 0; i < 9 && at + i < bytes.length; i++) {
    const byte = bytes[at + i]!;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (!(byte & 0x80)) return [value, i + 1];
  }
  return undefined;
}

/** A checked block header: its size, and the block's sizes when the header records them. */
function blockHeader(
  header: Uint8Array,
): { compressed: number; uncompressed: number } | null | undefined {
  // undefined: not a valid header; null: valid, but without both sizes.
  const size = header.length;
  if (size < 8 || header[0] === 0 || (header[0]! + 1) * 4 !== size) return undefined;
  const view = new DataView(header.buffer, header.byteOffset, size);
  if (zlib.crc32(header.subarray(0, size - 4)) !== view.getUint32(size - 4, true)) return undefined;
  const flags = header[1]!;
  if (flags & 0x3c) return undefined;
  if ((flags & 0xc0) !== 0xc0) return null;
  const compressed = vli(header, 2);
  if (compressed === undefined) return undefined;
  const uncompressed = vli(header, 2 + compressed[1]);
  if (uncompressed === undefined || compressed[0] === 0) return undefined;
  return { compressed: compressed[0], uncompressed: uncompressed[0] };
}

/** Decodes one block (with `streamHeader` before it); undefined when it does not check out. */
async function decodeBlock(
  streamHeader: Uint8Array,
  block: Uint8Array,
  uncompressed: number,
): Promise<Uint8Array[] | undefined> {
  const out: Uint8Array[] = [];
  let length = 0;
  async function* input() {
    yield streamHeader;
    yield block;
  }
  try {
    for await (const piece of decodeXz(asPieces(input()))) {
      out.push(piece);
      length += piece.length;
      if (length > uncompressed) return undefined;
    }
  } catch (error) {
    // The index that would follow is missing: expected. Anything else: the block is bad.
    if (!(error instanceof IncompleteError)) {
      if (error instanceof DamagedError) return undefined;
      throw error;
    }
  }
  return length === uncompressed ? out : undefined;
}

/**
 * The decompressed stream of salvaged xz input (see the module text): exact lost ranges for
 * lost blocks with sizes, break markers where the place is not known.
 */
export async function* xzSalvaged(
  source: AsyncIterator<Uint8Array>,
  fallback: (input: AsyncIterable<Uint8Array>, start: number) => AsyncIterable<Uint8Array>,
  unchecked?: (end: number) => LostCause | undefined,
): AsyncGenerator<Uint8Array> {
  const input = new Input(source);
  if (!await input.want(STREAM_HEADER)) return;
  const head = input.take(STREAM_HEADER);
  if (head.lost !== undefined || head.bytes[6] !== 0 || (head.bytes[7]! & 0xf0)) {
    // Not a stream header that can be read: decode as a stream (it will break at once).
    yield* fallback(joined(head.bytes, input.rest()), 0);
    return;
  }
  const streamHeader = head.bytes;
  const checkSize = CHECK_SIZES[streamHeader[7]! & 0x0f]!;
  /** Whether the place in the stream is known (no header was lost since the start). */
  let placed = true;
  for (;;) {
    if (!await input.want(1)) return;
    const first = input.take(1);
    if (first.lost !== undefined || first.bytes[0] === 0) {
      if (first.lost === undefined) return; // The index: the stream's blocks are done.
      yield* resync(first.lost);
      continue;
    }
    const size = (first.bytes[0]! + 1) * 4;
    if (!await input.want(size - 1)) return;
    const rest = input.take(size - 1);
    const header = concat(first.bytes, rest.bytes);
    const sizes = rest.lost === undefined ? blockHeader(header) : undefined;
    if (rest.lost !== undefined || sizes === undefined) {
      yield* resync(rest.lost ?? { reason: "damaged", chunk: "" });
      continue;
    }
    if (sizes === null || sizes.uncompressed > MAX_HELD) {
      // One block without sizes (xz before 5.6), or one too large to hold until its check: a
      // stream up to the first lost range.
      if (!placed) {
        // Its place is not known either: nothing more can be told apart.
        return;
      }
      const start = concat(streamHeader, header);
      yield* fallback(joined(start, input.rest()), input.taken - start.length);
      return;
    }
    const body = sizes.compressed + ((4 - (sizes.compressed % 4)) % 4) + checkSize;
    const complete = await input.want(body);
    const data = input.take(Math.min(body, input.length));
    if (data.lost !== undefined || !complete) {
      // What the block's bytes before the lost range decode to is authentic (it cannot be
      // checked against the block's check, which is lost): the rest of the block is lost.
      const cause = data.lost ?? { reason: "truncated", chunk: "" };
      // Nor is its place, where the chunks' places are not authenticated (format 3).
      const order = unchecked?.(input.taken - data.bytes.length + data.verified);
      let decoded = 0;
      for await (const piece of blockPrefix(header, data.bytes.subarray(0, data.verified))) {
        const piece2 = piece.subarray(0, Math.max(0, sizes.uncompressed - decoded));
        decoded += piece2.length;
        if (piece2.length === 0) continue;
        yield order === undefined ? piece2 : uncheckedBytes(piece2, order);
      }
      yield* lostBytes(sizes.uncompressed - decoded, cause);
      if (!complete) return;
      continue;
    }
    const output = await decodeBlock(streamHeader, concat(header, data.bytes), sizes.uncompressed);
    if (output === undefined) {
      yield* lostBytes(sizes.uncompressed, { reason: "damaged", chunk: "" });
    } else yield* output;
  }

  /** What the start of a block decodes to (nothing more when it does not decode). */
  async function* blockPrefix(header: Uint8Array, body: Uint8Array): AsyncGenerator<Uint8Array> {
    async function* input() {
      yield streamHeader;
      yield concat(header, body);
    }
    try {
      yield* decodeXz(asPieces(input()));
    } catch (error) {
      if (!(error instanceof DamagedError || error instanceof IncompleteError)) throw error;
    }
  }

  /** A header was lost: a break, then the next valid block header with sizes. */
  async function* resync(cause: LostCause): AsyncGenerator<Uint8Array> {
    placed = false;
    yield gapMarker(cause);
    for (;;) {
      await input.want(LONGEST_HEADER);
      if (input.length === 0) return;
      const window = input.verified(LONGEST_HEADER);
      if (window === undefined) continue; // A lost piece was dropped.
      for (let at = 0; at < window.length; at++) {
        const size = (window[at]! + 1) * 4;
        if (window[at] === 0 || at + size > window.length) continue;
        if (blockHeader(window.subarray(at, at + size))) {
          input.drop(at);
          return;
        }
      }
      // None: go on after these bytes, but for the last 1024 when more verified bytes follow
      // (a header may start there).
      input.drop(window.length < LONGEST_HEADER ? window.length : window.length - 1024);
    }
  }
}

/** `head` and then `rest`. */
async function* joined(
  head: Uint8Array,
  rest: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  yield head;
  yield* rest;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
