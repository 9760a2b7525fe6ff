/**
 * Reading the start of a gzip member without inflating all of it, for `convert`'s splice of
 * format-2 volumes (gzip_splice.ts): the gzip header (RFC 1952 section 2.3), and a small
 * deflate decoder (RFC 1951) that decodes block after block until it reaches the start of a
 * block at or past a given output position, telling that block's exact bit position. It is a
 * plain canonical-Huffman decoder (one bit at a time, as zlib's `puff.c` does): slow per byte,
 * and used only for the first tens of KiB of each volume; the rest of the volume is never
 * decoded here.
 *
 * Also the CRC-32 of RFC 1952 with the operator that takes a known prefix out of a CRC (the
 * arithmetic of zlib's `crc32_combine`).
 *
 * @module
 */

/** Thrown when the bytes given end before the walk is done: give more. */
export class NeedMoreInput extends Error {
  constructor() {
    super("the deflate data given ends before the walk is done");
    this.name = "NeedMoreInput";
  }
}

const FTEXT_MASK = 0xe0; // reserved flag bits: must be zero
const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;

/**
 * The length of the gzip member header at the start of `bytes`.
 *
 * @returns The header length; undefined when `bytes` is not a gzip header of deflate data
 *   (wrong magic, method, reserved flags).
 * @throws {NeedMoreInput} When `bytes` ends inside the header.
 */
export function gzipHeaderLength(bytes: Uint8Array): number | undefined {
  if (bytes.length < 10) {
    if (bytes.length >= 1 && bytes[0] !== 0x1f) return undefined;
    throw new NeedMoreInput();
  }
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b || bytes[2] !== 8) return undefined;
  const flags = bytes[3]!;
  if ((flags & FTEXT_MASK) !== 0) return undefined;
  let at = 10;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new NeedMoreInput();
  };
  if (flags & FEXTRA) {
    need(2);
    at += 2 + (bytes[at]! | (bytes[at + 1]! << 8));
    need(0);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (flags & flag) {
      const nul = bytes.indexOf(0, at);
      if (nul < 0) throw new NeedMoreInput();
      at = nul + 1;
    }
  }
  if (flags & FHCRC) {
    at += 2;
    need(0);
  }
  return at;
}

const MAX_BITS = 15;
const LENGTH_BASE = [
  3,
  4,
  5,
  6,
  7,
  8,
  9,
  10,
  11,
  13,
  15,
  17,
  19,
  23,
  27,
  31,
  35,
  43,
  51,
  59,
  67,
  83,
  99,
  115,
  131,
  163,
  195,
  227,
  258,
];
const LENGTH_EXTRA = [
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  1,
  1,
  1,
  1,
  2,
  2,
  2,
  2,
  3,
  3,
  3,
  3,
  4,
  4,
  4,
  4,
  5,
  5,
  5,
  5,
  0,
];
const DIST_BASE = [
  1,
  2,
  3,
  4,
  5,
  7,
  9,
  13,
  17,
  25,
  33,
  49,
  65,
  97,
  129,
  193,
  257,
  385,
  513,
  769,
  1025,
  1537,
  2049,
  3073,
  4097,
  6145,
  8193,
  12289,
  16385,
  24577,
];
const DIST_EXTRA = [
  0,
  0,
  0,
  0,
  1,
  1,
  2,
  2,
  3,
  3,
  4,
  4,
  5,
  5,
  6,
  6,
  7,
  7,
  8,
  8,
  9,
  9,
  10,
  10,
  11,
  11,
  12,
  12,
  13,
  13,
];
/** The order code length code lengths are stored in (RFC 1951 section 3.2.7). */
export const CODE_LENGTH_ORDER = [
  16,
  17,
  18,
  0,
  8,
  7,
  9,
  6,
  10,
  5,
  11,
  4,
  12,
  3,
  13,
  2,
  14,
  1,
  15,
];

/** A canonical Huffman code: how many codes of each length, and the symbols in code order. */
interface Huffman {
  count: Uint16Array;
  symbol: Uint16Array;
}

/** Thrown for deflate data that is not valid. */
export class BadDeflate extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadDeflate";
  }
}

