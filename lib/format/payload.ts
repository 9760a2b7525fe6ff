/**
 * Decryption and decompression of an item's verified chunks into its inner tar stream, for
 * each format (spec section 9). Variants are recognised from the data: the chunk's magic bytes,
 * cross-checked with what the verified header says.
 *
 * - format 2: every chunk is one tar volume on its own: plain, gzip, `openssl enc`, gzip then
 *   `openssl enc`, or zlib over `openssl enc` (R2-beta3 `-z`); volumes are then joined.
 * - format 3: the chunks are slices of one stream: `openssl enc` over compressed tar.
 * - format 4: each chunk is decrypted on its own; the plaintexts form one compressed tar stream.
 *
 * @module
 */

import {
  type Compression,
  compressionForFilter,
  decompressStream,
  detectCompression,
} from "../compress/mod.ts";
import {
  hasOpensslMagic,
  type KdfDigest,
  OpensslDecryptStream,
  peekOpensslPlaintext,
} from "../crypto/mod.ts";
import { DamagedError, IncompleteError } from "../errors.ts";
import { mapErrors, sniff } from "../streams/mod.ts";
import { hasValidChecksum, isZeroBlock, joinVolumes, type VolumeStarts } from "../tar/mod.ts";
import { PIECE_SIZE, type VerifiedChunk } from "./chunks.ts";
import { uniformChunks } from "./chunk_sizes.ts";
import type { BackupHeader } from "./header.ts";

/** What the decoders know about the backup; `kdf` is settled by the first encrypted chunk. */
export interface PayloadContext {
  header: BackupHeader | undefined;
  passphrase: Uint8Array;
  kdf: KdfDigest | undefined;
  /** Called once when the key derivation digest has been found. */
  onKdf?: (kdf: KdfDigest) => void;
  /** Told what could not be checked (a warning for the user). */
  onUnchecked?: (message: string) => void;
}

/**
 * A stream of a verified chunk's pieces. Each piece's bytes go back to the memory budget when
 * the next one is asked for (the stage after has taken it by then), or when the stream ends
 * or is cancelled.
 */
export function piecesStream(chunk: VerifiedChunk): ReadableStream<Uint8Array> {
  let at = 0;
  let handedOut = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      chunk.release(handedOut);
      handedOut = 0;
      const piece = chunk.pieces[at];
      if (piece === undefined) {
        controller.close();
        return;
      }
      chunk.pieces[at++] = EMPTY; // The stream alone holds it now.
      handedOut = piece.length;
      controller.enqueue(piece);
    },
    cancel() {
      chunk.release(Infinity);
    },
  }, { highWaterMark: 0 });
}

const EMPTY = new Uint8Array(0);

/** A stream of the chunks' bytes, one chunk after another. */
function chunksStream(chunks: AsyncIterable<VerifiedChunk>): ReadableStream<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  let current: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (current === undefined) {
          const next = await iterator.next();
          if (next.done) {
            controller.close();
            return;
          }
          current = piecesStream(next.value).getReader();
        }
        const piece = await current.read();
        if (!piece.done) {
          controller.enqueue(piece.value);
          return;
        }
        current = undefined;
      }
    },
    async cancel(reason) {
      await current?.cancel(reason);
      await iterator.return?.();
    },
  }, { highWaterMark: 0 });
}

/** A decrypted format-4 chunk as a chunk of 4 MiB views (its memory is not budgeted). */
export function plainChunk(name: string, bytes: Uint8Array): VerifiedChunk {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += PIECE_SIZE) {
    pieces.push(bytes.subarray(at, at + PIECE_SIZE));
  }
  return { name, pieces, release() {} };
}

/** A non-zero 512-byte block with a valid tar checksum: the start of a plain tar stream. */
function isHeaderBlock(block: Uint8Array): boolean {
  return block.length === 512 && !isZeroBlock(block) && hasValidChecksum(block);
}

/** Plausible plaintext at the start of a decrypted Qubes stream: a tar header or a compressor. */
function plausiblePlaintext(head: Uint8Array): boolean {
  return isHeaderBlock(head.subarray(0, 512)) || detectCompression(head) !== undefined;
}

/**
 * Finds which key derivation digest opens this backup: MD5 (OpenSSL 1.0, which wrote every
 * format 2 and 3 backup), else SHA-256 (the OpenSSL 1.1+ default, for re-encrypted copies).
 */
async function settleKdf(ctx: PayloadContext, head: Uint8Array, what: string): Promise<KdfDigest> {
  if (ctx.kdf !== undefined) return ctx.kdf;
  const cipher = ctx.header?.cryptoAlgorithm ?? "aes-256-cbc";
  for (const digest of ["md5", "sha256"] as const) {
    const plain = await peekOpensslPlaintext(head, ctx.passphrase, digest, cipher, 32);
    if (plausiblePlaintext(plain)) {
      ctx.kdf = digest;
      ctx.onKdf?.(digest);
      return digest;
    }
  }
  throw new DamagedError(
    `Cannot decrypt "${what}": neither MD5 nor SHA-256 key derivation gives readable data`,
  );
}

async function decrypt(
  stream: ReadableStream<Uint8Array>,
  ctx: PayloadContext,
  what: string,
): Promise<ReadableStream<Uint8Array>> {
  const sniffed = await sniff(stream, 16 + 512);
  const digest = await settleKdf(ctx, sniffed.head, what);
  return sniffed.stream.pipeThrough(
    new OpensslDecryptStream({
      password: ctx.passphrase,
      digest,
      cipher: ctx.header?.cryptoAlgorithm ?? "aes-256-cbc",
    }),
  );
}

