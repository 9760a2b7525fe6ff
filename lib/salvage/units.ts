/**
 * Restart after a break (`gap.ts`) in gzip and zstd data made of several independent units:
 * gzip members (`cat a.gz b.gz`, a compress filter that writes one member per piece) and zstd
 * frames (`pzstd`, frames concatenated). A Qubes filter run over the whole item (`gzip`,
 * `pigz`, `zstd`, `zstdmt`) writes one unit, so there is nothing to restart at then.
 *
 * After the break, the next unit start is searched (gzip: `1f 8b 08` and valid flags; zstd:
 * the frame magic `28 b5 2f fd`), the unit is decoded on its own and its output is handed on
 * only once its checksum matched: a gzip member's CRC32 and length (ISIZE) in its trailer, a
 * zstd frame's content checksum. A zstd frame without a content checksum is not used: a frame
 * start found by searching may be a false one (four bytes inside another frame, a zstd file
 * stored in the item), and nothing would tell its output is wrong. A candidate that does not
 * decode or check is skipped, and the search goes on from its next byte.
 *
 * Units that follow each other directly are handed on as one stream (zero padding and zstd's
 * skippable frames between them are passed over); where other bytes between two units were
 * skipped (they did not decode), a break marker (reason `undecodable`) is given
 * first, so the tar layer never joins data across them. Each further lost range is a break
 * too (one per range). Bytes after a restart are placed only through tar headers found in
 * them (`resync.ts`).
 *
 * A unit is held whole until checked: one larger than {@linkcode MAX_HELD} (compressed or
 * decoded) is not used.
 *
 * @module
 */

import * as zlib from "node:zlib";
import type { ZlibHandle } from "../compress/mod.ts";
import { gapMarker } from "./gap.ts";
import { type LostCause, lostCause } from "./lost.ts";

/** The largest unit (compressed, or decoded) held until its checksum matched. */
export const MAX_HELD = 128 * 1024 * 1024;

/** The result of trying to decode a unit at the start of some bytes. */
type Attempt =
  /** Decoded and checked: it ends at `end`, and decodes to `output`. */
  | { end: number; output: Uint8Array[] }
  /** Not a (checkable) unit. */
  | "bad"
  /** The bytes end inside it. */
  | "more";

/** A codec whose data may be made of several independent units. */
export type UnitCodec = "gzip" | "zstd";

const MAGIC: Readonly<Record<UnitCodec, readonly number[]>> = {
  gzip: [0x1f, 0x8b, 0x08],
  zstd: [0x28, 0xb5, 0x2f, 0xfd],
};

const TRY: Readonly<Record<UnitCodec, (bytes: Uint8Array) => Attempt>> = {
  gzip: gzipMember,
  zstd: zstdFrame,
};

/**
 * What decodes after a break in `source` (a salvaged compressed stream, lost ranges as marked
 * zeros), unit by unit (see the module text).
 *
 * @param broken The lost range the break was for: its further pieces give no second break.
 */
