/**
 * The chunks of an item as one byte stream where every chunk that does not verify (damaged,
 * missing, cut short, out of place) is replaced by zeros marked lost (see `lost.ts`), for the
 * formats where a chunk is exactly a byte range of the item's inner tar stream: formats 3 and
 * 4 without compression (and, for format 3, without encryption: see docs/salvage.md).
 *
 * A lost chunk's length is the one length every chunk but the last has. It is taken from a
 * chunk that verified, or from the damaged chunk's own size, and then checked against every
 * later chunk: verified data is never placed at an offset that is not certain.
 *
 * @module
 */

import { DamagedError, IncompleteError } from "../errors.ts";
import type { EntryQueue } from "../format/entry_queue.ts";
import { chunkEntryName, parseChunkEntry } from "../outer/mod.ts";
import { gapMarker } from "./gap.ts";
import { lostBytes, type UncheckedPlaces } from "./lost.ts";

/** How a format takes one chunk from the queue. */
export interface ChunkTaker {
  /** Whether chunks are `.enc` files (format 4) rather than a chunk and its `.hmac`. */
  enc: boolean;
  /**
   * The chunks lost before the first verified one are a break (`gap.ts`), not zeros of a
   * length: they held the item's first header (and, encrypted, its salt), so what follows is
   * placed only through the next header that is certainly the item's (`resync.ts`; the
   * uncompressed formats). Otherwise such chunks are zeros of the length they are certain to
   * have, and a missing one whose length is not certain ends the item.
   */
  startBreak?: boolean;
  /** The plaintext size of a chunk stored in an entry of `entrySize` bytes. */
  plainSize(entrySize: number): number;
  /**
   * Takes chunk `index` (the next entry) and returns its verified plaintext.
   *
   * @throws {DamagedError | IncompleteError} When it does not verify.
   */
  take(index: number): Promise<Uint8Array[]>;
}

/**
 * The item's plaintext, chunk after chunk, with lost chunks as marked zeros.
 *
 * @param places When given, told where each verified chunk after the first lies in the
 *   stream: for a format whose chunk names (so places) are not authenticated (format 3).
 *
 * @throws {DamagedError} When the place of verified data after a lost chunk is not certain.
 */
export async function* salvagedChunks(
  queue: EntryQueue,
  item: string,
  taker: ChunkTaker,
  places?: UncheckedPlaces,
): AsyncGenerator<Uint8Array> {
  const enc = taker.enc;
  const startBreak = taker.startBreak ?? false;
  /** A chunk verified: the item's stream has its start. */
  let verified = false;
  /** The break at the start was told. */
  let broken = false;
  /** Before the first verified chunk, with `startBreak`: a lost chunk is (part of) a break. */
  const startLost = function* (cause: { reason: string; chunk: string }) {
    if (!broken) yield gapMarker(cause);
    broken = true;
  };
  /** The size every chunk but the last has, once known. */
  let uniform: number | undefined;
  /** The size of the chunk before: it was not the last, so it must be `uniform`. */
  let previous: number | undefined;
  /** Where the next chunk starts in the item's stream. */
  let position = 0;
  const uncertain = (name: string) =>
    new DamagedError({
      reason: "damaged",
      action: "salvage item",
      subject: { kind: "item", name: item },
      detail:
        `its chunks up to "${name}" do not all have one size: where its data lies is not certain`,
    });
  const place = (size: number, name: string) => {
    if (previous !== undefined && previous !== uniform) throw uncertain(name);
    if (uniform !== undefined && size > uniform) throw uncertain(name);
    uniform ??= size;
    previous = size;
  };
  const missing = function* (at: number, found: string) {
    const name = chunkEntryName(item, at, enc);
    if (startBreak && !verified) return yield* startLost({ reason: "missing", chunk: name });
    if (uniform === undefined) {
      throw new IncompleteError({
        reason: "missing",
        action: "salvage item",
        subject: { kind: "item", name: item },
        detail:
          `chunk "${name}" is missing and no chunk before it tells its size (found "${found}")`,
      });
    }
    place(uniform, name);
    position += uniform;
    yield* lostBytes(uniform, { reason: "missing", chunk: name });
  };
  let index = 0;
  for (;;) {
    const entry = await queue.peek();
    if (entry === undefined) return;
    const parsed = parseChunkEntry(entry.name, enc);
    if (parsed?.item !== item) return;
    if (parsed.index < index) {
      // A chunk that belongs before (a copy, or moved back): its data has no place here.
      await queue.next();
      await entry.skip();
      continue;
    }
    for (; index < parsed.index; index++) yield* missing(index, entry.name);
    index = parsed.index + 1;
    if (parsed.hmac) {
      await queue.next();
      await entry.skip();
      yield* missing(parsed.index, entry.name);
      continue;
    }
    const stored = taker.plainSize(entry.size);
    let pieces: Uint8Array[];
    try {
      pieces = await taker.take(parsed.index);
    } catch (error) {
      if (!(error instanceof DamagedError || error instanceof IncompleteError)) throw error;
      if (startBreak && !verified) {
        yield* startLost({ reason: error.reason, chunk: entry.name });
        continue;
      }
      const next = await queue.peek();
      const more = next !== undefined && parseChunkEntry(next.name, enc)?.item === item;
      let size: number;
      if (uniform !== undefined) {
        // Not the last chunk: the one size. The last: its own size, at most the one size.
        size = more ? uniform : Math.min(stored, uniform);
      } else {
        // The first chunks are lost: the damaged chunk's own size, when the next chunk (the
        // last, or one of the same size) does not show it cut short.
        if (more && next!.size > entry.size) throw uncertain(entry.name);
        size = stored;
      }
      place(size, entry.name);
      position += size;
      yield* lostBytes(size, { reason: error.reason, chunk: entry.name });
      continue;
    }
    const size = pieces.reduce((sum, piece) => sum + piece.length, 0);
    place(size, entry.name);
    if (parsed.index > 0) places?.add(position, position + size, entry.name);
    position += size;
    verified = true;
    yield* pieces;
  }
}

export { salvagedVolumes, type SalvageProbe } from "./volumes.ts";
