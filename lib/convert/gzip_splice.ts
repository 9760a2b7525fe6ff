/**
 * A gzip-compressed format-2 item rewritten as one format-3 gzip stream WITHOUT inflating and
 * deflating it again (`convert`, issue 14).
 *
 * Each format-2 volume is one gzip member of one tar volume (spec section 7); the format-3
 * item is the joined tar stream (spec 8.7.3: volume 1, then every later volume without its
 * leading `M` header block), gzipped. `gzip -d`, which Qubes' restore runs, and our reader
 * read a series of gzip members as one stream (RFC 1952 section 2.2), so:
 *
 * - a volume that does not start with an `M` header (the first one, and volumes that start
 *   between members) is passed on as it is, byte for byte;
 * - a volume that starts with one keeps its compressed bytes except the start: its deflate
 *   data is decoded (deflate_walk.ts) up to the first block that starts at least 32 KiB (the
 *   deflate window) past the `M` block, so no later block refers back into the dropped bytes;
 *   the bytes between the `M` block and that block are deflated anew, followed by empty blocks
 *   that end the new part on the same bit position within a byte as the original block
 *   starts, so the original bytes from there on are kept unchanged (the one shared byte is
 *   merged); the gzip trailer gets the CRC-32 and length of the volume without the `M` block
 *   (the CRC from the original's by the arithmetic of zlib's `crc32_combine`);
 * - where that cannot be done (a volume that is not gzip, a volume whose start does not
 *   decode, no block boundary within the first 32 MiB, a volume that is one block), the volume
 *   is inflated and gzipped again, as before.
 *
 * What `restore` checks while joining volumes is checked here too, with the same errors: the
 * first volume does not continue a member, and every volume but the last is as long as the
 * first (from the gzip trailers' lengths). Where each volume starts in the joined stream, and
 * its `M` header, go into a {@link VolumeStarts}: `convert` reads the new file back with them,
 * so the tar parser checks every volume boundary exactly as `restore` does (the reading back
 * also checks every member's CRC-32 and length and every tar header).
 *
 * Memory: the first compressed bytes of a volume (256 KiB, at most 16 MiB while looking for a
 * block boundary) and their decoded bytes (at most 32 MiB).
 *
 * @module
 */

import { constants, deflateRawSync } from "node:zlib";
import { decompressStream } from "../compress/mod.ts";
import { DamagedError } from "../errors.ts";
import {
  type ContinuationHeader,
  firstVolumeError,
  isContinuationHeader,
  readContinuationHeader,
  VolumeSizes,
  VolumeStarts,
  withoutContinuation,
} from "../tar/mod.ts";
import {
  BadDeflate,
  CODE_LENGTH_ORDER,
  crc32,
  crc32WithoutPrefix,
  gzipHeaderLength,
  NeedMoreInput,
  walkDeflate,
} from "./deflate_walk.ts";
import { gzipMember } from "./pack_ops.ts";

/** The deflate window: how far back a block may refer. */
const WINDOW = 32 * 1024;
const TAR_BLOCK = 512;
/** Compressed bytes gathered first, and at most, to find the block boundary. */
const FIRST_GATHER = 256 * 1024;
const MAX_GATHER = 16 * 1024 * 1024;
/** Decoded bytes at most while looking for the block boundary. */
const MAX_WALK_OUT = 32 * 1024 * 1024;

/** One volume of a format-2 item as stored after decryption. */
export interface StoredVolume {
  /** Whether it is gzip (else it is the tar volume itself). */
  gzip: boolean;
  stream: ReadableStream<Uint8Array>;
}

/** How the volumes of the items went (for tests and the benchmark). */
export interface SpliceCounts {
  /** Volumes passed on byte for byte. */
  kept: number;
  /** Volumes whose start was re-encoded and the rest kept. */
  spliced: number;
  /** Volumes inflated and gzipped again. */
  recompressed: number;
}