function huffman(lengths: ArrayLike<number>, n: number): Huffman {
  const count = new Uint16Array(MAX_BITS + 1);
  for (let s = 0; s < n; s++) count[lengths[s]!]!++;
  let left = 1;
  for (let len = 1; len <= MAX_BITS; len++) {
    left = (left << 1) - count[len]!;
    if (left < 0) throw new BadDeflate("over-subscribed code");
  }
  const offsets = new Uint16Array(MAX_BITS + 2);
  for (let len = 1; len <= MAX_BITS; len++) offsets[len + 1] = offsets[len]! + count[len]!;
  const symbol = new Uint16Array(n);
  for (let s = 0; s < n; s++) {
    const len = lengths[s]!;
    if (len !== 0) symbol[offsets[len]!++] = s;
  }
  return { count, symbol };
}

let fixedCodes: { lit: Huffman; dist: Huffman } | undefined;

function fixed(): { lit: Huffman; dist: Huffman } {
  if (fixedCodes === undefined) {
    const lengths = new Uint8Array(288);
    lengths.fill(8, 0, 144);
    lengths.fill(9, 144, 256);
    lengths.fill(7, 256, 280);
    lengths.fill(8, 280, 288);
    fixedCodes = { lit: huffman(lengths, 288), dist: huffman(new Uint8Array(30).fill(5), 30) };
  }
  return fixedCodes;
}

/** Where a walk stopped: the start of a block, or the end of the deflate data. */
export interface WalkStop {
  /** Bit position in the input (from the first byte given) of the block start or the end. */
  bit: number;
  /** Output bytes before it. */
  out: number;
  /** True when the deflate data ended (its last block decoded) before the target. */
  ended: boolean;
}

/**
 * Decodes deflate data from `start` (a bit position in `input`) block by block.
 *
 * @param input The deflate data given so far.
 * @param start The bit position of the first block.
 * @param target Stop at the first block that starts at this output position or later.
 * @param maxOut Give up (a `BadDeflate`) when the output would grow past this.
 * @returns Where it stopped, and the output before that point.
 * @throws {NeedMoreInput} When `input` ends first.
 * @throws {BadDeflate} On invalid data.
 */
