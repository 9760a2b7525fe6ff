/**
 * Salvage of a compressed item (formats 3 and 4 with compression, the Qubes defaults): the
 * item's compressed stream, where lost chunks are marked zeros (`chunks.ts`, `cbc.ts`),
 * becomes its decompressed tar stream up to the first lost range, then a break marker
 * (`gap.ts`): how long the lost part would have decompressed to is not known.
 *
 * After the break, decoding restarts where the codec has independent units:
 *
 * - bzip2 (`bzip2`, `pbzip2`): every block (at most 900 kB of input before bzip2's first
 *   run-length step) is coded on its own and starts with a 48-bit magic number at any bit
 *   position, and carries the CRC of its output. Decoding restarts at the next block magic
 *   after the break; a block's output is handed on only once its CRC matched.
 * - xz: block by block (`xz.ts`): xz 5.6 and later cut blocks that record their sizes, so a
 *   damaged block costs exactly its rest; a lost block header is a break, and decoding restarts
 *   at the next block header.
 * - gzip and zstd made of several members or frames (a filter that writes them): decoding
 *   restarts at the next member or frame, each handed on once its checksum matched
 *   (`units.ts`).
 * - gzip, zstd, one-block xz, lzma as Qubes wrote them (`--use-compress-program=<filter>` over
 *   the whole item: one gzip member (also pigz), one zstd frame (also zstdmt), one xz block (xz
 *   before 5.6 compresses in one thread by default), one lzma stream): every byte depends on
 *   what came before, so nothing after the break can be decoded; the rest of the item is lost.
 *
 * Bytes after a restart have no known offset in the stream; the tar layer places them only
 * through a tar header found in them (`resync.ts`).
 *
 * @module
 */

import {
  Bzip2Decoder,
  type Compression,
  compressionForFilter,
  decodeGzip,
  decodeLzmaAlone,
  decodeXz,
  decodeZlib,
  decodeZstd,
} from "../compress/mod.ts";
import { DamagedError, IncompleteError, RecoverError } from "../errors.ts";
import { asPieces } from "../streams/mod.ts";
import { gapMarker } from "./gap.ts";
import { type LostCause, lostCause, uncheckedBytes, type UncheckedPlaces } from "./lost.ts";
import { restartUnits } from "./units.ts";
import { xzSalvaged } from "./xz.ts";

/**
 * The compression of a salvaged item under `header`: undefined for none, null when the
 * header names a filter this tool does not know (the item is then not salvaged).
 */
export function salvageCompression(
  header: { compressed: boolean | undefined; compressionFilter: string | undefined },
): Compression | undefined | null {
  if (header.compressed === false) return undefined;
  if (header.compressed === undefined) return null;
  try {
    return compressionForFilter(header.compressionFilter ?? "gzip");
  } catch {
    return null;
  }
}

/** The block magic of bzip2 (the digits of pi), 48 bits. */
const BZIP2_BLOCK_MAGIC = 0x314159265359n;

/**
 * The decompressed stream of a salvaged compressed stream: decoded bytes up to the first lost
 * range, then a break marker and, for bzip2, xz, gzip and zstd, what decodes after each break
 * (see the module text).
 *
 * @param input The compressed stream, lost ranges as marked zeros.
 * @param kind Its compression.
 * @param order Where the place of the input's chunks is not authenticated (format 3): the
 *   places of the chunks after the first, counted in a stream where `input` starts at
 *   `shift`. What is decoded once the decoder has read a byte of one of them, up to the first
 *   break, is marked unchecked (`lost.ts`): nothing checks it (the codec's checksum at the end
 *   of the stream is not reached), and a chunk out of place or of another backup decodes to
 *   wrong bytes before the decoder notices.
 */
export async function* decompressSalvaged(
  input: AsyncIterable<Uint8Array>,
  kind: Compression,
  order?: { places: UncheckedPlaces; shift: number },
): AsyncGenerator<Uint8Array> {
  const source = input[Symbol.asyncIterator]();
  try {
    if (kind === "xz") {
      yield* xzSalvaged(
        source,
        (rest, start) =>
          untilBreak(
            rest[Symbol.asyncIterator](),
            "xz",
            order && { places: order.places, shift: order.shift + start },
          ),
        order && ((end) => {
          const chunk = latestPlace(order.places, order.shift + end);
          return chunk === undefined ? undefined : { reason: "order-unchecked", chunk };
        }),
      );
      return;
    }
    const { broken, level } = yield* untilBreak(source, kind, order);
    if (broken !== undefined && kind === "bzip2") yield* restartBzip2(source, level);
    if (broken !== undefined && (kind === "gzip" || kind === "zstd")) {
      yield* restartUnits(source, kind, broken);
    }
    // Otherwise nothing after the break decodes: the rest of the item is left unread.
  } finally {
    await source.return?.();
  }
}

