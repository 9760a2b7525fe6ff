/**
 * Bytes that could not be verified, in a salvaged stream: they are zeros, each run in buffers
 * of its own, marked here with why they are lost. The inner tar parser hands data on as views
 * of its input (never copies), so a data event whose buffer is marked is lost data, wherever
 * in the file it lands.
 *
 * @module
 */

/** Why a byte range is lost (the `.salvaged.json` `reason`), and the chunk that held it. */
export interface LostCause {
  reason: string;
  chunk: string;
}

const MARKS = new WeakMap<ArrayBufferLike, LostCause>();

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
