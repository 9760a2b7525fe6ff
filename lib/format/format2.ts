/**
 * Format 2 (Qubes R2, and R2-beta3 without a header; spec section 9): every chunk is one tar
 * volume on its own, stored plain, gzipped, encrypted with `openssl enc`, gzipped then
 * encrypted, or as zlib around the ciphertext (R2-beta3 `openssl enc -z`, trap T6). The
 * variant is recognised from each chunk's magic bytes, cross-checked with the header.
 *
 * The pipeline of one item:
 *
 * ```
 * hmacVerifiedChunks -> for each chunk: [zlib] -> [decrypt] -> [gunzip] -> tar volume
 *   -> joinVolumes -> (TarStream, with the volume starts) -> tarEvents
 * ```
 *
 * @module
 */

import { decompressPieces, detectCompression } from "../compress/mod.ts";
import { hasOpensslMagic } from "../crypto/mod.ts";
import { DamagedError, RecoverError } from "../errors.ts";
import { salvagedVolumes, type SalvageProbe } from "../salvage/chunks.ts";
import { givenAway, type Piece, sniff } from "../streams/mod.ts";
import { joinVolumes, type TarEvent, VolumeStarts } from "../tar/mod.ts";
import type { FormatReader } from "./backup.ts";
import {
  checkRemainingChunks,
  chunkMemory,
  hmacVerifiedChunks,
  readVerifiedChunk,
  type VerifiedChunk,
} from "./chunks.ts";
import type { EntryQueue } from "./entry_queue.ts";
import { tarEvents } from "./item_events.ts";
import { decrypt, EMPTY, isHeaderBlock, piecesStream } from "./payload.ts";
import type { ReadContext } from "./read_context.ts";

/** Reads the items of a format-2 backup. */
export class FormatTwoReader implements FormatReader {
  readonly format = 2;
  readonly encChunks = false;
  #queue: EntryQueue;
  #ctx: ReadContext;
  #memory = chunkMemory(2);

  constructor(queue: EntryQueue, ctx: ReadContext) {
    this.#queue = queue;
    this.#ctx = ctx;
  }

  plainTar(item: string, starts?: VolumeStarts): ReadableStream<Uint8Array> {
    const chunks = this.#queue.reading(
      hmacVerifiedChunks(this.#queue, item, this.#ctx, this.#memory),
      () => this.#memory.budget.releaseAll(),
    );
    const ctx = this.#ctx;
    async function* volumes() {
      for await (const chunk of chunks) yield await decodeVolume(chunk, ctx);
    }
    return joinVolumes(volumes(), starts);
  }

  /**
   * `convert`: the item's volumes as stored after decryption (a gzip member, or the tar volume
   * itself), each chunk verified, none decompressed or joined.
   */
  async *volumes(
    item: string,
  ): AsyncGenerator<{ gzip: boolean; stream: ReadableStream<Uint8Array> }> {
    const chunks = this.#queue.reading(
      hmacVerifiedChunks(this.#queue, item, this.#ctx, this.#memory),
      () => this.#memory.budget.releaseAll(),
    );
    for await (const chunk of chunks) {
      const { gzip, stream } = await decodeStoredVolume(chunk, this.#ctx);
      yield { gzip, stream: givenAway(stream) };
    }
  }

  checkRest(item: string, onProblem: (error: RecoverError) => void): Promise<void> {
    return checkRemainingChunks(this.#queue, item, this.#ctx, this.#memory, onProblem);
  }

  salvageTar(item: string, probe?: SalvageProbe): ReadableStream<Uint8Array> | undefined {
    if (probe === undefined) return undefined;
    const { queue, ctx, memory } = { queue: this.#queue, ctx: this.#ctx, memory: this.#memory };
    const decode = async (index: number) => {
      const chunk = await readVerifiedChunk(queue, item, index, ctx, memory);
      if (chunk === undefined) return new Uint8Array(0);
      try {
        const volume = await decodeVolume(chunk, ctx);
        return new Uint8Array(await new Response(volume).arrayBuffer());
      } catch (error) {
        if (error instanceof RecoverError) throw error;
        throw new DamagedError({
          reason: "damaged",
          action: "decode chunk",
          subject: { kind: "chunk", name: chunk.name },
          detail: error instanceof Error ? error.message : String(error),
        });
      } finally {
        chunk.release(Infinity);
      }
    };
    return ReadableStream.from(
      queue.reading(salvagedVolumes(queue, item, decode, probe), () => memory.budget.releaseAll()),
    );
  }

  events(item: string): ReadableStream<TarEvent> {
    // The tar parser checks each volume's continuation header where a volume starts.
    const starts = new VolumeStarts();
    return tarEvents(item, this.plainTar(item, starts), starts);
  }
}

/**
 * Decodes one format-2 chunk into its tar volume, whose bytes are given away to the tar
 * parser.
 *
 * @param chunk The verified chunk.
 */
export async function decodeVolume(
  chunk: VerifiedChunk,
  ctx: ReadContext,
): Promise<ReadableStream<Uint8Array>> {
  const { gzip, stream } = await decodeStoredVolume(chunk, ctx);
  return givenAway(gzip ? stream.pipeThrough(decompressPieces("gzip")) : stream);
}

/**
 * Decodes one format-2 chunk as far as its stored volume: a gzip member of the tar volume
 * (`gzip: true`), or the tar volume itself.
 */
async function decodeStoredVolume(
  chunk: VerifiedChunk,
  ctx: ReadContext,
): Promise<{ gzip: boolean; stream: ReadableStream<Piece> }> {
  const name = chunk.name;
  const claimsEncrypted = ctx.header?.encrypted;
  const first = chunk.pieces[0]?.bytes ?? EMPTY; // Read before the pieces are streamed.
  let stream = piecesStream(chunk);
  let head = first.subarray(0, 16);
  // R2-beta3 `openssl enc -z`: zlib around the ciphertext (trap T6).
  if (
    claimsEncrypted !== false && !isHeaderBlock(first.subarray(0, 512)) &&
    !hasOpensslMagic(head) && detectCompression(head) === "zlib"
  ) {
    ({ head, stream } = await sniff(stream.pipeThrough(decompressPieces("zlib")), 16));
    if (!hasOpensslMagic(head)) {
      throw new DamagedError({
        reason: "damaged",
        action: "decode chunk",
        subject: { kind: "chunk", name },
        detail: "zlib data does not hold openssl output",
      });
    }
  }
  const encrypted = claimsEncrypted !== false && hasOpensslMagic(head);
  if (claimsEncrypted === true && !encrypted) {
    throw new DamagedError({
      reason: "damaged",
      action: "decode chunk",
      subject: { kind: "chunk", name },
      detail: "the header says encrypted but the chunk is not",
    });
  }
  if (encrypted) {
    stream = await decrypt(stream, ctx, name);
    ({ head, stream } = await sniff(stream, 512));
  }
  // The stored volume's first bytes: what was decrypted, or the chunk itself (`head` is only
  // 16 bytes of it then, too short to be checked as a tar header).
  const start = encrypted ? head : first;
  const gzip = detectCompression(start.subarray(0, 16)) === "gzip" &&
    !isHeaderBlock(start.subarray(0, 512));
  return { gzip, stream };
}
