/**
 * A streaming bzip2 decoder in TypeScript.
 *
 * No npm package fits: unbzip2-stream builds a JS array per byte, seek-bzip and
 * @foxglove/wasm-bz2 need the whole input in memory. This one decodes block by block with
 * bounded memory (one block: at most 900 000 symbols, 2.4 MB of input) and handles every
 * stream of a multi-stream file (pbzip2, `cat a.bz2 b.bz2`).
 *
 * @module
 */

import { DamagedError } from "../errors.ts";
import { concat } from "../streams/mod.ts";
import { type Decoder, endsEarly, OUTPUT_PIECE } from "./_decoder_stream.ts";

/** Input kept before a block is decoded: more than the largest possible compressed block. */
const BLOCK_INPUT = 2_600_000;
const BLOCK_MAGIC_HI = 0x314159, BLOCK_MAGIC_LO = 0x265359;
const END_MAGIC_HI = 0x177245, END_MAGIC_LO = 0x385090;
const MAX_GROUPS = 6, MAX_ALPHA = 258, MAX_CODE_LENGTH = 20, GROUP_SIZE = 50;
const MAX_SELECTORS = 18002;
/** Codes of up to this many bits are decoded with one table look-up. */
const FAST_BITS = 10;
const FAST_MASK = (1 << FAST_BITS) - 1;

/** CRC-32 as bzip2 computes it: polynomial 0x04C11DB7, most significant bit first. */
const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c;
  }
  return table;
})();

function damaged(reason: string): DamagedError {
  return new DamagedError({ reason: "damaged", action: "decompress bzip2 data", detail: reason });
}

/** Thrown inside a block when the buffered input runs out; the block is retried later. */
class NeedInput {}

/** Reads bits, most significant first, from a buffer; reading past its end sets `overrun`. */
class BitReader {
  buffer: Uint8Array = new Uint8Array(0);
  /** Index of the next byte to load. */
  pos = 0;
  /** Loaded bits, the low `count` of them valid. */
  bits = 0;
  count = 0;
  overrun = false;

  read(n: number): number {
    while (this.count < n) {
      const byte = this.pos < this.buffer.length ? this.buffer[this.pos]! : 0;
      if (this.pos >= this.buffer.length) this.overrun = true;
      this.pos++;
      this.bits = (this.bits << 8) | byte;
      this.count += 8;
    }
    this.count -= n;
    return (this.bits >>> this.count) & ((1 << n) - 1);
  }

  /** Drops the bits up to the next byte boundary. */
  align(): void {
    this.count -= this.count & 7;
  }

  /** Bytes not yet read (whole bytes still loaded count as unread). */
  get remaining(): number {
    return this.buffer.length - this.pos + (this.count >> 3);
  }
}

/** One Huffman table of a block: a fast table for short codes, limits for long ones. */
interface Group {
  fast: Uint16Array; // (symbol << 5) | length, 0 when the code is longer than FAST_BITS
  limit: Int32Array; // largest code value of each length, left-aligned to maxLen is not needed
  base: Int32Array;
  perm: Uint16Array;
  minLen: number;
  maxLen: number;
}

function newGroup(): Group {
  return {
    fast: new Uint16Array(1 << FAST_BITS),
    limit: new Int32Array(MAX_CODE_LENGTH + 2),
    base: new Int32Array(MAX_CODE_LENGTH + 2),
    perm: new Uint16Array(MAX_ALPHA),
    minLen: 0,
    maxLen: 0,
  };
}