export function walkDeflate(
  input: Uint8Array,
  start: number,
  target: number,
  maxOut: number,
): { stop: WalkStop; output: Uint8Array } {
  let pos = start >>> 3;
  let bitBuf = 0;
  let bitCount = 0;
  if (start & 7) {
    if (pos >= input.length) throw new NeedMoreInput();
    bitBuf = input[pos++]! >>> (start & 7);
    bitCount = 8 - (start & 7);
  }
  let out = new Uint8Array(Math.min(maxOut, Math.max(65536, target + 65536)));
  let outLen = 0;
  const bits = (need: number): number => {
    while (bitCount < need) {
      if (pos >= input.length) throw new NeedMoreInput();
      bitBuf |= input[pos++]! << bitCount;
      bitCount += 8;
    }
    const value = bitBuf & ((1 << need) - 1);
    bitBuf >>>= need;
    bitCount -= need;
    return value;
  };
  const decode = (h: Huffman): number => {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= MAX_BITS; len++) {
      code |= bits(1);
      const count = h.count[len]!;
      if (code - count < first) return h.symbol[index + (code - first)]!;
      index += count;
      first += count;
      first <<= 1;
      code <<= 1;
    }
    throw new BadDeflate("invalid code");
  };
  const room = (n: number) => {
    if (outLen + n <= out.length) return;
    if (outLen + n > maxOut) throw new BadDeflate("no block boundary within the limit");
    const grown = new Uint8Array(Math.min(maxOut, Math.max(out.length * 2, outLen + n)));
    grown.set(out.subarray(0, outLen));
    out = grown;
  };
  const bitPosition = () => pos * 8 - bitCount;
  for (;;) {
    if (outLen >= target) {
      return {
        stop: { bit: bitPosition(), out: outLen, ended: false },
        output: out.subarray(0, outLen),
      };
    }
    const last = bits(1);
    const type = bits(2);
    if (type === 0) {
      bitBuf = 0;
      bitCount = 0; // to the byte boundary
      if (pos + 4 > input.length) throw new NeedMoreInput();
      const len = input[pos]! | (input[pos + 1]! << 8);
      const nlen = input[pos + 2]! | (input[pos + 3]! << 8);
      if (len !== (~nlen & 0xffff)) throw new BadDeflate("stored block length check");
      pos += 4;
      if (pos + len > input.length) throw new NeedMoreInput();
      room(len);
      out.set(input.subarray(pos, pos + len), outLen);
      outLen += len;
      pos += len;
    } else if (type === 1 || type === 2) {
      let lit: Huffman;
      let dist: Huffman;
      if (type === 1) {
        ({ lit, dist } = fixed());
      } else {
        const nlen = bits(5) + 257;
        const ndist = bits(5) + 1;
        const ncode = bits(4) + 4;
        if (nlen > 286 || ndist > 30) throw new BadDeflate("bad counts");
        const lengths = new Uint8Array(320);
        for (let i = 0; i < ncode; i++) lengths[CODE_LENGTH_ORDER[i]!] = bits(3);
        const lencode = huffman(lengths, 19);
        lengths.fill(0);
        for (let i = 0; i < nlen + ndist;) {
          const symbol = decode(lencode);
          if (symbol < 16) {
            lengths[i++] = symbol;
            continue;
          }
          let len = 0;
          let repeat: number;
          if (symbol === 16) {
            if (i === 0) throw new BadDeflate("repeat with no first length");
            len = lengths[i - 1]!;
            repeat = 3 + bits(2);
          } else if (symbol === 17) repeat = 3 + bits(3);
          else repeat = 11 + bits(7);
          if (i + repeat > nlen + ndist) throw new BadDeflate("too many lengths");
          while (repeat-- > 0) lengths[i++] = len;
        }
        if (lengths[256] === 0) throw new BadDeflate("no end-of-block code");
        lit = huffman(lengths.subarray(0, nlen), nlen);
        dist = huffman(lengths.subarray(nlen, nlen + ndist), ndist);
      }
      for (;;) {
        const symbol = decode(lit);
        if (symbol < 256) {
          room(1);
          out[outLen++] = symbol;
        } else if (symbol === 256) {
          break;
        } else {
          const l = symbol - 257;
          if (l >= 29) throw new BadDeflate("invalid length symbol");
          const length = LENGTH_BASE[l]! + bits(LENGTH_EXTRA[l]!);
          const d = decode(dist);
          if (d >= 30) throw new BadDeflate("invalid distance symbol");
          const distance = DIST_BASE[d]! + bits(DIST_EXTRA[d]!);
          if (distance > outLen) throw new BadDeflate("distance too far back");
          room(length);
          if (distance >= length) {
            out.copyWithin(outLen, outLen - distance, outLen - distance + length);
            outLen += length;
          } else {
            for (let k = 0; k < length; k++, outLen++) out[outLen] = out[outLen - distance]!;
          }
        }
      }
    } else {
      throw new BadDeflate("invalid block type");
    }
    if (last) {
      return {
        stop: { bit: bitPosition(), out: outLen, ended: true },
        output: out.subarray(0, outLen),
      };
    }
  }
}

const CRC_POLY = 0xedb88320;
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC_POLY : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32 of gzip (RFC 1952 section 8) of `bytes`, continuing `crc`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** a * b modulo the CRC polynomial (reflected), as zlib's `multmodp`. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ CRC_POLY : b >>> 1;
  }
  return p >>> 0;
}

const X2N_TABLE = (() => {
  const table = new Uint32Array(32);
  let p = 0x40000000; // x^1
  table[0] = p;
  for (let n = 1; n < 32; n++) table[n] = p = multModP(p, p);
  return table;
})();

/** x^(n * 2^k) modulo the CRC polynomial, as zlib's `x2nmodp`. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N_TABLE[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/**
 * The CRC-32 of B, from the CRC-32 of A‖B and of A, where B is `lengthB` bytes long:
 * `crc(A‖B) = crc(A)·x^(8·|B|) ⊕ crc(B)` (zlib's `crc32_combine`, solved for `crc(B)`).
 */
export function crc32WithoutPrefix(crcWhole: number, crcPrefix: number, lengthB: number): number {
  if (crcPrefix === 0) return crcWhole >>> 0;
  return (crcWhole ^ multModP(x2nModP(lengthB, 3), crcPrefix)) >>> 0;
}