/** Volume facts the item-level checks need, filled as the volume is read. */
interface VolumeFacts {
  /** Decoded bytes of the volume (with its `M` block). */
  size: number;
  continuation: ContinuationHeader | undefined;
}

/**
 * The joined tar stream of a format-2 item as gzip members, from its stored volumes.
 *
 * @param volumes The item's volumes, chunks verified and decrypted, in order.
 * @param gzip Gzips plain tar bytes (the packer's workers), for the volumes that are re-done.
 * @param starts Receives where each volume after the first starts, and its `M` header.
 * @param counts Counts the volumes by how they were handled.
 */
export async function* splicedGzipItem(
  volumes: AsyncIterable<StoredVolume>,
  gzip: (plain: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>,
  starts: VolumeStarts,
  counts?: SpliceCounts,
): AsyncGenerator<Uint8Array> {
  const sizes = new VolumeSizes();
  let position = 0;
  for await (const volume of volumes) {
    const number = sizes.begin();
    const facts: VolumeFacts = { size: 0, continuation: undefined };
    const at = position;
    /** Called once, before any of the volume's bytes are handed on. */
    const onStart = (continuation: ContinuationHeader | undefined) => {
      facts.continuation = continuation;
      if (number === 1 && continuation !== undefined) throw firstVolumeError(continuation);
      if (number > 1) starts.starts.push({ at, volume: number, continuation });
    };
    yield* volume.gzip
      ? spliceVolume(volume.stream, onStart, facts, gzip, counts)
      : gzip(withoutContinuation(volume.stream, onStart, (n) => facts.size += n));
    if (!volume.gzip && counts) counts.recompressed++;
    position += facts.size - (facts.continuation === undefined ? 0 : TAR_BLOCK);
    sizes.end(facts.size);
  }
}

/** The first `length` bytes of `pieces` (which hold at least that many), as one array. */
function joinedStart(pieces: Uint8Array[], length: number): Uint8Array {
  if (pieces[0]!.length >= length) return pieces[0]!.subarray(0, length);
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    const n = Math.min(piece.length, length - at);
    out.set(piece.subarray(0, n), at);
    at += n;
    if (at === length) break;
  }
  return out;
}

/** What to do with a gzip volume, decided from its first bytes. */
type Plan =
  | { kind: "keep"; continuation: undefined }
  | { kind: "whole"; continuation: ContinuationHeader | undefined; data: Uint8Array }
  | {
    kind: "splice";
    continuation: ContinuationHeader;
    /** The new bytes: gzip header, the re-encoded start, the merged byte. */
    start: Uint8Array;
    /** Where the kept original bytes start. */
    keepFrom: number;
    /** CRC-32 of the dropped `M` block. */
    droppedCrc: number;
  };

function planVolume(head: Uint8Array, complete: boolean): Plan {
  const headerLength = gzipHeaderLength(head);
  if (headerLength === undefined) throw new BadDeflate("not a gzip member");
  const { stop, output } = walkDeflate(head, headerLength * 8, TAR_BLOCK + WINDOW, MAX_WALK_OUT);
  if (!stop.ended && output.length < TAR_BLOCK) throw new BadDeflate("short walk");
  const first = output.subarray(0, TAR_BLOCK);
  const continuation = output.length >= TAR_BLOCK && isContinuationHeader(first)
    ? readContinuationHeader(first)
    : undefined;
  if (stop.ended) {
    // The whole member was decoded: check it against its trailer, then gzip it anew.
    const trailerAt = (stop.bit + 7) >>> 3;
    if (!complete || head.length !== trailerAt + 8) {
      if (!complete && head.length < trailerAt + 8) throw new NeedMoreInput();
      throw new BadDeflate("more data after the member"); // several members: inflate them
    }
    const view = new DataView(head.buffer, head.byteOffset + trailerAt, 8);
    if (view.getUint32(0, true) !== crc32(output) || view.getUint32(4, true) !== output.length) {
      throw new BadDeflate("the member does not match its trailer");
    }
    return { kind: "whole", continuation, data: output };
  }
  if (continuation === undefined) return { kind: "keep", continuation };
  const shift = stop.bit & 7;
  const start = new Uint8Array(headerLength);
  start.set(head.subarray(0, headerLength));
  const body = reencodedStart(
    output.subarray(TAR_BLOCK, stop.out),
    shift,
    head[stop.bit >>> 3] ?? 0,
  );
  const joined = new Uint8Array(start.length + body.length);
  joined.set(start);
  joined.set(body, start.length);
  return {
    kind: "splice",
    continuation,
    start: joined,
    keepFrom: (stop.bit >>> 3) + (shift === 0 ? 0 : 1),
    droppedCrc: crc32(first),
  };
}