/** Builds the canonical code of `lengths` (as bzip2 assigns it) into `group`. */
function buildGroup(group: Group, lengths: Uint8Array, alphaSize: number): void {
  let minLen = 32, maxLen = 0;
  for (let i = 0; i < alphaSize; i++) {
    const len = lengths[i]!;
    if (len > maxLen) maxLen = len;
    if (len < minLen) minLen = len;
  }
  const { perm, limit, base, fast } = group;
  let p = 0;
  for (let len = minLen; len <= maxLen; len++) {
    for (let s = 0; s < alphaSize; s++) if (lengths[s] === len) perm[p++] = s;
  }
  // code value v of length len maps to perm[v - base[len]] when v <= limit[len]
  const counts = new Int32Array(MAX_CODE_LENGTH + 2);
  for (let i = 0; i < alphaSize; i++) counts[lengths[i]!]!++;
  let code = 0, index = 0;
  for (let len = 1; len <= MAX_CODE_LENGTH; len++) {
    base[len] = code - index;
    code += counts[len]!;
    index += counts[len]!;
    limit[len] = code - 1;
    code <<= 1;
  }
  fast.fill(0);
  for (let len = minLen; len <= Math.min(maxLen, FAST_BITS); len++) {
    const first = limit[len]! - counts[len]! + 1;
    for (let v = first; v <= limit[len]!; v++) {
      const entry = (perm[v - base[len]!]! << 5) | len;
      const shift = FAST_BITS - len;
      const from = v << shift, to = (v + 1) << shift;
      for (let f = from; f < to; f++) fast[f] = entry;
    }
  }
  group.minLen = minLen;
  group.maxLen = maxLen;
}

/**
 * Decodes bzip2 input pushed piece by piece; `decode()` yields output pieces as blocks
 * complete. Holds one block of input and the block's 3.6 MB work array.
 */
export class Bzip2Decoder {
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #reader = new BitReader();
  /** Inside a stream (after "BZh<level>", before the end-of-stream marker). */
  #inStream = false;
  #sawStream = false;
  #blockSize = 0;
  #streamCrc = 0;
  #tt = new Int32Array(0);
  #groups = Array.from({ length: MAX_GROUPS }, newGroup);
  #selectors = new Uint8Array(MAX_SELECTORS);
  #lengths = new Uint8Array(MAX_ALPHA);
  #seqToUnseq = new Uint8Array(256);
  #mtf = new Uint8Array(256);
  #counts = new Int32Array(256);
  /** Salvage (`resume`): the stream's start was lost, so its CRC cannot be checked. */
  #resumed = false;
  /** Salvage (`resume`): each block's output is held until its CRC matched. */
  #held = false;

  /** Salvage (`lib/salvage/`): each block's output is handed on only once its CRC matched. */
  holdBlocks(): void {
    this.#held = true;
  }