/**
 * Decodes `source` up to its first lost range (or data that does not decode), then gives a
 * break marker; returns why it broke (undefined: the data ended whole) and, for bzip2, the
 * block size level of its header.
 */
async function* untilBreak(
  source: AsyncIterator<Uint8Array>,
  kind: Compression,
  order?: { places: UncheckedPlaces; shift: number },
): AsyncGenerator<Uint8Array, { broken: LostCause | undefined; level: number }> {
  let lost: LostCause | undefined;
  let level = 9;
  let first = true;
  /** Where the input read so far ends, in the stream `order` counts in. */
  let position = order?.shift ?? 0;
  async function* untilLost(): AsyncGenerator<Uint8Array> {
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await source.next();
      } catch (error) {
        throw new Upstream(error);
      }
      if (next.done) return;
      const cause = lostCause(next.value);
      if (cause !== undefined) {
        lost = cause;
        return;
      }
      if (first && next.value.length >= 4) {
        const digit = next.value[3]! - 0x30;
        if (next.value[0] === 0x42 && digit >= 1 && digit <= 9) level = digit;
      }
      first = false;
      position += next.value.length;
      yield next.value;
    }
  }
  let broken: LostCause | undefined;
  try {
    for await (const piece of PREFIX[kind](untilLost())) {
      const chunk = order === undefined ? undefined : latestPlace(order.places, position);
      yield chunk === undefined
        ? piece
        : uncheckedBytes(piece, { reason: "order-unchecked", chunk });
    }
    broken = lost;
  } catch (error) {
    // What reading the chunks threw (not the decoder) ends the item as it is.
    if (error instanceof Upstream) throw error.error;
    if (error instanceof RecoverError && !(error instanceof IncompleteError)) {
      if (!(error instanceof DamagedError)) throw error;
    }
    // Cut short at the lost range, as expected; or data that verified and does not decode
    // (node:zlib throws plain errors then).
    broken = lost ??
      (error instanceof IncompleteError
        ? { reason: "truncated", chunk: "" }
        : { reason: error instanceof DamagedError ? error.reason : "damaged", chunk: "" });
  }
  if (broken !== undefined) yield gapMarker(broken);
  return { broken, level };
}

/**
 * The chunk of `places` whose bytes the input read up to `position` reached last; undefined
 * while it reached none of them.
 */
function latestPlace(places: UncheckedPlaces, position: number): string | undefined {
  // The ranges are in stream order: the last one that starts before `position`.
  const ranges = places.ranges;
  let low = 0, high = ranges.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (ranges[mid]!.start < position) low = mid + 1;
    else high = mid;
  }
  return ranges[low - 1]?.chunk;
}

/** An error of the input of a decoder, passed through it unchanged. */
class Upstream {
  constructor(readonly error: unknown) {}
}

/**
 * Decoders that hand on every byte the input they got decodes to, also when it is cut short
 * or does not decode (then they throw after it).
 */
