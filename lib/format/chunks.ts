/**
 * Chunk verification for formats 2 and 3: the verified chunks of one item, in order, read from
 * the outer archive. A chunk's bytes are released only after its HMAC has been checked; gaps in
 * the numbering and missing `.hmac` entries stop the read. (Format 4's chunks authenticate
 * themselves: see `format4.ts`.)
 *
 * @module
 */

import { DamagedError, IncompleteError, PassphraseError, RecoverError } from "../errors.ts";
import { chunkEntryName, type OuterEntry, parseChunkEntry, parseChunkName } from "../outer/mod.ts";
import { concat, type Piece, PiecePool } from "../streams/mod.ts";
import {
  type ChunkComparison,
  findHmacDigest,
  hexDigestsEqual,
  HMAC_FILE_MAX_SIZE,
  OffThreadHmac,
  parseHmacFile,
} from "../verify/mod.ts";
import { ByteBudget } from "./byte_budget.ts";
import { chunkEntryLimit } from "./chunk_sizes.ts";
import type { EntryQueue } from "./entry_queue.ts";
import type { ReadContext } from "./read_context.ts";

/**
 * The next entry in the queue when it is chunk `index` of `item` (formats 2-4); undefined when
 * the item has ended.
 *
 * @throws {IncompleteError} When a chunk is missing: another index, or an orphan `.hmac`.
 */
export async function nextChunkOf(
  queue: EntryQueue,
  item: string,
  index: number,
  enc: boolean,
): Promise<OuterEntry | undefined> {
  const entry = await queue.peek();
  if (entry === undefined) return undefined;
  const parsed = parseChunkEntry(entry.name, enc);
  if (parsed === undefined || parsed.item !== item) return undefined;
  if (parsed.hmac) {
    queue.tellMissing(chunkEntryName(item, parsed.index, false));
    throw new IncompleteError({
      reason: "missing",
      action: "read item",
      subject: { kind: "item", name: item },
      detail: `chunk "${entry.name.slice(0, -5)}" is missing ("${entry.name}" is there)`,
    });
  }
  if (parsed.index !== index) {
    queue.tellMissing(chunkEntryName(item, index, enc));
    throw new IncompleteError({
      reason: "missing",
      action: "read item",
      subject: { kind: "item", name: item },
      detail: `chunk "${chunkEntryName(item, index, enc)}" is missing (found "${entry.name}")`,
    });
  }
  return entry;
}

/**
 * Size of the pieces a chunk is read in: each its own (pooled) buffer, released one by one.
 * Smaller pieces cost more messages to the HMAC worker; larger ones keep more decrypted data
 * waiting between the stages (measured in docs/performance.md).
 */
export const PIECE_SIZE = 2 * 1024 * 1024;

/**
 * Chunk bytes held at once: a whole chunk (100 MiB, or 102 400 000 bytes in format 2) must be
 * verified before it is decoded.
 */
// The margin (a few pieces) lets the next chunk be read while the current one is decoded.
const CHUNK_BUDGET = 104 * 1024 * 1024;
/** Free piece buffers kept for the next reads: as many as the budget lets be read at once. */
const POOL_KEEP = CHUNK_BUDGET / PIECE_SIZE;

/** Where chunk pieces come from: a bound on the bytes held, and buffers to reuse. */
export interface ChunkMemory {
  budget: ByteBudget;
  pool: PiecePool;
  /** Largest chunk the format has: a larger one is refused before it is read. */
  maxChunkSize: number;
}

/** The chunk memory of one opened backup of `format`. */
export function chunkMemory(format: 2 | 3): ChunkMemory {
  return {
    budget: new ByteBudget(CHUNK_BUDGET),
    pool: new PiecePool(PIECE_SIZE, POOL_KEEP),
    maxChunkSize: chunkEntryLimit(format),
  };
}

