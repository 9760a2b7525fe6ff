/**
 * GNU multi-volume archives (backup format 2): recognising `M` continuation headers and joining
 * decoded volumes into one ordinary tar stream (spec §8.7.3).
 *
 * @module
 */

import { DamagedError } from "../errors.ts";
import { BLOCK_SIZE, hasValidChecksum } from "./header.ts";
import { readHeaderNumber } from "./numbers.ts";

const TYPE_M = 0x4d;

/** What a volume's `M` header says: which member it continues, and where. */
export interface ContinuationHeader {
  /** The member name as stored: its first 100 bytes at most, no NUL. */
  name: Uint8Array;
  /** Stored data bytes of the member still to come. */
  size: number;
  /** Where the continued data starts (regular file: bytes written; `S`: realsize − size). */
  offset: number;
}

/** Where a volume after the first starts in the joined stream, and its `M` header if any. */
export interface VolumeStart {
  /** Byte position in the joined stream of the volume's first byte after its `M` header. */
  at: number;
  /** Volume number, 2 for the second (chunk `.001`). */
  volume: number;
  /** Its continuation header, when it starts with one. */
  continuation: ContinuationHeader | undefined;
}

/**
 * Filled by {@link joinVolumes} as it reaches each volume, before any of that volume's bytes
 * are handed on: the tar parser checks at each start that the volume continues where the
 * previous one stopped (see `TarStream`).
 */
export class VolumeStarts {
  readonly starts: VolumeStart[] = [];
}

/** Reads an `M` header's name, size and offset. */
export function readContinuationHeader(block: Uint8Array): ContinuationHeader {
  const field = block.subarray(0, 100);
  const nul = field.indexOf(0);
  return {
    name: field.slice(0, nul < 0 ? 100 : nul),
    size: readHeaderNumber(block, 124, 12, "size"),
    offset: readHeaderNumber(block, 369, 12, "offset"),
  };
}

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
 * Every volume but the last must have the first one's size, and the first must not start
 * with an `M` header (a `DamagedError` otherwise). The `M` headers are not checked here: with
 * `starts`, where each volume begins and its `M` header are recorded for a {@link TarStream}
 * given the same `starts`, which knows the member being continued (GNU tar truncates the name,
 * and writes inconsistent values when a sparse map spans volumes, Qubes issue 902). Pieces pass
 * through unchanged except the first 512 bytes of a volume when they arrive split (copied once
 * to be inspected).
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
  starts?: VolumeStarts,
): ReadableStream<Uint8Array> {
  return ReadableStream.from(joined(volumes, starts));
}

/**
 * Checks, volume by volume, what the format fixes about volume sizes: every volume but the
 * last has the size of the first (GNU tar's `--tape-length`), the last is not larger, and
 * the first does not start with an `M` header. A volume out of place (the chunk names are not
 * authenticated in format 2) mostly fails one of these or the continuation check.
 */
async function* joined(
  volumes: AsyncIterable<ReadableStream<Uint8Array>>,
  starts: VolumeStarts | undefined,
): AsyncGenerator<Uint8Array> {
  const sizes = new VolumeSizes();
  let position = 0;
  for await (const volume of volumes) {
    const number = sizes.begin();
    let size = 0;
    const onStart = (continuation: ContinuationHeader | undefined) => {
      if (number === 1 && continuation !== undefined) throw firstVolumeError(continuation);
      if (number > 1) starts?.starts.push({ at: position, volume: number, continuation });
    };
    for await (const piece of withoutContinuation(volume, onStart, (n) => size += n)) {
      position += piece.length;
      yield piece;
    }
    sizes.end(size);
  }
}