const PREFIX: Readonly<
  Record<Compression, (input: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>>
> = {
  gzip: (input) => decodeGzip(asPieces(input)),
  zlib: (input) => decodeZlib(asPieces(input)),
  bzip2: bzip2Prefix,
  xz: (input) => decodeXz(asPieces(input)),
  lzma: (input) => decodeLzmaAlone(asPieces(input)),
  zstd: (input) => decodeZstd(asPieces(input)),
};

/**
 * bzip2, each block's output handed on once its CRC matched: in format 3, where the order of
 * chunks is not authenticated, a chunk out of place then fails the CRC of the block it cuts.
 */
async function* bzip2Prefix(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const decoder = new Bzip2Decoder();
  decoder.holdBlocks();
  for await (const piece of input) {
    decoder.push(piece);
    yield* decoder.decode(false);
  }
  yield* decoder.decode(true);
}

/**
 * bzip2 after a break: finds the next block magic, decodes from there (each block's output
 * handed on once its CRC matched), and after each further lost range or block that does not
 * decode gives a break marker and looks for the next block again.
 */
async function* restartBzip2(
  source: AsyncIterator<Uint8Array>,
  level: number,
): AsyncGenerator<Uint8Array> {
  const scanner = new BlockScanner();
  let decoder: Bzip2Decoder | undefined;
  let shifter: BitShifter | undefined;
  /** The lost range the last piece belonged to. */
  let previous: LostCause | undefined;
  /** Decodes what the decoder holds; false (and a break marker) when it does not decode. */
  const decode = function* (final: boolean): Generator<Uint8Array, boolean> {
    try {
      yield* decoder!.decode(final);
      return true;
    } catch (error) {
      decoder = undefined;
      if (error instanceof IncompleteError) return true; // a block cut by the lost range
      if (!(error instanceof DamagedError)) throw error;
      yield gapMarker({ reason: error.reason, chunk: "" });
      return false;
    }
  };
  for (;;) {
    const next = await source.next();
    if (next.done) break;
    const piece = next.value;
    const cause = lostCause(piece);
    if (cause !== undefined) {
      if (decoder !== undefined) {
        decoder.push(shifter!.end());
        yield* decode(true);
        decoder = undefined;
      }
      // One break per lost range (it comes in pieces).
      if (cause !== previous) yield gapMarker(cause);
      previous = cause;
      scanner.reset();
      continue;
    }
    previous = undefined;
    if (decoder !== undefined) {
      decoder.push(shifter!.shift(piece));
      if (!(yield* decode(false))) scanner.reset();
      continue;
    }
    const found = scanner.find(piece);
    if (found === undefined) continue;
    decoder = new Bzip2Decoder();
    decoder.resume(level);
    shifter = new BitShifter(found.bit);
    decoder.push(shifter.shift(found.bytes));
    if (!(yield* decode(false))) scanner.reset();
  }
  if (decoder !== undefined) {
    decoder.push(shifter!.end());
    yield* decode(true);
  }
}

/** For each bit shift 0-7: the 7 bytes the magic covers at that shift, and which bits count. */
const SHIFTED = Array.from({ length: 8 }, (_, shift) => {
  const window = BZIP2_BLOCK_MAGIC << BigInt(8 - shift);
  const bytes = new Uint8Array(7), masks = new Uint8Array(7);
  for (let j = 0; j < 7; j++) {
    bytes[j] = Number((window >> BigInt(8 * (6 - j))) & 0xffn);
    masks[j] = j === 0 ? 0xff >> shift : j === 6 ? (0xff << (8 - shift)) & 0xff : 0xff;
  }
  return { bytes, masks };
});

/** For each value of a magic's second byte, the shifts it can belong to (a bit mask). */
const SECOND_BYTE = (() => {
  const table = new Uint8Array(256);
  SHIFTED.forEach(({ bytes }, shift) => table[bytes[1]!]! |= 1 << shift);
  return table;
})();

/** Finds the next bzip2 block magic, at any bit position, in input given piece by piece. */
class BlockScanner {
  #carry = new Uint8Array(0);

  reset(): void {
    this.#carry = new Uint8Array(0);
  }

  /**
   * The input from the byte that holds the first bit of the next magic, and that bit's
   * position in it (0 = most significant); undefined when `piece` ends before one.
   */
  find(piece: Uint8Array): { bytes: Uint8Array; bit: number } | undefined {
    const carry = this.#carry;
    const buffer = new Uint8Array(carry.length + piece.length);
    buffer.set(carry);
    buffer.set(piece, carry.length);
    for (let k = 0; k + 7 <= buffer.length; k++) {
      const shifts = SECOND_BYTE[buffer[k + 1]!]!;
      if (shifts === 0) continue;
      for (let shift = 0; shift < 8; shift++) {
        if (!(shifts & (1 << shift))) continue;
        const { bytes, masks } = SHIFTED[shift]!;
        let match = true;
        for (let j = 0; j < 7 && match; j++) match = (buffer[k + j]! & masks[j]!) === bytes[j];
        if (match) {
          this.#carry = new Uint8Array(0);
          return { bytes: buffer.subarray(k), bit: shift };
        }
      }
    }
    this.#carry = buffer.slice(Math.max(0, buffer.length - 6));
    return undefined;
  }
}

/** Moves a bit stream `bit` bits to the left, so that it starts on a byte boundary. */
class BitShifter {
  readonly #bit: number;
  #previous = -1;

  constructor(bit: number) {
    this.#bit = bit;
  }

  shift(bytes: Uint8Array): Uint8Array {
    const bit = this.#bit;
    if (bit === 0) return bytes;
    if (bytes.length === 0) return bytes;
    const out = new Uint8Array(bytes.length - (this.#previous < 0 ? 1 : 0));
    let previous = this.#previous, o = 0;
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!;
      if (previous >= 0) out[o++] = ((previous << bit) | (byte >>> (8 - bit))) & 0xff;
      previous = byte;
    }
    this.#previous = previous;
    return out;
  }

  /** The last, partial byte (its missing bits zero). */
  end(): Uint8Array {
    if (this.#bit === 0 || this.#previous < 0) return new Uint8Array(0);
    const last = new Uint8Array([(this.#previous << this.#bit) & 0xff]);
    this.#previous = -1;
    return last;
  }
}