  /**
   * Salvage (`lib/salvage/`): the input continues at a block of a stream of `level` whose
   * start was lost. That stream's CRC is not checked, and from now on each block's output is
   * handed on only once the block's CRC matched.
   */
  resume(level: number): void {
    this.#blockSize = level * 100_000;
    if (this.#tt.length < this.#blockSize) this.#tt = new Int32Array(this.#blockSize);
    this.#streamCrc = 0;
    this.#inStream = true;
    this.#sawStream = true;
    this.#resumed = true;
    this.#held = true;
  }

  /** Queues an input piece (kept by reference, not copied). */
  push(piece: Uint8Array): void {
    this.#pending.push(piece);
    this.#pendingBytes += piece.length;
  }

  /**
   * Decodes what the queued input allows. Before the end of the input it waits until a
   * whole block's worth is queued; with `final` it decodes everything.
   *
   * @throws {DamagedError} On corrupt data, or when `final` input ends inside a stream.
   */
  *decode(final: boolean): Generator<Uint8Array> {
    const reader = this.#reader;
    // gather two blocks' worth before joining, so each input byte is copied about twice
    if (!final && reader.remaining + this.#pendingBytes < 2 * BLOCK_INPUT) return;
    if (this.#pendingBytes > 0) {
      const rest = reader.buffer.subarray(reader.pos);
      reader.buffer = concat([rest, ...this.#pending], rest.length + this.#pendingBytes);
      reader.pos = 0;
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    for (;;) {
      if (!final && reader.remaining < BLOCK_INPUT) return;
      if (!this.#inStream) {
        if (!this.#startStream(final)) return;
        continue;
      }
      const saved = { pos: reader.pos, bits: reader.bits, count: reader.count };
      let block: number;
      try {
        block = this.#readBlock();
      } catch (error) {
        if (!reader.overrun) throw error;
        Object.assign(reader, saved, { overrun: false });
        if (final) throw endsEarly("bzip2", "a stream");
        return;
      }
      if (block < 0) continue; // end of stream
      yield* this.#emitBlock(block);
    }
  }

  /** Skips zero padding and reads a stream header; false when the input has no more. */
  #startStream(final: boolean): boolean {
    const reader = this.#reader;
    const buffer = reader.buffer;
    let pos = reader.pos;
    while (pos < buffer.length && buffer[pos] === 0) pos++;
    reader.pos = pos;
    if (pos === buffer.length) {
      if (final && !this.#sawStream) throw endsEarly("bzip2", "the first stream");
      return false;
    }
    if (buffer.length - pos < 4) {
      if (final) throw endsEarly("bzip2", "a stream header");
      return false;
    }
    const level = buffer[pos + 3]! - 0x30;
    if (buffer[pos] !== 0x42 || buffer[pos + 1] !== 0x5a || buffer[pos + 2] !== 0x68) {
      throw damaged(
        this.#sawStream ? "bytes after a stream start no bzip2 stream" : "no bzip2 header",
      );
    }
    if (level < 1 || level > 9) throw damaged("bad block size in the stream header");
    reader.pos = pos + 4;
    reader.bits = 0;
    reader.count = 0;
    this.#blockSize = level * 100_000;
    if (this.#tt.length < this.#blockSize) this.#tt = new Int32Array(this.#blockSize);
    this.#streamCrc = 0;
    this.#inStream = true;
    this.#sawStream = true;
    return true;
  }

  /**
   * Reads one block up to the inverse-BWT input (left in `#tt`); returns the original
   * pointer packed with the symbol count, or -1 at the end of the stream.
   */
  #readBlock(): number {
    const reader = this.#reader;
    const hi = reader.read(24), lo = reader.read(24);
    if (hi === END_MAGIC_HI && lo === END_MAGIC_LO) {
      const crc = reader.read(16) * 65536 + reader.read(16);
      if (reader.overrun) throw new NeedInput();
      if (!this.#resumed && crc !== this.#streamCrc >>> 0) {
        throw damaged("stream CRC does not match");
      }
      this.#resumed = false;
      reader.align();
      // back to byte reading: give back whole loaded bytes
      reader.pos -= reader.count >> 3;
      reader.bits = 0;
      reader.count = 0;
      this.#inStream = false;
      return -1;
    }
    if (hi !== BLOCK_MAGIC_HI || lo !== BLOCK_MAGIC_LO) throw damaged("bad block header");
    this.#blockCrc = reader.read(16) * 65536 + reader.read(16);
    if (reader.read(1)) throw damaged("randomised blocks (bzip2 before 0.9.5) are not supported");
    const origPtr = reader.read(24);

    // symbol map
    const seqToUnseq = this.#seqToUnseq;
    let inUse = 0;
    const used16 = reader.read(16);
    for (let i = 0; i < 16; i++) {
      if (!(used16 & (0x8000 >> i))) continue;
      const bits = reader.read(16);
      for (let j = 0; j < 16; j++) if (bits & (0x8000 >> j)) seqToUnseq[inUse++] = i * 16 + j;
    }
    if (inUse === 0) throw damaged("block uses no symbols");
    const alphaSize = inUse + 2;

    const nGroups = reader.read(3);
    if (nGroups < 2 || nGroups > MAX_GROUPS) throw damaged("bad number of Huffman tables");
    const nSelectors = reader.read(15);
    if (nSelectors < 1) throw damaged("no selectors");
    const selectors = this.#selectors;
    const mtfGroups = [0, 1, 2, 3, 4, 5];
    for (let i = 0; i < nSelectors; i++) {
      let j = 0;
      while (reader.read(1)) {
        if (++j >= nGroups) throw damaged("bad selector");
      }
      const value = mtfGroups[j]!;
      for (; j > 0; j--) mtfGroups[j] = mtfGroups[j - 1]!;
      mtfGroups[0] = value;
      if (i < MAX_SELECTORS) selectors[i] = value;
      if (reader.overrun) throw new NeedInput();
    }
    const usedSelectors = Math.min(nSelectors, MAX_SELECTORS);

    const lengths = this.#lengths;
    for (let g = 0; g < nGroups; g++) {
      let len = reader.read(5);
      for (let s = 0; s < alphaSize; s++) {
        for (;;) {
          if (len < 1 || len > MAX_CODE_LENGTH) throw damaged("bad Huffman code length");
          if (!reader.read(1)) break;
          len += reader.read(1) ? -1 : 1;
        }
        lengths[s] = len;
      }
      buildGroup(this.#groups[g]!, lengths, alphaSize);
    }
    if (reader.overrun) throw new NeedInput();

    // Huffman + RUNA/RUNB + move-to-front decoding into tt (byte values in the low 8 bits)
    const tt = this.#tt, blockSize = this.#blockSize;
    const counts = this.#counts;
    counts.fill(0);
    const mtf = this.#mtf;
    for (let i = 0; i < 256; i++) mtf[i] = i;
    const eob = inUse + 1;
    const buffer = reader.buffer, end = buffer.length;
    const groups = this.#groups;
    let pos = reader.pos, bits = reader.bits, count = reader.count;
    let n = 0, selector = 0, left = 0, run = 0, runWeight = 1;
    let fast = groups[0]!.fast, limit = groups[0]!.limit, base = groups[0]!.base;
    let perm = groups[0]!.perm, maxLen = 0;
    try {
      for (;;) {
        if (left === 0) {
          if (selector >= usedSelectors) throw damaged("ran out of selectors");
          const group = groups[selectors[selector++]!]!;
          fast = group.fast;
          limit = group.limit;
          base = group.base;
          perm = group.perm;
          maxLen = group.maxLen;
          left = GROUP_SIZE;
        }
        left--;
        while (count < 24) {
          bits = (bits << 8) | (pos < end ? buffer[pos]! : 0);
          pos++;
          count += 8;
        }
        let sym: number;
        const entry = fast[(bits >>> (count - FAST_BITS)) & FAST_MASK]!;
        if (entry !== 0) {
          count -= entry & 31;
          sym = entry >>> 5;
        } else {
          let len = FAST_BITS + 1;
          let v = (bits >>> (count - len)) & ((1 << len) - 1);
          while (len <= maxLen && v > limit[len]!) {
            len++;
            v = (bits >>> (count - len)) & ((1 << len) - 1);
          }
          if (len > maxLen) throw damaged("bad Huffman code");
          count -= len;
          const index = v - base[len]!;
          if (index < 0 || index >= alphaSize) throw damaged("bad Huffman code");
          sym = perm[index]!;
        }
        if (sym <= 1) { // RUNA, RUNB: a run of the front symbol, length in bijective base 2
          run += runWeight << sym;
          runWeight <<= 1;
          if (run > blockSize) throw damaged("run longer than the block");
          continue;
        }
        if (run > 0) {
          if (n + run > blockSize) throw damaged("block longer than its size");
          const byte = seqToUnseq[mtf[0]!]!;
          counts[byte]! += run;
          if (run < 16) { for (const stop = n + run; n < stop;) tt[n++] = byte; }
          else {
            tt.fill(byte, n, n + run);
            n += run;
          }
          run = 0;
          runWeight = 1;
        }
        if (sym === eob) break;
        if (n >= blockSize) throw damaged("block longer than its size");
        let index = sym - 1;
        const value = mtf[index]!;
        for (; index > 0; index--) mtf[index] = mtf[index - 1]!;
        mtf[0] = value;
        const byte = seqToUnseq[value]!;
        counts[byte]!++;
        tt[n++] = byte;
      }
    } catch (error) {
      // garbage decoded from the zeros read past the end is a short input, not corruption
      if (pos > end) reader.overrun = true;
      throw error;
    }
    reader.pos = pos;
    reader.bits = bits;
    reader.count = count;
    if (pos > end) {
      reader.overrun = true;
      throw new NeedInput();
    }
    if (origPtr >= n) throw damaged("bad BWT origin pointer");

    // inverse Burrows-Wheeler: link each position to the next, in the high 24 bits of tt
    let sum = 0;
    for (let i = 0; i < 256; i++) {
      const c = counts[i]!;
      counts[i] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const byte = tt[i]! & 0xff;
      tt[counts[byte]!]! |= i << 8;
      counts[byte]!++;
    }
    return origPtr * 1_048_576 + n;
  }

  #blockCrc = 0;

  /** Undoes the BWT and the initial run-length coding of a decoded block, yielding output. */
  *#emitBlock(packed: number): Generator<Uint8Array> {
    const state = this.#unbwt;
    state.left = packed % 1_048_576;
    state.pos = this.#tt[Math.floor(packed / 1_048_576)]! >>> 8;
    state.last = -1;
    state.same = 0;
    state.crc = -1;
    const held: Uint8Array[] = [];
    while (state.left > 0) {
      const out = new Uint8Array(OUTPUT_PIECE);
      const length = unbwt(this.#tt, state, out);
      const piece = length === out.length ? out : out.subarray(0, length);
      if (this.#held) held.push(piece);
      else yield piece;
    }
    const blockCrc = ~state.crc >>> 0;
    if (blockCrc !== this.#blockCrc) throw damaged("block CRC does not match");
    yield* held;
    this.#streamCrc = (((this.#streamCrc << 1) | (this.#streamCrc >>> 31)) ^ blockCrc) >>> 0;
  }

  #unbwt: UnbwtState = { left: 0, pos: 0, last: -1, same: 0, crc: -1 };
}

/** Where the output of a block stands between two output buffers. */
interface UnbwtState {
  /** Symbols of the block not yet followed. */
  left: number;
  pos: number;
  last: number;
  same: number;
  crc: number;
}

/**
 * Follows the BWT links in `tt`, undoing bzip2's first run-length coding (four equal bytes,
 * then a count of further copies), into `out` until it is nearly full or the block ends.
 * Returns the bytes written.
 */
function unbwt(tt: Int32Array, state: UnbwtState, out: Uint8Array): number {
  let { left, pos, last, same, crc } = state;
  let o = 0;
  const stop = out.length - 256;
  while (left > 0 && o <= stop) {
    const entry = tt[pos]!;
    const byte = entry & 0xff;
    pos = entry >>> 8;
    left--;
    if (same === 4) {
      for (let k = 0; k < byte; k++) {
        out[o++] = last;
        crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ last) & 0xff]!;
      }
      same = 0;
      last = -1;
      continue;
    }
    same = byte === last ? same + 1 : 1;
    last = byte;
    out[o++] = byte;
    crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!;
  }
  state.left = left;
  state.pos = pos;
  state.last = last;
  state.same = same;
  state.crc = crc;
  return o;
}

/** Decodes bzip2: every stream of a multi-stream file, then ignores zero padding. */
export const decodeBzip2: Decoder = async function* (input) {
  const decoder = new Bzip2Decoder();
  for await (const piece of input) {
    decoder.push(piece.giveAway()); // Kept until a whole block is there.
    yield* decoder.decode(false);
  }
  yield* decoder.decode(true);
};
