/**
 * Format 3 (Qubes R3.x, spec section 9): the chunks of an item are slices of one stream,
 * `openssl enc` over compressed tar. Chunks are verified one by one, joined, then decrypted
 * and decompressed as one stream.
 *
 * The pipeline of one item:
 *
 * ```
 * hmacVerifiedChunks -> uniformChunks -> warnUnorderable -> chunksStream -> decrypt
 *   -> decompressed -> (TarStream) -> tarEvents
 * ```
 *
 * @module
 */

import { hasOpensslMagic, opensslCipher } from "../crypto/mod.ts";
import { cbcSalvaged } from "../salvage/cbc.ts";
import { DamagedError, IncompleteError, RecoverError } from "../errors.ts";
import { detectCompression } from "../compress/mod.ts";
import { mapErrors, type Piece, sniff } from "../streams/mod.ts";
import {
  BLOCK_SIZE,
  isContinuationHeader,
  readContinuationHeader,
  type TarEvent,
  type VolumeStarts,
} from "../tar/mod.ts";
import type { FormatReader } from "./backup.ts";
import {
  checkRemainingChunks,
  chunkMemory,
  hmacVerifiedChunks,
  readVerifiedChunk,
  type VerifiedChunk,
} from "./chunks.ts";
import { salvagedChunks } from "../salvage/chunks.ts";
import { markUnchecked, UncheckedPlaces } from "../salvage/lost.ts";
import { decompressSalvaged, salvageCompression } from "../salvage/compressed.ts";
import { uniformChunks } from "./chunk_sizes.ts";
import type { EntryQueue } from "./entry_queue.ts";
import { deferred, tarEvents } from "./item_events.ts";
import { chunksStream, decompressed, decrypt, isHeaderBlock } from "./payload.ts";
import { memberInItem, normaliseName } from "./item_scope.ts";
import type { ReadContext } from "./read_context.ts";

/** Reads the items of a format-3 backup. */
export class FormatThreeReader implements FormatReader {
  readonly format = 3;
  readonly encChunks = false;
  #queue: EntryQueue;
  #ctx: ReadContext;
  #memory = chunkMemory(3);

  constructor(queue: EntryQueue, ctx: ReadContext) {
    this.#queue = queue;
    this.#ctx = ctx;
  }

  plainTar(item: string): ReadableStream<Uint8Array> {
    const ctx = this.#ctx;
    const verified = this.#queue.reading(
      hmacVerifiedChunks(this.#queue, item, ctx, this.#memory),
      () => this.#memory.budget.releaseAll(),
    );
    const chunks = uniformChunks(
      warnUnorderable(
        item,
        ctx.header?.guessed ? notStandaloneVolumes(item, verified) : verified,
        ctx,
      ),
      (chunk) => chunk.pieces.reduce((sum, piece) => sum + piece.length, 0),
      (chunk) => chunk.name,
    );
    return deferred(async () => {
      const stored = chunksStream(chunks);
      const plain = await decryptItem(item, stored, ctx);
      return await decompressed(item, plain, ctx.header);
    });
  }

