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
import { mapErrors, sniff } from "../streams/mod.ts";
import type { TarEvent } from "../tar/mod.ts";
import type { FormatReader } from "./backup.ts";
import {
  checkRemainingChunks,
  chunkMemory,
  hmacVerifiedChunks,
  readVerifiedChunk,
  type VerifiedChunk,
} from "./chunks.ts";
import { salvagedChunks } from "../salvage/chunks.ts";
import { decompressSalvaged, salvageCompression } from "../salvage/compressed.ts";
import { uniformChunks } from "./chunk_sizes.ts";
import type { EntryQueue } from "./entry_queue.ts";
import { deferred, tarEvents } from "./item_events.ts";
import { chunksStream, decompressed, decrypt } from "./payload.ts";
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
    const chunks = uniformChunks(
      warnUnorderable(
        item,
        this.#queue.reading(
          hmacVerifiedChunks(this.#queue, item, ctx, this.#memory),
          () => this.#memory.budget.releaseAll(),
        ),
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

  events(item: string): ReadableStream<TarEvent> {
    return tarEvents(item, this.plainTar(item));
  }

  salvageTar(item: string): ReadableStream<Uint8Array> | undefined {
    // A lost range is known only where a chunk is a byte range of the inner tar (or of its
    // CBC ciphertext) itself.
    // Compressed: the compressed stream is decoded up to a lost range, restarted after it
    // where it can be (lib/salvage/compressed.ts).
    const header = this.#ctx.header;
    const kind = header === undefined ? null : salvageCompression(header);
    if (kind === null) return undefined;
    const { queue, ctx, memory } = { queue: this.#queue, ctx: this.#ctx, memory: this.#memory };
    if (kind !== undefined && kind !== "bzip2") {
      ctx.unchecked(
        `"${item}": in salvage, the order of its chunks after the first cannot be checked (format 3 authenticates each chunk, not its place, and the ${kind} checksum at the end of its data is not reached)`,
      );
    }
    const cipher = opensslCipher(ctx.cipher);
    if (header!.encrypted !== false && (cipher.mode !== "cbc" || ctx.kdf === undefined)) {
      return undefined;
    }
    const chunks = queue.reading(
      salvagedChunks(queue, item, {
        enc: false,
        plainSize: (size) => size,
        async take(index) {
          const chunk = await readVerifiedChunk(queue, item, index, ctx, memory);
          chunk?.release(Infinity);
          return chunk?.pieces ?? [];
        },
      }),
      () => memory.budget.releaseAll(),
    );
    const plain = header!.encrypted === false
      ? chunks
      : cbcSalvaged(chunks, { password: ctx.passphrase, digest: ctx.kdf!, cipher, item });
    return ReadableStream.from(kind === undefined ? plain : decompressSalvaged(plain, kind));
  }
}

/** The item's stored stream decrypted, unless it is a backup written without encryption. */
async function decryptItem(
  item: string,
  input: ReadableStream<Uint8Array>,
  ctx: ReadContext,
): Promise<ReadableStream<Uint8Array>> {
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
    if (++count === 3 && ctx.header?.compressed === false) {
      ctx.unchecked(
        `"${item}": the order of its chunks after the first cannot be checked (an uncompressed format-3 backup authenticates each chunk, not its place)`,
      );
    }
    yield chunk;
  }
}