/**
 * One volume's bytes without its leading `M` header block, if it has one (`joinVolumes`, and
 * `convert`'s splice of gzip volumes). Pieces pass through unchanged except the first 512
 * bytes when they arrive split (copied once to be inspected).
 *
 * @param volume The volume's bytes.
 * @param onStart Told the volume's `M` header (undefined: none, or the volume is shorter than
 *   a block) before any of its bytes are yielded; what it throws ends the volume.
 * @param onRead Told the length of every piece read (with the `M` block): the volume's size.
 */
export async function* withoutContinuation(
  volume: AsyncIterable<Uint8Array>,
  onStart: (continuation: ContinuationHeader | undefined) => void,
  onRead?: (length: number) => void,
): AsyncGenerator<Uint8Array> {
  // Gather the volume's first block, without copying when it arrives in one piece.
  const head: Uint8Array[] = [];
  let headLength = 0;
  let lookedAtHead = false;
  for await (const piece of volume) {
    onRead?.(piece.length);
    if (lookedAtHead) {
      yield piece;
      continue;
    }
    if (piece.length === 0) continue;
    head.push(piece);
    headLength += piece.length;
    if (headLength < BLOCK_SIZE) continue;
    lookedAtHead = true;
    const { rest, continuation } = dropContinuationHeader(head);
    onStart(continuation);
    yield* rest;
  }
  if (!lookedAtHead) {
    onStart(undefined);
    yield* head;
  }
}

/**
 * GNU tar's rule for the sizes of a multi-volume archive (`--tape-length`): every volume but
 * the last has the first's size, and the last is not larger.
 */
export class VolumeSizes {
  #count = 0;
  #first = 0;
  #previous = 0;

  /** Starts the next volume and returns its number (from 1); the one before was not the last. */
  begin(): number {
    this.#count++;
    if (this.#count > 2 && this.#previous !== this.#first) {
      throw sizeError(this.#count - 1, this.#previous, this.#first);
    }
    return this.#count;
  }

  /** Ends the current volume, `size` bytes long. */
  end(size: number): void {
    if (this.#count === 1) this.#first = size;
    else if (size > this.#first) throw sizeError(this.#count, size, this.#first);
    this.#previous = size;
  }
}

/** The error for a first volume that starts with an `M` header (chunks out of order). */
export function firstVolumeError(continuation: ContinuationHeader): DamagedError {
  return new DamagedError({
    reason: "out-of-place",
    action: "read the archive",
    subject: { kind: "member", name: escapedName(continuation.name), inDetail: true },
    detail: `its first volume continues member "${
      escapedName(continuation.name)
    }" of an earlier volume (chunks out of order)`,
  });
}

/** The error for volume `volume` of `size` bytes where every volume but the last has `expected`. */
export function sizeError(volume: number, size: number, expected: number): DamagedError {
  return new DamagedError({
    reason: "out-of-place",
    action: "read the archive",
    detail: `volume ${volume} (chunk .${
      String(volume - 1).padStart(3, "0")
    }) is ${size} bytes, but every volume before the last is ${expected} bytes (chunks out of order or from another backup)`,
  });
}

/** A member name from a header, for a message: control characters escaped. */
export function escapedName(name: Uint8Array): string {
  return JSON.stringify(new TextDecoder().decode(name)).slice(1, -1);
}

/** Returns `pieces` (at least one block long in total) minus a leading `M` header. */
function dropContinuationHeader(
  pieces: Uint8Array[],
): { rest: Uint8Array[]; continuation: ContinuationHeader | undefined } {
  const first = pieces[0]!;
  const block = first.length >= BLOCK_SIZE ? first.subarray(0, BLOCK_SIZE) : firstBlock(pieces);
  if (!isContinuationHeader(block)) return { rest: pieces, continuation: undefined };
  const continuation = readContinuationHeader(block);
  const rest: Uint8Array[] = [];
  let drop = BLOCK_SIZE;
  for (const piece of pieces) {
    if (drop >= piece.length) drop -= piece.length;
    else {
      rest.push(drop === 0 ? piece : piece.subarray(drop));
      drop = 0;
    }
  }
  return { rest, continuation };
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
