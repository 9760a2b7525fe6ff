/**
 * The decoding stages the format modules chain after their verified chunks (spec section 9):
 * a chunk as a stream of its pieces, chunks joined into one stream, `openssl enc` decryption
 * (its key derivation settled by the first chunk), and decompression chosen by magic bytes.
 * Which stages a format uses, in which order, is written in its module (`format2.ts`,
 * `format3.ts`, `format4.ts`).
 *
 * @module
 */

import {
  type Compression,
  compressionForFilter,
  decompressPieces,
  detectCompression,
} from "../compress/mod.ts";
import { type KdfDigest, opensslDecryptPieces, peekOpensslPlaintext } from "../crypto/mod.ts";
import { DamagedError } from "../errors.ts";
import { givenAway, Piece, sniff } from "../streams/mod.ts";
import { hasValidChecksum, isZeroBlock } from "../tar/mod.ts";
import { PIECE_SIZE, type VerifiedChunk } from "./chunks.ts";
import type { BackupHeader } from "./header.ts";
import type { ReadContext } from "./read_context.ts";

/**
 * A stream of a verified chunk's pieces, each handed over to the stage that reads it. Each
 * piece's bytes go back to the memory budget when the next one is asked for (the stage after
 * has taken it by then), or when the stream ends or is cancelled.
 */
export function piecesStream(chunk: VerifiedChunk): ReadableStream<Piece> {
  return ReadableStream.from(piecesOf(chunk));
}

/** The pull source of {@linkcode piecesStream} (pull sources are generators, read lazily). */
function* piecesOf(chunk: VerifiedChunk): Generator<Piece> {
  try {
    for (let at = 0; at < chunk.pieces.length; at++) {
      const piece = chunk.pieces[at]!;
      const length = piece.length;
      chunk.pieces[at] = TAKEN; // The generator alone holds it now...
      yield piece.handOver(); // ...until the next stage takes it.
      chunk.release(length); // Asked for the next one: the last one has been taken.
    }
  } finally {
    chunk.release(Infinity); // Ended or given up: nothing of the chunk is held any more.
  }
}

/** An empty byte array. */
export const EMPTY = new Uint8Array(0);

/** Placeholder for a piece taken out of its chunk (never read or recycled). */
const TAKEN = Piece.from(EMPTY);

/** A stream of the chunks' pieces, one chunk after another. */
export function chunksStream(chunks: AsyncIterable<VerifiedChunk>): ReadableStream<Piece> {
  return ReadableStream.from(chunkPieces(chunks));
}

async function* chunkPieces(chunks: AsyncIterable<VerifiedChunk>): AsyncGenerator<Piece> {
  for await (const chunk of chunks) yield* piecesOf(chunk);
}

/**
 * A decrypted format-4 chunk as a chunk of 4 MiB parts of one plain piece (its memory is not
 * budgeted, and recycling leaves it to the collector).
 */
export function plainChunk(name: string, bytes: Uint8Array): VerifiedChunk {
  const whole = Piece.from(bytes);
  const pieces: Piece[] = [];
  for (let at = 0; at < bytes.length; at += PIECE_SIZE) {
    pieces.push(whole.part(at, Math.min(at + PIECE_SIZE, bytes.length)));
  }
  return { name, pieces, release() {} };
}

/** A non-zero 512-byte block with a valid tar checksum: the start of a plain tar stream. */
export function isHeaderBlock(block: Uint8Array): boolean {
  return block.length === 512 && !isZeroBlock(block) && hasValidChecksum(block);
}

/**
 * Plausible plaintext at the start of a decrypted Qubes stream: a tar header or the stream
 * header of a compressor a Qubes filter writes, checked beyond its magic (the wrong key's
 * random plaintext passes the magic alone one time in about 8 million for gzip's three bytes
 * and as often for lzma's, and the backup is then read with the wrong key and refused). Never
 * zlib: `openssl enc -z` puts zlib around the ciphertext, not inside it, and its two-byte
 * header passed random data one time in 7 282.
 */
export function plausiblePlaintext(head: Uint8Array): boolean {
  if (isHeaderBlock(head.subarray(0, 512))) return true;
  const kind = detectCompression(head);
  return kind !== undefined && kind !== "zlib" && STREAM_HEADER_CHECKS[kind](head);
}

