/**
 * A break of unknown length in a salvaged stream (see `compressed.ts`): where a compressed
 * item's data was lost, the length of what it decompressed to is not known, so nothing after
 * the break can be placed by its offset in the stream. A break is an empty buffer marked here
 * with why the data was lost; the bytes that follow it (if the codec could restart) are
 * placed only through a tar header found in them (see `resync.ts`).
 *
 * @module
 */

import type { LostCause } from "./lost.ts";

const GAPS = new WeakMap<ArrayBufferLike, LostCause>();

/** A break marker: an empty buffer that stands for lost data of unknown decompressed length. */
export function gapMarker(cause: LostCause): Uint8Array {
  const marker = new Uint8Array(0);
  GAPS.set(marker.buffer, cause);
  return marker;
}

/** Why the stream breaks here, when `bytes` is a break marker; undefined otherwise. */
export function gapCause(bytes: Uint8Array): LostCause | undefined {
  return bytes.length === 0 ? GAPS.get(bytes.buffer) : undefined;
}
