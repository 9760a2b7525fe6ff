/**
 * Format 4 (Qubes R4.x, spec section 10): every chunk is a Tarsnap scrypt file (`.enc`) that
 * authenticates and decrypts itself under a password binding it to its name and the backup
 * id; the plaintexts form one compressed tar stream. Key derivations are started ahead of the
 * reader (`scrypt_prefetch.ts`), bounded by the scrypt policy.
 *
 * The pipeline of one item:
 *
 * ```
 * scryptVerifiedChunks (authenticate + decrypt) -> uniformChunks -> plainChunk -> chunksStream
 *   -> decompressed -> (TarStream) -> tarEvents
 * ```
 *
 * @module
 */

import { decryptScryptFile, parseScryptHeader } from "../crypto/mod.ts";
import { DamagedError, IncompleteError, PassphraseError, type RecoverError } from "../errors.ts";
import { chunkEntryName, type OuterEntry, parseChunkName } from "../outer/mod.ts";
import { concat } from "../streams/mod.ts";
import type { TarEvent } from "../tar/mod.ts";
import type { FormatReader } from "./backup.ts";
import { aboutChunk, nextChunkOf, resumeIndex } from "./chunks.ts";
import { checkChunkEntrySize, SCRYPT_OVERHEAD, uniformChunks } from "./chunk_sizes.ts";
import { salvagedChunks } from "../salvage/chunks.ts";
import { decompressSalvaged, salvageCompression } from "../salvage/compressed.ts";
import type { EntryQueue } from "./entry_queue.ts";
import type { BackupHeader } from "./header.ts";
import { deferred, tarEvents } from "./item_events.ts";
import { chunksStream, decompressed, plainChunk } from "./payload.ts";
import type { ScryptPolicy } from "./scrypt_cost.ts";
import { type PrefetchedEntry, prefetchScryptEntries } from "./scrypt_prefetch.ts";

/** How format-4 chunks are authenticated and decrypted. */
export interface ScryptContext {
  backupId: string;
  passphrase: Uint8Array;
  /** Bounds the scrypt cost a chunk may ask for before it is authenticated. */
  policy?: ScryptPolicy;
}

/** Reads the items of a format-4 backup. */
export class FormatFourReader implements FormatReader {
  readonly format = 4;
  readonly encChunks = true;
  #queue: EntryQueue;
  #header: BackupHeader;
  #scrypt: ScryptContext;

  /**
   * Starts deriving the keys of the chunks ahead of the reader.
   *
   * @param queue The outer entries after the header.
   * @param header The verified (scrypt-authenticated) header, with the backup id.
   */
  constructor(
    queue: EntryQueue,
    header: BackupHeader,
    passphrase: Uint8Array,
    policy: ScryptPolicy,
  ) {
    this.#queue = queue;
    this.#header = header;
    const scrypt = { backupId: header.backupId ?? "", passphrase, policy };
    this.#scrypt = scrypt;
    queue.pipe((rest) =>
      prefetchScryptEntries(
        rest,
        (name) => name.endsWith(".enc") ? chunkPassword(scrypt, name) : undefined,
        undefined,
        (name, params) => policy.checkChunk(name, params),
      )
    );
  }