/**
 * Decodes one format-2 chunk into its tar volume.
 *
 * @param chunk The verified chunk.
 */
export async function decodeVolume(
  chunk: VerifiedChunk,
  ctx: PayloadContext,
): Promise<ReadableStream<Uint8Array>> {
  const name = chunk.name;
  const claimsEncrypted = ctx.header?.encrypted;
  const first = chunk.pieces[0] ?? EMPTY;
  let stream = piecesStream(chunk);
  let head = first.subarray(0, 16);
  // R2-beta3 `openssl enc -z`: zlib around the ciphertext (trap T6).
  if (
    claimsEncrypted !== false && !isHeaderBlock(first.subarray(0, 512)) &&
    !hasOpensslMagic(head) && detectCompression(head) === "zlib"
  ) {
    ({ head, stream } = await sniff(stream.pipeThrough(decompressStream("zlib")), 16));
    if (!hasOpensslMagic(head)) {
      throw new DamagedError(
        `Cannot decode chunk "${name}": zlib data does not hold openssl output`,
      );
    }
  }
  const encrypted = claimsEncrypted !== false && hasOpensslMagic(head);
  if (claimsEncrypted === true && !encrypted) {
    throw new DamagedError(
      `Cannot decode chunk "${name}": the header says encrypted but the chunk is not`,
    );
  }
  if (encrypted) {
    stream = await decrypt(stream, ctx, name);
    ({ head, stream } = await sniff(stream, 512));
  }
  if (detectCompression(head.subarray(0, 16)) === "gzip" && !isHeaderBlock(head.subarray(0, 512))) {
    return stream.pipeThrough(decompressStream("gzip"));
  }
  return stream;
}

/**
 * The inner tar stream of a format-2 item: each chunk decoded to a volume, volumes joined.
 *
 * @param chunks Verified chunks, in order.
 * @param starts Filled with where each volume starts, for the tar parser's continuation check.
 */
export function formatTwoTar(
  chunks: AsyncIterable<VerifiedChunk>,
  ctx: PayloadContext,
  starts?: VolumeStarts,
): ReadableStream<Uint8Array> {
  async function* volumes() {
    for await (const chunk of chunks) yield await decodeVolume(chunk, ctx);
  }
  return joinVolumes(volumes(), starts);
}

/**
 * The inner tar stream of a format-3 item: the concatenated chunks decrypted as one stream,
 * then decompressed.
 */
export async function formatThreeTar(
  item: string,
  chunks: AsyncIterable<VerifiedChunk>,
  ctx: PayloadContext,
): Promise<ReadableStream<Uint8Array>> {
  let stream = chunksStream(
    uniformChunks(
      warnUnorderable(item, chunks, ctx),
      (chunk) => chunk.pieces.reduce((sum, piece) => sum + piece.length, 0),
      (chunk) => chunk.name,
    ),
  );
  const sniffed = await sniff(stream, 16);
  stream = sniffed.stream;
  const encrypted = ctx.header?.encrypted !== false && hasOpensslMagic(sniffed.head);
  if (ctx.header?.encrypted === true && !encrypted) {
    throw new DamagedError(
      `Cannot decode item "${item}": the header says encrypted but its first chunk is not`,
    );
  }
  if (encrypted) {
    // The chunks were all verified, so a stream without valid padding at its end is a
    // stream cut short: its last chunk is missing.
    stream = mapErrors(
      await decrypt(stream, ctx, `${item}.000`),
      (error) =>
        error instanceof DamagedError && error.message.startsWith("bad decrypt")
          ? new IncompleteError(
            `Cannot decrypt item "${item}": its data does not end properly (its last chunk may be missing)`,
            { cause: error },
          )
          : error,
    );
  }
  return await decompressed(item, stream, ctx.header);
}

/**
 * Passes chunks through; from the third chunk of an uncompressed format-3 item on, tells
 * `ctx.onUnchecked` that the order of its middle chunks cannot be checked: their names are not
 * authenticated, they all have one size, and without a compressor's checksums nothing in the
 * data shows two of them swapped.
 */
async function* warnUnorderable(
  item: string,
  chunks: AsyncIterable<VerifiedChunk>,
  ctx: PayloadContext,
): AsyncGenerator<VerifiedChunk> {
  let count = 0;
  for await (const chunk of chunks) {
    if (++count === 3 && ctx.header?.compressed === false) {
      ctx.onUnchecked?.(
        `"${item}": the order of its chunks after the first cannot be checked (an uncompressed format-3 backup authenticates each chunk, not its place)`,
      );
    }
    yield chunk;
  }
}

/**
 * The inner tar stream of a format-4 item: decrypted chunks, concatenated and decompressed.
 */
export function formatFourTar(
  item: string,
  plaintexts: AsyncIterable<VerifiedChunk>,
  header: BackupHeader | undefined,
): Promise<ReadableStream<Uint8Array>> {
  return decompressed(item, chunksStream(plaintexts), header);
}

/** Decompresses a stream as its magic bytes say (or the header's filter, for weak magics). */
async function decompressed(
  item: string,
  input: ReadableStream<Uint8Array>,
  header: BackupHeader | undefined,
): Promise<ReadableStream<Uint8Array>> {
  const { head, stream } = await sniff(input, 512);
  if (head.length === 0 || isHeaderBlock(head.subarray(0, 512))) return stream;
  let kind: Compression | undefined = detectCompression(head);
  if (kind === undefined && header?.compressed && header.compressionFilter !== undefined) {
    kind = compressionForFilter(header.compressionFilter);
  }
  if (kind === undefined) {
    throw new DamagedError(`Cannot decode item "${item}": its data is neither tar nor compressed`);
  }
  return stream.pipeThrough(decompressStream(kind));
}
