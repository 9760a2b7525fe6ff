/**
 * A break of unknown length in a salvaged stream (see `compressed.ts`): where a compressed
 * item's data was lost, the length of what it decompressed to is not known, so nothing after
 * the break can be placed by its offset in the stream. A break is an empty buffer marked here
 * with why the data was lost; the bytes that follow it (if the codec could restart) are
 * placed only through a tar header found in them (see `resync.ts`).
 *
 * Format 2 (`chunks.ts`) also knows, after a lost volume, where the next member header lies
 * for certain: it marks that place with a _resume_ marker, and names the member its next
 * volume continues when that member's header was lost ({@link gapMember}).
 *
 * @module
 */

import type { LostCause } from "./lost.ts";

const GAPS = new WeakMap<ArrayBufferLike, LostCause>();
const MEMBERS = new WeakMap<ArrayBufferLike, string>();
const RESUMES = new WeakMap<ArrayBufferLike, number>();

/**
 * A break marker: an empty buffer that stands for lost data of unknown decompressed length.
 *
 * @param member A member of the item known (by name) to be lost in the break: its header was
 *   lost, and the data that follows the break is its own, which cannot be placed.
 */
export function gapMarker(cause: LostCause, member?: string): Uint8Array {
  const marker = new Uint8Array(0);
  GAPS.set(marker.buffer, cause);
  if (member !== undefined) MEMBERS.set(marker.buffer, member);
  return marker;
}

/** The member a break marker names as lost, if any. */
export function gapMember(bytes: Uint8Array): string | undefined {
  return bytes.length === 0 ? MEMBERS.get(bytes.buffer) : undefined;
}

/**
 * A resume marker (format 2): after a break, the bytes that follow start exactly at a header
 * boundary of the item's tar stream, at stream position `at` (where volume starts are counted).
 */
export function resumeMarker(at: number): Uint8Array {
  const marker = new Uint8Array(0);
  RESUMES.set(marker.buffer, at);
  return marker;
}

/** Where the bytes after a resume marker lie in the stream; undefined for other bytes. */
export function resumeAt(bytes: Uint8Array): number | undefined {
  return bytes.length === 0 ? RESUMES.get(bytes.buffer) : undefined;
}

/** Why the stream breaks here, when `bytes` is a break marker; undefined otherwise. */
export function gapCause(bytes: Uint8Array): LostCause | undefined {
  return bytes.length === 0 ? GAPS.get(bytes.buffer) : undefined;
}