  checkRest(item: string, onProblem: (error: RecoverError) => void): Promise<void> {
    return checkRemainingChunks(this.#queue, item, this.#ctx, this.#memory, onProblem);
  }

  events(item: string, volumes?: VolumeStarts): ReadableStream<TarEvent> {
    // `volumes`: a converted format-2 item, its volume boundaries checked as format 2 does.
    return tarEvents(item, this.plainTar(item), volumes);
  }

  salvageTar(item: string): ReadableStream<Uint8Array> | undefined {
    // A lost range is known only where a chunk is a byte range of the inner tar (or of its
    // CBC ciphertext) itself.
    // Compressed: the compressed stream is decoded up to a lost range, restarted after it
    // where it can be (lib/salvage/compressed.ts).
    const header = this.#ctx.header;
    // A guessed header (damaged) is not salvaged: its version is not proven.
    if (header === undefined || header.guessed) return undefined;
    const kind = salvageCompression(header);
    if (kind === null) return undefined;
    const { queue, ctx, memory } = { queue: this.#queue, ctx: this.#ctx, memory: this.#memory };
    // Compressed (but bzip2, whose block CRCs check it): what the chunks after the first
    // decode to is listed as placed unchecked (lib/salvage/compressed.ts).
    const decoded = kind === undefined || kind === "bzip2"
      ? undefined
      : new UncheckedPlaces(() =>
        ctx.unchecked(
          `"${item}": the order of its chunks after the first cannot be checked (format 3 authenticates each chunk, not its place, and the ${kind} checksum at the end of its data is not reached in salvage): what they decode to is listed as unchecked`,
        )
      );
    const cipher = opensslCipher(ctx.cipher);
    if (header.encrypted !== false && (cipher.mode !== "cbc" || ctx.kdf === undefined)) {
      return undefined;
    }
    // A chunk's name, so its place, is not authenticated: the bytes of every chunk after the
    // first are listed as placed unchecked (the restore's notice, see `warnUnorderable`).
    const places = new UncheckedPlaces(() => ctx.unchecked(unorderableNotice(item)));
    const chunks = queue.reading(
      salvagedChunks(queue, item, {
        enc: false,
        startBreak: kind === undefined,
        plainSize: (size) => size,
        async take(index) {
          const chunk = await readVerifiedChunk(queue, item, index, ctx, memory);
          chunk?.release(Infinity);
          return chunk?.pieces.map((piece) => piece.giveAway()) ?? [];
        },
      }, kind === undefined ? places : decoded),
      () => memory.budget.releaseAll(),
    );
    if (kind !== undefined) {
      // Compressed: the places of the compressed stream say nothing of the decoded bytes;
      // `order` (or the notice above, or bzip2's block checks) covers them.
      const plain = header.encrypted === false
        ? chunks
        : cbcSalvaged(chunks, { password: ctx.passphrase, digest: ctx.kdf!, cipher, item });
      const order = decoded && { places: decoded, shift: header.encrypted === false ? 0 : 16 };
      return ReadableStream.from(decompressSalvaged(plain, kind, order));
    }
    if (header.encrypted === false) return ReadableStream.from(markUnchecked(chunks, places));
    const plain = cbcSalvaged(chunks, { password: ctx.passphrase, digest: ctx.kdf!, cipher, item });
    // The plaintext starts after the 16-byte salt header of the stream the places count in.
    return ReadableStream.from(markUnchecked(plain, places, 16));
  }
}

/** The item's stored stream decrypted, unless it is a backup written without encryption. */
async function decryptItem(
  item: string,
  input: ReadableStream<Piece>,
  ctx: ReadContext,
): Promise<ReadableStream<Piece>> {
  const { head, stream } = await sniff(input, 16);
  const encrypted = ctx.header?.encrypted !== false && hasOpensslMagic(head);
  if (ctx.header?.encrypted === true && !encrypted) {
    throw new DamagedError({
      reason: "damaged",
      action: "decode item",
      subject: { kind: "item", name: item },
      detail: "the header says encrypted but its first chunk is not",
    });
  }
  if (!encrypted) return stream;
  // The chunks were all verified, so a stream without valid padding at its end is a
  // stream cut short: its last chunk is missing.
  return mapErrors(
    await decrypt(stream, ctx, `${item}.000`),
    (error) =>
      error instanceof RecoverError && error.reason === "bad-padding"
        ? new IncompleteError({
          reason: "truncated",
          action: "decrypt item",
          subject: { kind: "item", name: item },
          detail: "its data does not end properly (its last chunk may be missing)",
        }, { cause: error })
        : error,
  );
}

/**
 * Passes chunks through, refusing a chunk after the first that starts like a volume of its own
 * (openssl's salt header, a compressor's magic, a GNU tar `M` continuation header): used when
 * the version 3 is only a guess (a damaged header), since format-2 volumes joined as one
 * format-3 stream would put their `M` headers (or a new key's ciphertext) into a member's data
 * while every HMAC still verifies. A format-2 backup writes every volume the same way (plain,
 * gzip, `openssl enc`, or zlib around it), so a chunk is refused only when it starts like its
 * item's first chunk: a format-3 chunk after the first starts inside one stream (ciphertext,
 * compressed data, or the item's own data, which may hold a gzip file right at a chunk
 * boundary), and any signature of another kind, as short as zlib's two bytes, would refuse a
 * valid item by chance (one ciphertext chunk in about 6 500 before this rule). An `M` header
 * counts only when it continues a member of `item`, as every format-2 volume's does: an image
 * or a dom0 home file may hold a user's own multi-volume tar, whose `M` headers are valid
 * (checksum, typeflag) and, at a chunk boundary, refused the valid item every time.
 */
async function* notStandaloneVolumes(
  item: string,
  chunks: AsyncIterable<VerifiedChunk>,
): AsyncGenerator<VerifiedChunk> {
  let startsAVolume: ((head: Uint8Array) => boolean) | undefined;
  for await (const chunk of chunks) {
    const head = chunk.pieces[0]?.bytes.subarray(0, BLOCK_SIZE) ?? new Uint8Array(0);
    if (startsAVolume === undefined) {
      startsAVolume = volumeStartLike(head, item);
    } else if (startsAVolume(head)) {
      chunk.release(Infinity);
      throw new DamagedError({
        reason: "damaged",
        action: "read item",
        subject: { kind: "chunk", name: chunk.name },
        detail:
          "it starts like a format-2 volume of its own, and the backup's header, which says the format, cannot be verified",
      });
    }
    yield chunk;
  }
}

/**
 * How a format-2 volume after `first` (the item's first chunk) would start: as `first` does
 * (openssl output, one compressor's stream, or, after plain tar, a GNU `M` continuation
 * header that continues a member of `item`); for a first chunk of no known kind, like any of
 * them.
 */
function volumeStartLike(first: Uint8Array, item: string): (head: Uint8Array) => boolean {
  const continuation = (head: Uint8Array) =>
    head.length === BLOCK_SIZE && isContinuationHeader(head) && continuesItem(head, item);
  if (hasOpensslMagic(first)) return hasOpensslMagic;
  const compression = detectCompression(first);
  if (compression !== undefined) return (head) => detectCompression(head) === compression;
  if (isHeaderBlock(first)) return continuation;
  return (head) =>
    hasOpensslMagic(head) || detectCompression(head) !== undefined || continuation(head);
}

/**
 * Whether an `M` header names a member of `item`. GNU tar cuts the name to its first 100 bytes:
 * a cut name counts when it lies in the item or is the start of the item's own name.
 */
function continuesItem(block: Uint8Array, item: string): boolean {
  const stored = readContinuationHeader(block).name;
  const name = new TextDecoder().decode(stored);
  if (memberInItem(item, name)) return true;
  return stored.length === 100 && normaliseName(item).startsWith(normaliseName(name));
}

/** The notice that the order of the chunks of uncompressed format-3 `item` is not checked. */
function unorderableNotice(item: string): string {
  return `"${item}": the order of its chunks after the first cannot be checked (an uncompressed format-3 backup authenticates each chunk, not its place)`;
}

/**
 * Passes chunks through; from the third chunk of an uncompressed format-3 item on, tells the
 * user that the order of its middle chunks cannot be checked: their names are not
 * authenticated, they all have one size, and without a compressor's checksums nothing in the
 * data shows two of them swapped.
 */
async function* warnUnorderable(
  item: string,
  chunks: AsyncIterable<VerifiedChunk>,
  ctx: ReadContext,
): AsyncGenerator<VerifiedChunk> {
  let count = 0;
  for await (const chunk of chunks) {
    if (++count === 3 && ctx.header?.compressed === false) ctx.unchecked(unorderableNotice(item));
    yield chunk;
  }
}