/** Deflate bits written from the least significant bit of each byte on (RFC 1951 3.1.1). */
class BitWriter {
  #bytes: number[] = [];
  #buffer = 0;
  #count = 0;

  get bitOffset(): number {
    return this.#count;
  }

  write(value: number, bits: number): void {
    this.#buffer |= value << this.#count;
    this.#count += bits;
    while (this.#count >= 8) {
      this.#bytes.push(this.#buffer & 0xff);
      this.#buffer >>>= 8;
      this.#count -= 8;
    }
  }

  /** A non-final fixed-Huffman block with no data: 10 bits. */
  emptyFixedBlock(): void {
    this.write(0, 1); // BFINAL 0
    this.write(1, 2); // BTYPE 01
    this.write(0, 7); // end of block: code 256 is 0000000
  }

  /**
   * A non-final dynamic-Huffman block with no data: 95 bits (7 modulo 8). Every code is
   * complete, as GNU gzip's inflate requires: code lengths 1 and 18 (one bit each), literal 0
   * and end-of-block (one bit each), distance codes 0 and 1 (one bit each).
   */
  emptyDynamicBlock(): void {
    this.write(0, 1); // BFINAL 0
    this.write(2, 2); // BTYPE 10
    this.write(0, 5); // HLIT: 257 codes
    this.write(1, 5); // HDIST: 2 codes
    this.write(15, 4); // HCLEN: 19 code length codes
    for (const symbol of CODE_LENGTH_ORDER) this.write(symbol === 1 || symbol === 18 ? 1 : 0, 3);
    // Code length code: symbol 1 is "0", symbol 18 is "1".
    this.write(0, 1); // literal 0: length 1
    this.write(1, 1); // 18: 138 zeros (literals 1-138)
    this.write(138 - 11, 7);
    this.write(1, 1); // 18: 117 zeros (literals 139-255)
    this.write(117 - 11, 7);
    this.write(0, 1); // end of block (256): length 1
    this.write(0, 1); // distance 0: length 1
    this.write(0, 1); // distance 1: length 1
    // Literal/length code: literal 0 is "0", end-of-block "1".
    this.write(1, 1);
  }

