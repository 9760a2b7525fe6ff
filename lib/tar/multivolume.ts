/**
 * GNU multi-volume archives (backup format 2): recognising `M` continuation headers and joining
 * decoded volumes into one ordinary tar stream (spec §8.7.3).
 *
 * @module
 */

import { BLOCK_SIZE, hasValidChecksum } from "./header.ts";

const TYPE_M = 0x4d;

/**
 * True for a GNU multi-volume continuation header: valid checksum, typeflag 'M' (magic NOT
 * required - it is all zero in M blocks).
 *
 * @param block The first 512 bytes of a volume (longer input is fine; shorter is never one).
 * @returns Whether the block is an `M` header.
 *
 * @example
 * ```ts
 * if (isContinuationHeader(volume.subarray(0, 512))) volume = volume.subarray(512);
 * ```
 */
export function isContinuationHeader(block: Uint8Array): boolean {
  return block.length >= BLOCK_SIZE && block[156] === TYPE_M && hasValidChecksum(block);
}

/**
 * Joins decoded tar volumes into one tar byte stream: for every volume after the first, a
 * leading 'M' header block is dropped (spec 8.7.3: do NOT skip its `size` bytes). Each inner
 * ReadableStream is one whole volume.
 *
 * The `M` header's name, size and offset are ignored on purpose: GNU tar truncates the name,
 * and writes inconsistent values when a sparse map spans volumes. Pieces pass through
 * unchanged except the first 512 bytes of a volume when they arrive split (copied once to be
 * inspected).
 *
 * @param volumes The volumes in order (volume 1 first).
 * @returns The joined stream, to be piped into {@link TarStream}.
 *
 * @example
 * ```ts
 * const events = joinVolumes(decodedVolumes()).pipeThrough(new TarStream());
 * ```
 */
export function joinVolumes(
  volumes: AsyncIterable<ReadableStream<Uint8Array>>,
): ReadableStream<Uint8Array> {
  return ReadableStream.from(joined(volumes));
}

async function* joined(
  volumes: AsyncIterable<ReadableStream<Uint8Array>>,
): AsyncGenerator<Uint8Array> {
  let first = true;
  for await (const volume of volumes) {
    if (first) {
      first = false;
      yield* volume;
      continue;
    }
    // Gather the volume's first block, without copying when it arrives in one piece.
    const head: Uint8Array[] = [];
    let headLength = 0;
    let lookedAtHead = false;
    for await (const piece of volume) {
      if (lookedAtHead) {
        yield piece;
        continue;
      }
      if (piece.length === 0) continue;
      head.push(piece);
      headLength += piece.length;
      if (headLength < BLOCK_SIZE) continue;
      lookedAtHead = true;
      yield* dropContinuationHeader(head);
    }
    if (!lookedAtHead) yield* head;
  }
}

/** Returns `pieces` (at least one block long in total) minus a leading `M` header. */
function dropContinuationHeader(pieces: Uint8Array[]): Uint8Array[] {
  const first = pieces[0]!;
  const block = first.length >= BLOCK_SIZE ? first.subarray(0, BLOCK_SIZE) : firstBlock(pieces);
  if (!isContinuationHeader(block)) return pieces;
  const rest: Uint8Array[] = [];
  let drop = BLOCK_SIZE;
  for (const piece of pieces) {
    if (drop >= piece.length) drop -= piece.length;
    else {
      rest.push(drop === 0 ? piece : piece.subarray(drop));
      drop = 0;
    }
  }
  return rest;
}

/** Copies the first block out of pieces that together hold at least one. */
function firstBlock(pieces: Uint8Array[]): Uint8Array {
  const block = new Uint8Array(BLOCK_SIZE);
  let at = 0;
  for (const piece of pieces) {
    const n = Math.min(piece.length, BLOCK_SIZE - at);
    block.set(piece.subarray(0, n), at);
    at += n;
    if (at === BLOCK_SIZE) break;
  }
  return block;
}