/** A verified chunk, held as pieces; each piece goes back to the budget once decoded. */
export interface VerifiedChunk {
  /** The chunk's entry name (`vm5/private.img.003`). */
  name: string;
  /** Its bytes, in order, each piece a buffer of its own, owned by whoever reads the chunk. */
  pieces: Piece[];
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
 * @param ctx The passphrase (the HMAC key) and the HMAC digest, which chunk 0 settles when the
 *   backup has no header.
 * @throws {IncompleteError} For a missing chunk or `.hmac`.
 * @throws {DamagedError} For an HMAC mismatch.
 * @throws {PassphraseError} When no digest verifies a header-less backup's first chunk.
 */
export async function* hmacVerifiedChunks(
  queue: EntryQueue,
  item: string,
  ctx: ReadContext,
  memory: ChunkMemory,
): AsyncGenerator<VerifiedChunk> {
  let next = readVerifiedChunk(queue, item, 0, ctx, memory);
  /** Whether the last read's failure was thrown to the caller. */
  let thrown = false;
  try {
    for (let index = 1;; index++) {
      thrown = true;
      const chunk = await next;
      thrown = false;
      if (chunk === undefined) return;
      next = readVerifiedChunk(queue, item, index, ctx, memory);
      next.catch(() => {}); // Surfaces when awaited.
      yield chunk;
    }
  } finally {
    // The queue is shared: no read may still be going on once this item is left. A read
    // ahead that failed when the item had failed already is told by `checkRemainingChunks`.
    const pending = await next.catch((error) => {
      if (!thrown) queue.holdProblem(error);
      return undefined;
    });
    pending?.release(Infinity);
  }
}

/** Reads chunk `index` of `item` and its `.hmac`, and checks them; undefined after the last. */
export async function readVerifiedChunk(
  queue: EntryQueue,
  item: string,
  index: number,
  ctx: ReadContext,
  { budget, pool, maxChunkSize }: ChunkMemory,
): Promise<VerifiedChunk | undefined> {
  const entry = await nextChunkOf(queue, item, index, false);
  if (entry === undefined) return undefined;
  await queue.next();
  if (entry.size > maxChunkSize) {
    throw new DamagedError({
      reason: "too-large",
      action: "read chunk",
      subject: { kind: "chunk", name: entry.name },
      detail:
        `it is ${entry.size} bytes, more than the ${maxChunkSize} bytes a chunk of this format can be`,
    });
  }
  const owner = {};
  const release = (bytes: number) => budget.release(owner, bytes);
  let mac: ChunkComparison | OffThreadHmac | undefined;
  try {
    const digest = ctx.hmacDigest;
    mac = ctx.writtenChunks?.take(entry.name) ??
      (digest === undefined ? undefined : await OffThreadHmac.create(digest, ctx.passphrase));
    let pieces: Piece[] = [];
    let reading: Piece | undefined; // The piece being read into.
    await entry.readPieces(
      PIECE_SIZE,
      () => {
        const piece = reading!;
        reading = undefined;
        // The worker takes the buffer (no copy) until it hands it back with the digest.
        if (mac) mac.update(piece.giveAway());
        else pieces.push(piece);
      },
      async (bytes) => {
        await budget.reserve(owner, bytes);
        reading = pool.take(bytes);
        return reading.bytes;
      },
    );
    // Peeked first: an entry that is not the `.hmac` stays for whoever reads on.
    const hmacEntry = await queue.peek();
    if (hmacEntry === undefined || hmacEntry.name !== `${entry.name}.hmac`) {
      throw new IncompleteError({
        reason: "missing",
        action: "verify chunk",
        subject: { kind: "chunk", name: entry.name },
        detail: `"${entry.name}.hmac" is missing${hmacEntry ? ` (found "${hmacEntry.name}")` : ""}`,
      });
    }
    await queue.next();
    if (hmacEntry.size > HMAC_FILE_MAX_SIZE) {
      throw new DamagedError({
        reason: "too-large",
        action: "verify chunk",
        subject: { kind: "chunk", name: entry.name },
        detail: "its .hmac is too large",
      });
    }
    const expected = await aboutChunk(
      "verify chunk",
      entry.name,
      async () => parseHmacFile(await hmacEntry.read()),
    );
    if (mac === undefined) {
      const found = findHmacDigest(
        concat(pieces.map((piece) => piece.bytes)),
        ctx.passphrase,
        expected,
      );
      if (found === undefined) {
        throw new PassphraseError({
          reason: "wrong-passphrase",
          action: "open the backup",
          subject: { kind: "chunk", name: entry.name, inDetail: true },
          detail: `wrong passphrase or damaged "${entry.name}" (its HMAC does not match)`,
        });
      }
      ctx.settleHmacDigest(found);
    } else {
      const done = await mac.finish();
      mac = undefined; // Finished: the worker holds nothing of it any more.
      // The worker hands the buffers back as new objects: they become the pool's pieces again.
      pieces = done.pieces.map((bytes) => pool.adopt(bytes));
      if (!hexDigestsEqual(done.hex, expected)) {
        throw new DamagedError({
          reason: "hmac-mismatch",
          action: "verify chunk",
          subject: { kind: "chunk", name: entry.name },
          detail: "HMAC does not match",
        });
      }
    }
    return { name: entry.name, pieces, release };
  } catch (error) {
    mac?.discard(); // A chunk given up halfway: the worker lets go of its pieces.
    release(Infinity);
    throw error;
  }
}

/**
 * Checks what is left of the chunks of `item` (formats 2 and 3) after its read failed, and
 * tells every chunk that is damaged or missing: each remaining chunk's HMAC is checked on its
 * own (its data is not decoded), gaps in the numbering and orphan `.hmac` entries are missing
 * chunks. Takes every entry of the item.
 *
 * @param onProblem Told each damaged or missing chunk.
 */
export async function checkRemainingChunks(
  queue: EntryQueue,
  item: string,
  ctx: ReadContext,
  memory: ChunkMemory,
  onProblem: (error: RecoverError) => void,
): Promise<void> {
  const held = queue.takeHeldProblem();
  if (held instanceof DamagedError || held instanceof IncompleteError) onProblem(held);
  const { expected: from, told } = resumeIndex(queue, item, false);
  let expected = from;
  const missing = (index: number, found: string) =>
    index !== told && onProblem(
      new IncompleteError({
        reason: "missing",
        action: "read item",
        subject: { kind: "item", name: item },
        detail: `chunk "${chunkEntryName(item, index, false)}" is missing (found "${found}")`,
      }),
    );
  for (;;) {
    const entry = await queue.peek();
    if (entry === undefined) return;
    const parsed = parseChunkEntry(entry.name, false);
    if (parsed?.item !== item) return;
    for (let index = expected ?? parsed.index; index < parsed.index; index++) {
      missing(index, entry.name);
    }
    expected = parsed.index + 1;
    if (parsed.hmac) {
      missing(parsed.index, entry.name);
      await queue.next();
      await entry.skip();
      continue;
    }
    try {
      const chunk = await readVerifiedChunk(queue, item, parsed.index, ctx, memory);
      chunk?.release(Infinity);
    } catch (error) {
      if (!(error instanceof DamagedError || error instanceof IncompleteError)) throw error;
      onProblem(error);
    }
  }
}

/**
 * Where the check of the rest of `item` starts after its read failed: `expected`, the index
 * after the last chunk taken (a gap from there on is a missing chunk; undefined when no chunk
 * of the item was taken), and `told`, the chunk the failed read told missing already (see
 * `EntryQueue.toldMissing`), which is not told again.
 */
export function resumeIndex(
  queue: EntryQueue,
  item: string,
  enc: boolean,
): { expected: number | undefined; told: number | undefined } {
  const told = queue.toldMissing === undefined ? undefined : parseChunkName(queue.toldMissing, enc);
  const last = queue.lastTaken === undefined ? undefined : parseChunkEntry(queue.lastTaken, enc);
  return {
    expected: last?.item === item ? last.index + 1 : undefined,
    told: told?.item === item ? told.index : undefined,
  };
}

/**
 * Skips the chunks of `item` (and their `.hmac` entries) without verifying them.
 */
export async function skipChunks(queue: EntryQueue, item: string, enc: boolean): Promise<void> {
  for (;;) {
    const entry = await queue.peek();
    if (entry === undefined) return;
    if (parseChunkEntry(entry.name, enc)?.item !== item) return;
    await queue.next();
    await entry.skip();
  }
}

/**
 * Runs a step on chunk `name` whose errors do not know the chunk (parsing its `.hmac`,
 * decrypting it), and names the chunk in them: `Cannot <action> "<name>": <detail>`.
 */
export async function aboutChunk<T>(
  action: string,
  name: string,
  run: () => Promise<T> | T,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw error instanceof RecoverError ? error.about(action, { kind: "chunk", name }) : error;
  }
}
