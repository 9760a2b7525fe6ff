/**
 * Chunk verification: the verified chunks of one item, in order, read from the outer archive.
 * A chunk's bytes are released only after its HMAC (formats 2, 3) or its scrypt authentication
 * (format 4) has been checked; gaps in the numbering and missing `.hmac` entries stop the read.
 *
 * @module
 */

import { decryptScryptFile, parseScryptHeader } from "../crypto/mod.ts";
import { DamagedError, IncompleteError, PassphraseError, RecoverError } from "../errors.ts";
import type { OuterEntry } from "../outer/mod.ts";
import { concat } from "../streams/concat.ts";
import { findHmacDigest, hexDigestsEqual, OffThreadHmac, parseHmacFile } from "../verify/mod.ts";
import type { ByteBudget } from "./byte_budget.ts";
import { checkChunkEntrySize } from "./chunk_sizes.ts";
import type { ScryptPolicy } from "./scrypt_cost.ts";
import type { PiecePool } from "../streams/piece_pool.ts";
import { chunkEntryName, parseChunkName } from "../outer/mod.ts";
import type { EntryQueue } from "./entry_queue.ts";
import type { PrefetchedEntry } from "./scrypt_prefetch.ts";

/** Largest `.hmac` entry accepted (the official client's limit). */
const MAX_HMAC_SIZE = 4096;

/** How chunks are authenticated; `digest` is settled by the first chunk when not yet known. */
export interface HmacContext {
  /** node:crypto digest name, or undefined for header-less backups until qubes.xml.000 is read. */
  digest: string | undefined;
  /** The passphrase bytes (the HMAC key). */
  key: Uint8Array;
}

/** How format-4 chunks are authenticated and decrypted. */
export interface ScryptContext {
  backupId: string;
  passphrase: Uint8Array;
  /** Bounds the scrypt cost a chunk may ask for before it is authenticated. */
  policy?: ScryptPolicy;
}

/**
 * Whether the next entry in the queue is a chunk of `item` (formats 2-4), and its index.
 */
async function nextChunkOf(
  queue: EntryQueue,
  item: string,
  index: number,
  enc: boolean,
): Promise<OuterEntry | undefined> {
  const entry = await queue.peek();
  if (entry === undefined) return undefined;
  const orphanHmac = !enc && entry.name.endsWith(".hmac")
    ? parseChunkName(entry.name.slice(0, -5), false)
    : undefined;
  if (orphanHmac?.item === item) {
    throw new IncompleteError(
      `Cannot read item "${item}": chunk "${
        entry.name.slice(0, -5)
      }" is missing ("${entry.name}" is there)`,
    );
  }
  const parsed = parseChunkName(entry.name, enc);
  if (parsed === undefined || parsed.item !== item) return undefined;
  if (parsed.index !== index) {
    throw new IncompleteError(
      `Cannot read item "${item}": chunk "${
        chunkEntryName(item, index, enc)
      }" is missing (found "${entry.name}")`,
    );
  }
  return entry;
}

/**
 * Size of the pieces a chunk is read in: each its own (pooled) buffer, released one by one.
 * Smaller pieces cost more messages to the HMAC worker; larger ones keep more decrypted data
 * waiting between the stages (measured in docs/performance.md).
 */
export const PIECE_SIZE = 2 * 1024 * 1024;

/** Where chunk pieces come from: a bound on the bytes held, and buffers to reuse. */
export interface ChunkMemory {
  budget: ByteBudget;
  pool: PiecePool;
  /** Largest chunk the format has: a larger one is refused before it is read. */
  maxChunkSize: number;
}

/** A verified chunk, held as pieces; each piece goes back to the budget once decoded. */
export interface VerifiedChunk {
  /** The chunk's entry name (`vm5/private.img.003`). */
  name: string;
  /** Its bytes, in order, each piece a buffer of its own. */
  pieces: Uint8Array[];
  /** Returns `bytes` of this chunk to the memory budget. */
  release(bytes: number): void;
}

/**
 * Yields the chunks of `item` (formats 2 and 3) after checking each one's `.hmac`. The next
 * chunk is read, and its HMAC computed on another core, while the caller decodes the current
 * one; `budget` bounds how far that reading runs ahead.
 *
 * @param queue Outer entries; the next one must be chunk 0 of `item`.
 * @param item Item name (`vm5/private.img`).
 * @param ctx HMAC digest and key.
 * @throws {IncompleteError} For a missing chunk or `.hmac`.
 * @throws {DamagedError} For an HMAC mismatch.
 * @throws {PassphraseError} When no digest verifies a header-less backup's first chunk.
 */
export async function* hmacVerifiedChunks(
  queue: EntryQueue,
  item: string,
  ctx: HmacContext,
  memory: ChunkMemory,
): AsyncGenerator<VerifiedChunk> {
  let next = readVerifiedChunk(queue, item, 0, ctx, memory);
  try {
    for (let index = 1;; index++) {
      const chunk = await next;
      if (chunk === undefined) return;
      next = readVerifiedChunk(queue, item, index, ctx, memory);
      next.catch(() => {}); // Surfaces when awaited.
      yield chunk;
    }
  } finally {
    // The queue is shared: no read may still be going on once this item is left.
    const pending = await next.catch(() => undefined);
    pending?.release(Infinity);
  }
}