export async function* restartUnits(
  source: AsyncIterator<Uint8Array>,
  codec: UnitCodec,
  broken: LostCause | undefined,
): AsyncGenerator<Uint8Array> {
  const magic = MAGIC[codec], tryUnit = TRY[codec];
  const input = new Window();
  /** The lost range the last break was for. */
  let previous = broken;
  /** Whether nothing was handed on since the last break. */
  let atBreak = true;
  /** The segment of verified bytes ended: by a lost range (`cause`) or the end (undefined). */
  let closed: { cause: LostCause | undefined } | undefined;
  const pull = async (): Promise<void> => {
    const next = await source.next();
    if (next.done) closed = { cause: undefined };
    else if (lostCause(next.value) !== undefined) closed = { cause: lostCause(next.value) };
    else input.append(next.value);
  };
  /**
   * Bytes that are not part of a unit were skipped since the last unit: a break is due before
   * the next one (or at the end), unless a lost range's break comes first.
   */
  let skippedSome = false;
  const skipped = (bytes: Uint8Array): void => {
    // Zero padding between units is no loss.
    if (!atBreak && !bytes.every((byte) => byte === 0)) skippedSome = true;
  };
  const undecodable = function* (): Generator<Uint8Array> {
    if (!skippedSome) return;
    skippedSome = false;
    atBreak = true;
    yield gapMarker({ reason: "undecodable", chunk: "" });
  };
  let scan = 0;
  for (;;) {
    const bytes = input.bytes;
    if (codec === "zstd" && scan === 0) {
      // A skippable frame (pzstd writes one before each frame) is passed over, no break.
      const skip = skippableFrame(bytes);
      if (skip === "more" && closed === undefined) {
        await pull();
        continue;
      }
      if (typeof skip === "number") {
        input.drop(skip);
        continue;
      }
    }
    const at = find(bytes, magic, scan);
    if (at < 0) {
      // Keep what could be the start of a magic number cut by the end of the bytes.
      const keep = closed === undefined ? Math.min(bytes.length, magic.length - 1) : 0;
      skipped(bytes.subarray(0, bytes.length - keep));
      input.drop(bytes.length - keep);
      scan = 0;
      if (closed === undefined) {
        await pull();
        continue;
      }
      if (closed.cause === undefined) {
        yield* undecodable();
        return;
      }
      if (closed.cause !== previous) {
        skippedSome = false; // the lost range's break stands for both
        atBreak = true;
        yield gapMarker(closed.cause);
      }
      previous = closed.cause;
      closed = undefined;
      continue;
    }
    const attempt = tryUnit(bytes.subarray(at));
    if (attempt === "more" && closed === undefined && bytes.length - at <= MAX_HELD) {
      // Read on until the bytes from the candidate have doubled (or the segment ends).
      const want = input.length + Math.max(bytes.length - at, 1);
      while (closed === undefined && input.length < want) await pull();
      continue;
    }
    if (attempt === "more" || attempt === "bad") {
      skipped(bytes.subarray(0, at + 1));
      scan = at + 1;
      continue;
    }
    skipped(bytes.subarray(0, at));
    yield* undecodable();
    atBreak = false;
    yield* attempt.output;
    input.drop(at + attempt.end);
    scan = 0;
  }
}

/** Where `magic` starts in `bytes` at or after `from`; -1 if nowhere. */
function find(bytes: Uint8Array, magic: readonly number[], from: number): number {
  const first = magic[0]!;
  for (let i = bytes.indexOf(first, from); i >= 0; i = bytes.indexOf(first, i + 1)) {
    if (i + magic.length > bytes.length) return i; // may be one: decided when more comes
    let match = true;
    for (let j = 1; j < magic.length && match; j++) match = bytes[i + j] === magic[j];
    if (match) return i;
  }
  return -1;
}

/** Bytes read and not yet used, in one growing buffer. */
class Window {
  #buffer = new Uint8Array(0);
  #start = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#start;
  }

  get bytes(): Uint8Array {
    return this.#buffer.subarray(this.#start, this.#end);
  }

  append(bytes: Uint8Array): void {
    if (this.#end + bytes.length > this.#buffer.length) {
      const length = this.length;
      if (length + bytes.length <= this.#buffer.length / 2) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        const buffer = new Uint8Array(Math.max(2 * (length + bytes.length), 64 * 1024));
        buffer.set(this.bytes);
        this.#buffer = buffer;
      }
      this.#start = 0;
      this.#end = length;
    }
    this.#buffer.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  drop(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }
}

const FTEXT_RESERVED = 0xe0;
const FHCRC = 0x02, FEXTRA = 0x04, FNAME = 0x08, FCOMMENT = 0x10;

/** A gzip member at the start of `bytes` (RFC 1952), checked by its CRC32 and ISIZE. */
function gzipMember(bytes: Uint8Array): Attempt {
  if (bytes.length < 10) return "more";
  const flags = bytes[3]!;
  if (bytes[2] !== 8 || (flags & FTEXT_RESERVED) !== 0) return "bad";
  let at = 10;
  if (flags & FEXTRA) {
    if (bytes.length < at + 2) return "more";
    at += 2 + (bytes[at]! | (bytes[at + 1]! << 8));
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    const zero = bytes.indexOf(0, at);
    if (zero < 0) return "more";
    at = zero + 1;
  }
  if (flags & FHCRC) {
    if (bytes.length < at + 2) return "more";
    const crc = zlib.crc32(bytes.subarray(0, at)) & 0xffff;
    if (crc !== (bytes[at]! | (bytes[at + 1]! << 8))) return "bad";
    at += 2;
  }
  if (bytes.length < at) return "more";
  const inflated = inflateRaw(bytes.subarray(at));
  if (typeof inflated === "string") return inflated;
  const trailer = at + inflated.consumed;
  if (bytes.length < trailer + 8) return "more";
  let crc = 0, size = 0;
  for (const piece of inflated.output) {
    crc = zlib.crc32(piece, crc);
    size += piece.length;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + trailer, 8);
  if (view.getUint32(0, true) !== crc >>> 0 || view.getUint32(4, true) !== size % 2 ** 32) {
    return "bad";
  }
  return { end: trailer + 8, output: inflated.output };
}

