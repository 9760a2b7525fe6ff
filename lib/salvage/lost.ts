/**
 * Bytes that could not be verified, in a salvaged stream: they are zeros, each run in buffers
 * of its own, marked here with why they are lost. The inner tar parser hands data on as views
 * of its input (never copies), so a data event whose buffer is marked is lost data, wherever
 * in the file it lands.
 *
 * Verified bytes whose place in the stream is not authenticated (uncompressed format 3: a
 * chunk's name, so its place, is not covered by its HMAC) are marked the same way, as
 * _unchecked_: they are written, and listed apart (see `writer.ts`).
 *
 * @module
 */

/** Why a byte range is lost (the `.salvaged.json` `reason`), and the chunk that held it. */
export interface LostCause {
  reason: string;
  chunk: string;
}

const MARKS = new WeakMap<ArrayBufferLike, LostCause>();
const UNCHECKED = new WeakMap<ArrayBufferLike, LostCause>();

/** The size of the zero buffers a lost range is made of. */
const FILL_PIECE = 1024 * 1024;

/** `length` zero bytes marked lost for `cause`, in pieces of at most 1 MiB. */
export function* lostBytes(length: number, cause: LostCause): Generator<Uint8Array> {
  for (let left = length; left > 0; left -= FILL_PIECE) {
    const piece = new Uint8Array(Math.min(left, FILL_PIECE));
    MARKS.set(piece.buffer, cause);
    yield piece;
  }
}

/** Why `bytes` are lost, when they are a view of lost bytes; undefined for verified data. */
export function lostCause(bytes: Uint8Array): LostCause | undefined {
  return MARKS.get(bytes.buffer);
}

/** A copy of verified `bytes` marked as placed where nothing authenticates their place. */
export function uncheckedBytes(bytes: Uint8Array, cause: LostCause): Uint8Array {
  const copy = bytes.slice();
  UNCHECKED.set(copy.buffer, cause);
  return copy;
}

/** Why the place of `bytes` is not checked, when they are a view of such bytes. */
export function uncheckedCause(bytes: Uint8Array): LostCause | undefined {
  return UNCHECKED.get(bytes.buffer);
}

/** Stream ranges `[start, end)` of verified chunks whose place is not authenticated. */
export class UncheckedPlaces {
  readonly ranges: { start: number; end: number; chunk: string }[] = [];
  #onFirst: (() => void) | undefined;

  /** @param onFirst Called when the first range is recorded (to tell the user once). */
  constructor(onFirst?: () => void) {
    this.#onFirst = onFirst;
  }

  /** Records chunk `chunk`, placed at `[start, end)` of the item's stream. */
  add(start: number, end: number, chunk: string): void {
    if (end <= start) return;
    if (this.ranges.length === 0) this.#onFirst?.();
    this.ranges.push({ start, end, chunk });
  }
}

/**
 * Marks the bytes of `input` (a salvaged stream) that lie in one of `places` as unchecked
 * (reason `order-unchecked`, the chunk that held them); lost bytes stay lost.
 *
 * @param shift Where `input` starts in the stream `places` counts in (16 for the plaintext
 *   of an `openssl enc` stream, whose salt header it does not hold).
 */
export async function* markUnchecked(
  input: AsyncIterable<Uint8Array>,
  places: UncheckedPlaces,
  shift = 0,
): AsyncGenerator<Uint8Array> {
  let position = shift;
  let next = 0;
  for await (const piece of input) {
    const start = position;
    position += piece.length;
    // Lost bytes stay lost; a break marker (`gap.ts`) is handed on as it is.
    if (piece.length === 0 || lostCause(piece) !== undefined) {
      yield piece;
      continue;
    }
    let at = start;
    while (at < position) {
      const ranges = places.ranges;
      while (next < ranges.length && ranges[next]!.end <= at) next++;
      const range = ranges[next];
      if (range === undefined || range.start >= position) {
        yield piece.subarray(at - start);
        break;
      }
      if (range.start > at) {
        yield piece.subarray(at - start, range.start - start);
        at = range.start;
      }
      const end = Math.min(range.end, position);
      yield uncheckedBytes(piece.subarray(at - start, end - start), {
        reason: "order-unchecked",
        chunk: range.chunk,
      });
      at = end;
    }
  }
}