/** Reads chunk `index` of `item` and its `.hmac`, and checks them; undefined after the last. */
async function readVerifiedChunk(
  queue: EntryQueue,
  item: string,
  index: number,
  ctx: HmacContext,
  { budget, pool, maxChunkSize }: ChunkMemory,
): Promise<VerifiedChunk | undefined> {
  const entry = await nextChunkOf(queue, item, index, false);
  if (entry === undefined) return undefined;
  await queue.next();
  if (entry.size > maxChunkSize) {
    throw new DamagedError(
      `Cannot read chunk "${entry.name}": it is ${entry.size} bytes, more than the ${maxChunkSize} bytes a chunk of this format can be`,
    );
  }
  const owner = {};
  const release = (bytes: number) => budget.release(owner, bytes);
  let mac: OffThreadHmac | undefined;
  try {
    mac = ctx.digest === undefined ? undefined : await OffThreadHmac.create(ctx.digest, ctx.key);
    let pieces: Uint8Array[] = [];
    await entry.readPieces(
      PIECE_SIZE,
      (piece) => mac ? mac.update(piece) : void pieces.push(piece),
      async (bytes) => {
        await budget.reserve(owner, bytes);
        return pool.take(bytes);
      },
    );
    const hmacEntry = await queue.next();
    if (hmacEntry === undefined || hmacEntry.name !== `${entry.name}.hmac`) {
      throw new IncompleteError(
        `Cannot verify chunk "${entry.name}": "${entry.name}.hmac" is missing${
          hmacEntry ? ` (found "${hmacEntry.name}")` : ""
        }`,
      );
    }
    if (hmacEntry.size > MAX_HMAC_SIZE) {
      throw new DamagedError(`Cannot verify chunk "${entry.name}": its .hmac is too large`);
    }
    const expected = await withName(entry.name, async () => parseHmacFile(await hmacEntry.read()));
    if (mac === undefined) {
      const digest = findHmacDigest(concat(pieces), ctx.key, expected);
      if (digest === undefined) {
        throw new PassphraseError(
          `Cannot open the backup: wrong passphrase or damaged "${entry.name}" (its HMAC does not match)`,
        );
      }
      ctx.digest = digest;
    } else {
      const done = await mac.finish();
      mac = undefined; // Finished: the worker holds nothing of it any more.
      // The worker hands the buffers back as new objects: they stay the pool's.
      for (const piece of done.pieces) pool.adopt(piece);
      pieces = done.pieces;
      if (!hexDigestsEqual(done.hex, expected)) {
        throw new DamagedError(`Cannot verify chunk "${entry.name}": HMAC does not match`);
      }
    }
    return { name: entry.name, pieces, release };
  } catch (error) {
    mac?.discard(); // A chunk given up halfway: the worker lets go of its pieces.
    release(Infinity);
    throw error;
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
    checkChunkEntrySize(4, entry.name, entry.size);
    const data = await entry.read();
    const password = chunkPassword(ctx, entry.name);
    try {
      ctx.policy?.checkChunk(entry.name, parseScryptHeader(data));
    } catch (error) {
      throw renamed(entry.name, error, "decrypt chunk");
    }
    const early = (entry as Partial<PrefetchedEntry>).keys;
    let plain: Uint8Array;
    try {
      try {
        plain = await decryptScryptFile(data, password, early && await early);
      } catch (error) {
        // Trap T30: a chunk reported as "passphrase is incorrect" is tried once more.
        if (!(error instanceof PassphraseError)) throw error;
        plain = await decryptScryptFile(data, password);
      }
    } catch (error) {
      if (error instanceof PassphraseError) {
        throw new DamagedError(
          `Cannot decrypt chunk "${entry.name}": it was not written under this name in this backup (renamed, moved or from another backup)`,
          { cause: error },
        );
      }
      throw renamed(entry.name, error, "decrypt chunk");
    }
    yield plain;
  }
}

/**
 * Skips the chunks of `item` (and their `.hmac` entries) without verifying them.
 */
export async function skipChunks(queue: EntryQueue, item: string, enc: boolean): Promise<void> {
  for (;;) {
    const entry = await queue.peek();
    if (entry === undefined) return;
    const name = !enc && entry.name.endsWith(".hmac") ? entry.name.slice(0, -5) : entry.name;
    if (parseChunkName(name, enc)?.item !== item) return;
    await queue.next();
    await entry.skip();
  }
}

async function withName<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw renamed(name, error, "verify chunk");
  }
}

/** Puts a chunk's name into an error from a stage that did not know it. */
function renamed(name: string, error: unknown, what: string): unknown {
  if (!(error instanceof RecoverError) || error.message.includes(`"${name}`)) return error;
  const reason = error.message.replace(/^Cannot [^:]*: /, "");
  const Class = error.constructor as new (message: string, options?: ErrorOptions) => RecoverError;
  return new Class(`Cannot ${what} "${name}": ${reason}`, { cause: error });
}