const BZIP2_BLOCK = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
const BZIP2_END = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90];

/**
 * What each compressor's stream header holds after its magic, as every writer of it sets it
 * (the chance that random bytes pass both the magic and this, at most 2^-33, is noted beside each).
 */
const STREAM_HEADER_CHECKS: Record<Exclude<Compression, "zlib">, (head: Uint8Array) => boolean> = {
  // RFC 1952: reserved flag bits zero; XFL 0, 2 (best) or 4 (fastest). 2^-24 · 2^-3 · 3/256.
  gzip: (head) => ((head[3] ?? 0) & 0xe0) === 0 && [0, 2, 4].includes(head[8] ?? 0),
  // A block (pi) or, for empty input, the end of stream (sqrt pi) follows `BZh` and the level.
  bzip2: (head) => startsAt(head, 4, BZIP2_BLOCK) || startsAt(head, 4, BZIP2_END),
  // Stream flags: a zero byte, then the check type (none, CRC32, CRC64, SHA-256).
  xz: (head) => head[6] === 0 && [0x00, 0x01, 0x04, 0x0a].includes(head[7] ?? -1),
  // The frame header descriptor's reserved bit is zero. 2^-33.
  zstd: (head) => ((head[4] ?? 0) & 0x08) === 0,
  // lzma-alone: the uncompressed size is unknown (eight 0xFF bytes, what a pipe gives) or
  // below 2^48 bytes. 2^-24 · (2^-64 + 2^-16).
  lzma: (head) =>
    head.length >= 13 && (head.subarray(5, 13).every((b) => b === 0xff) ||
      (head[11] === 0 && head[12] === 0)),
};

function startsAt(head: Uint8Array, at: number, bytes: readonly number[]): boolean {
  return head.length >= at + bytes.length && bytes.every((b, i) => head[at + i] === b);
}

/**
 * Finds which key derivation digest opens this backup: MD5 (OpenSSL 1.0, which wrote every
 * format 2 and 3 backup), else SHA-256 (the OpenSSL 1.1+ default, for re-encrypted copies).
 */
async function settleKdf(ctx: ReadContext, head: Uint8Array, what: string): Promise<KdfDigest> {
  if (ctx.kdf !== undefined) return ctx.kdf;
  for (const digest of ["md5", "sha256"] as const) {
    const plain = await peekOpensslPlaintext(head, ctx.passphrase, digest, ctx.cipher, 32);
    if (plausiblePlaintext(plain)) {
      ctx.settleKdf(digest);
      return digest;
    }
  }
  throw new DamagedError({
    reason: "damaged",
    action: "decrypt",
    subject: { kind: "chunk", name: what },
    detail: "neither MD5 nor SHA-256 key derivation gives readable data",
  });
}

/**
 * `openssl enc` decryption of a stream, under the key derivation the first encrypted chunk
 * settles.
 *
 * @param what The chunk or item named in an error.
 */
export async function decrypt(
  stream: ReadableStream<Piece>,
  ctx: ReadContext,
  what: string,
): Promise<ReadableStream<Piece>> {
  const sniffed = await sniff(stream, 16 + 512);
  const digest = await settleKdf(ctx, sniffed.head, what);
  return sniffed.stream.pipeThrough(
    opensslDecryptPieces({ password: ctx.passphrase, digest, cipher: ctx.cipher }),
  );
}

/**
 * Decompresses a stream as its magic bytes say (or the header's filter, for weak magics), and
 * gives the pieces away to the tar parser, which reads the bytes and never recycles them.
 */
export async function decompressed(
  item: string,
  input: ReadableStream<Piece>,
  header: BackupHeader | undefined,
): Promise<ReadableStream<Uint8Array>> {
  const { head, stream } = await sniff(input, 512);
  if (head.length === 0 || isHeaderBlock(head.subarray(0, 512))) return givenAway(stream);
  let kind: Compression | undefined = detectCompression(head);
  if (kind === undefined && header?.compressed && header.compressionFilter !== undefined) {
    kind = compressionForFilter(header.compressionFilter);
  }
  if (kind === undefined) {
    throw new DamagedError({
      reason: "damaged",
      action: "decode item",
      subject: { kind: "item", name: item },
      detail: "its data is neither tar nor compressed",
    });
  }
  return givenAway(stream.pipeThrough(decompressPieces(kind)));
}