  plainTar(item: string): ReadableStream<Uint8Array> {
    let index = 0;
    const plaintexts = uniformChunks(
      this.#queue.reading(scryptVerifiedChunks(this.#queue, item, this.#scrypt)),
      (bytes) => bytes.length,
      () => chunkEntryName(item, index, true),
    );
    async function* chunks() {
      for await (const bytes of plaintexts) {
        yield plainChunk(chunkEntryName(item, index++, true), bytes);
      }
    }
    return deferred(() => decompressed(item, chunksStream(chunks()), this.#header));
  }

  checkRest(item: string, onProblem: (error: RecoverError) => void): Promise<void> {
    return checkRemainingEncChunks(this.#queue, item, this.#scrypt, onProblem);
  }

  events(item: string): ReadableStream<TarEvent> {
    return tarEvents(item, this.plainTar(item));
  }

  salvageTar(item: string): ReadableStream<Uint8Array> | undefined {
    // Uncompressed, a chunk is a byte range of the inner tar; compressed, of the compressed
    // stream, which is decoded up to a lost range and restarted after it where it can be.
    const kind = salvageCompression(this.#header);
    if (kind === null) return undefined;
    const { queue, scrypt } = { queue: this.#queue, scrypt: this.#scrypt };
    const chunks = queue.reading(salvagedChunks(queue, item, {
      enc: true,
      startBreak: kind === undefined,
      plainSize: (size) => size - SCRYPT_OVERHEAD,
      async take() {
        const entry = (await queue.next())!;
        return [await decryptChunkEntry(entry, scrypt)];
      },
    }));
    return ReadableStream.from(kind === undefined ? chunks : decompressSalvaged(chunks, kind));
  }
}

/** The scrypt password of a format-4 chunk: `<backup-id>!<name without .enc>!<passphrase>`. */
export function chunkPassword(ctx: ScryptContext, entryName: string): Uint8Array {
  const prefix = new TextEncoder().encode(`${ctx.backupId}!${entryName.replace(/\.enc$/, "")}!`);
  return concat([prefix, ctx.passphrase]);
}

/**
 * Yields the decrypted chunks of `item` (format 4); each `.enc` file is authenticated by its
 * scrypt HMACs, under a passphrase that binds it to its name and backup id. Keys derived
 * ahead of time (see `scrypt_prefetch.ts`) are used when the entry carries them.
 *
 * @throws {DamagedError} For a chunk that fails authentication.
 * @throws {IncompleteError} For a missing chunk.
 */
export async function* scryptVerifiedChunks(
  queue: EntryQueue,
  item: string,
  ctx: ScryptContext,
): AsyncGenerator<Uint8Array> {
  for (let index = 0;; index++) {
    const entry = await nextChunkOf(queue, item, index, true);
    if (entry === undefined) return;
    await queue.next();
    yield await decryptChunkEntry(entry, ctx);
  }
}

/**
 * Authenticates and decrypts one format-4 chunk entry (taken from the queue already).
 *
 * @throws {DamagedError} For a chunk that fails authentication.
 */
async function decryptChunkEntry(entry: OuterEntry, ctx: ScryptContext): Promise<Uint8Array> {
  checkChunkEntrySize(4, entry.name, entry.size);
  const data = await entry.read();
  const password = chunkPassword(ctx, entry.name);
  await aboutChunk(
    "decrypt chunk",
    entry.name,
    () => ctx.policy?.checkChunk(entry.name, parseScryptHeader(data)),
  );
  const early = (entry as Partial<PrefetchedEntry>).keys;
  return await aboutChunk("decrypt chunk", entry.name, async () => {
    try {
      try {
        return await decryptScryptFile(data, password, early && await early);
      } catch (error) {
        // Trap T30: a chunk reported as "passphrase is incorrect" is tried once more.
        if (!(error instanceof PassphraseError)) throw error;
        return await decryptScryptFile(data, password);
      }
    } catch (error) {
      if (!(error instanceof PassphraseError)) throw error;
      throw new DamagedError({
        reason: "out-of-place",
        action: "decrypt chunk",
        subject: { kind: "chunk", name: entry.name },
        detail:
          "it was not written under this name in this backup (renamed, moved or from another backup)",
      }, { cause: error });
    }
  });
}

/**
 * Checks what is left of the chunks of `item` after its read failed, and tells every chunk
 * that is damaged or missing: each remaining chunk is authenticated on its own, gaps in the
 * numbering are missing chunks. Takes every entry of the item.
 */
export async function checkRemainingEncChunks(
  queue: EntryQueue,
  item: string,
  ctx: ScryptContext,
  onProblem: (error: RecoverError) => void,
): Promise<void> {
  // Where the failed read stopped: a gap right after it is a missing chunk too.
  const { expected: from, told } = resumeIndex(queue, item, true);
  let expected = from;
  for (;;) {
    const entry = await queue.peek();
    const parsed = entry && parseChunkName(entry.name, true);
    if (entry === undefined || parsed?.item !== item) return;
    for (let index = expected ?? parsed.index; index < parsed.index; index++) {
      if (index === told) continue;
      onProblem(
        new IncompleteError({
          reason: "missing",
          action: "read item",
          subject: { kind: "item", name: item },
          detail: `chunk "${chunkEntryName(item, index, true)}" is missing (found "${entry.name}")`,
        }),
      );
    }
    expected = parsed.index + 1;
    await queue.next();
    try {
      await decryptChunkEntry(entry, ctx);
    } catch (error) {
      if (!(error instanceof DamagedError || error instanceof IncompleteError)) throw error;
      onProblem(error);
    }
  }
}
