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
 * Plausible plaintext at the start of a decrypted Qubes stream: a tar header or a compressor a
 * Qubes filter writes. Never zlib: `openssl enc -z` puts zlib around the ciphertext, not inside
 * it, and its two-byte header would pass the wrong key's random plaintext one time in 7 282
 * (a valid backup made with the SHA-256 key derivation then read with the MD5 key).
 */
export function plausiblePlaintext(head: Uint8Array): boolean {
  if (isHeaderBlock(head.subarray(0, 512))) return true;
  const kind = detectCompression(head);
  return kind !== undefined && kind !== "zlib";
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