  /** The bytes; a partial last byte is completed with the high bits of `next`. */
  finish(next: number): Uint8Array {
    if (this.#count > 0) {
      this.#bytes.push(
        (this.#buffer & ((1 << this.#count) - 1)) | (next & (0xff << this.#count) & 0xff),
      );
    }
    return Uint8Array.from(this.#bytes);
  }
}

/**
 * `data` as non-final deflate blocks that end `shift` bits into a byte, the last byte merged
 * with `next` (the original byte whose high bits start the kept blocks).
 */
export function reencodedStart(data: Uint8Array, shift: number, next: number): Uint8Array {
  // A sync flush ends on a byte boundary with an empty stored block, not marked final.
  const body = deflateRawSync(data, { level: 1, finishFlush: constants.Z_SYNC_FLUSH });
  const tail = new BitWriter();
  if (shift & 1) tail.emptyDynamicBlock();
  while (tail.bitOffset !== shift) tail.emptyFixedBlock();
  const end = tail.finish(next);
  const out = new Uint8Array(body.length + end.length);
  out.set(body);
  out.set(end, body.length);
  return out;
}

/** One gzip volume as gzip members of its bytes after the `M` block. */
async function* spliceVolume(
  stream: ReadableStream<Uint8Array>,
  onStart: (continuation: ContinuationHeader | undefined) => void,
  facts: VolumeFacts,
  gzip: (plain: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>,
  counts: SpliceCounts | undefined,
): AsyncGenerator<Uint8Array> {
  const reader = stream[Symbol.asyncIterator]();
  const gathered: Uint8Array[] = [];
  let gatheredLength = 0;
  let complete = false;
  let plan: Plan | undefined;
  for (let want = FIRST_GATHER;; want *= 4) {
    while (!complete && gatheredLength < want) {
      const next = await reader.next();
      if (next.done) complete = true;
      else if (next.value.length > 0) {
        gathered.push(next.value);
        gatheredLength += next.value.length;
      }
    }
    try {
      plan = planVolume(joinedStart(gathered, gatheredLength), complete);
      break;
    } catch (error) {
      if (!(error instanceof NeedMoreInput || error instanceof BadDeflate)) throw error;
      if (error instanceof BadDeflate || complete || want >= MAX_GATHER) break;
    }
  }
  async function* all(): AsyncGenerator<Uint8Array> {
    yield* gathered.splice(0);
    for (;;) {
      const next = await reader.next();
      if (next.done) return;
      yield next.value;
    }
  }
  if (plan === undefined) {
    // Inflated as restore does (its errors for a damaged member), then gzipped again.
    if (counts) counts.recompressed++;
    const plain = ReadableStream.from(all()).pipeThrough(decompressStream("gzip"));
    yield* gzip(withoutContinuation(plain, onStart, (n) => facts.size += n));
    return;
  }
  onStart(plan.continuation);
  if (plan.kind === "whole") {
    if (counts) counts.recompressed++;
    facts.size = plan.data.length;
    yield gzipMember(plan.data.subarray(plan.continuation === undefined ? 0 : TAR_BLOCK));
    return;
  }
  const skip = plan.kind === "splice" ? plan.keepFrom : 0;
  if (plan.kind === "splice") yield plan.start;
  // The original bytes from `skip` on, the last 8 (the trailer) held back.
  let skipped = 0;
  let tail = new Uint8Array(0);
  for await (let piece of all()) {
    if (skipped < skip) {
      const n = Math.min(skip - skipped, piece.length);
      skipped += n;
      piece = piece.subarray(n);
    }
    if (piece.length === 0) continue;
    if (piece.length >= 8) {
      if (tail.length > 0) yield tail;
      yield piece.subarray(0, piece.length - 8);
      tail = piece.slice(piece.length - 8);
    } else {
      const both = new Uint8Array(tail.length + piece.length);
      both.set(tail);
      both.set(piece, tail.length);
      if (both.length > 8) yield both.subarray(0, both.length - 8);
      tail = both.slice(Math.max(0, both.length - 8));
    }
  }
  if (tail.length < 8) {
    throw new DamagedError({
      reason: "damaged",
      action: "read the archive",
      detail: "a volume's gzip data ends without its trailer",
    });
  }
  const trailer = new DataView(tail.buffer, tail.byteOffset, 8);
  const crc = trailer.getUint32(0, true);
  const size = trailer.getUint32(4, true);
  facts.size = size;
  if (plan.kind === "keep") {
    if (counts) counts.kept++;
    yield tail;
    return;
  }
  if (counts) counts.spliced++;
  const kept = size - TAR_BLOCK;
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, crc32WithoutPrefix(crc, plan.droppedCrc, kept), true);
  view.setUint32(4, kept >>> 0, true);
  yield out;
}