const OUT = 1024 * 1024;

/**
 * Inflates the raw deflate stream at the start of `bytes` whole: its output and how many
 * bytes it takes; "more" when `bytes` end inside it, "bad" when it does not inflate (or
 * inflates to more than {@linkcode MAX_HELD}).
 */
function inflateRaw(
  bytes: Uint8Array,
): { output: Uint8Array[]; consumed: number } | "bad" | "more" {
  const stream = zlib.createInflateRaw();
  const inner = stream as unknown as { _handle?: ZlibHandle; _writeState?: Uint32Array };
  const handle = inner._handle, state = inner._writeState;
  if (typeof handle?.writeSync !== "function" || !(state instanceof Uint32Array)) {
    stream.destroy();
    return "bad"; // Not without the native handle (Deno and Node have it).
  }
  let failed = false;
  handle.onerror = () => failed = true;
  const output: Uint8Array[] = [];
  let total = 0;
  try {
    let at = 0;
    for (;;) {
      const out = new Uint8Array(OUT);
      handle.writeSync(zlib.constants.Z_NO_FLUSH, bytes, at, bytes.length - at, out, 0, OUT);
      if (failed) return "bad";
      const produced = OUT - state[0]!;
      at = bytes.length - state[1]!;
      if (produced > 0) output.push(out.subarray(0, produced));
      total += produced;
      if (total > MAX_HELD) return "bad";
      if (state[0] === 0) continue; // the output buffer is full: more may come
      if (at < bytes.length) return { output, consumed: at }; // room and input left: the end
      // All input taken: ended exactly here, or it goes on.
      handle.writeSync(zlib.constants.Z_FINISH, bytes, at, 0, out, 0, OUT);
      return failed || state[0] !== OUT ? "more" : { output, consumed: at };
    }
  } finally {
    stream.destroy();
  }
}

/** A zstd frame at the start of `bytes`, checked by its content checksum. */
function zstdFrame(bytes: Uint8Array): Attempt {
  const end = zstdFrameLength(bytes);
  if (typeof end === "string") return end;
  try {
    const output = zlib.zstdDecompressSync(bytes.subarray(0, end), { maxOutputLength: MAX_HELD });
    return { end, output: [new Uint8Array(output.buffer, output.byteOffset, output.length)] };
  } catch {
    return "bad";
  }
}

/**
 * The length of the skippable zstd frame at the start of `bytes` (magic `5? 2a 4d 18`, a
 * 4-byte size); "more" when `bytes` may start one but end before its end; undefined when
 * they do not start one.
 */
function skippableFrame(bytes: Uint8Array): number | "more" | undefined {
  const prefix = [0x50, 0x2a, 0x4d, 0x18];
  for (let i = 0; i < Math.min(4, bytes.length); i++) {
    if ((i === 0 ? bytes[0]! & 0xf0 : bytes[i]) !== prefix[i]) return undefined;
  }
  if (bytes.length < 8) return "more";
  const length = 8 + new DataView(bytes.buffer, bytes.byteOffset + 4, 4).getUint32(0, true);
  if (length > MAX_HELD) return undefined; // not passed over: searched through
  return bytes.length < length ? "more" : length;
}

/** The largest zstd block (RFC 8878: 128 KiB at most). */
const MAX_BLOCK = 128 * 1024;

/**
 * The length of the zstd frame at the start of `bytes`, from its frame and block headers
 * (RFC 8878 section 3.1.1); "bad" for a frame without a content checksum (see the module
 * text) or with a reserved bit, block type or block size.
 */
function zstdFrameLength(bytes: Uint8Array): number | "bad" | "more" {
  if (bytes.length < 5) return "more";
  const descriptor = bytes[4]!;
  if ((descriptor & 0x04) === 0 || (descriptor & 0x08) !== 0) return "bad";
  const single = (descriptor >> 5) & 1;
  const contentSize = [single, 2, 4, 8][descriptor >> 6]!;
  let at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]! + contentSize;
  for (;;) {
    if (bytes.length < at + 3) return "more";
    const header = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3 || size > MAX_BLOCK) return "bad";
    at += 3 + (type === 1 ? 1 : size);
    if (at > MAX_HELD) return "bad";
    if (header & 1) break;
  }
  at += 4;
  return bytes.length < at ? "more" : at;
}
