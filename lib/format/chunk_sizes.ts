/**
 * What the formats fix about chunk sizes. Qubes cut every item into chunks of one size
 * (format 2: 102 400 000-byte tar volumes; formats 3 and 4: 104 857 600 bytes, stored in
 * format 3, plaintext in format 4); only the last is shorter (possibly empty). The chunk
 * names are not authenticated in formats 2 and 3, so this is one of the few checks on chunk
 * order that the data allows; and no chunk larger than the format's size is read into memory
 * before it is authenticated.
 *
 * @module
 */

import { DamagedError } from "../errors.ts";

/** Format 3: the stored (encrypted, compressed) bytes of one chunk, at most. */
export const FORMAT3_CHUNK_SIZE = 100 * 1024 * 1024;
/** Format 4: the plaintext of one chunk, at most (the `.enc` file adds 128 bytes). */
export const FORMAT4_CHUNK_SIZE = 100 * 1024 * 1024;
/** Format 4: the scrypt file around a chunk adds a 96-byte header and a 32-byte HMAC. */
export const SCRYPT_OVERHEAD = 128;
/** Format 2: one tar volume (`--tape-length 100000`). */
export const FORMAT2_VOLUME_SIZE = 100_000 * 1024;
/**
 * Format 2: a stored chunk is a volume, gzipped (deflate adds at most 5 bytes per 16 KiB block
 * plus a header) or encrypted (32 bytes): 1 MiB more covers every variant.
 */
export const FORMAT2_CHUNK_LIMIT = FORMAT2_VOLUME_SIZE + 1024 * 1024;

/** The largest outer entry a format's chunks can be. */
export function chunkEntryLimit(format: 2 | 3 | 4): number {
  switch (format) {
    case 2:
      return FORMAT2_CHUNK_LIMIT;
    case 3:
      return FORMAT3_CHUNK_SIZE;
    case 4:
      return FORMAT4_CHUNK_SIZE + SCRYPT_OVERHEAD;
  }
}

/** Refuses a chunk larger than its format allows, before any of it is read. */
export function checkChunkEntrySize(format: 2 | 3 | 4, name: string, size: number): void {
  const limit = chunkEntryLimit(format);
  if (size > limit) {
    throw new DamagedError({
      reason: "too-large",
      action: "read chunk",
      subject: { kind: "chunk", name },
      detail: `it is ${size} bytes, more than the ${limit} bytes a format-${format} chunk can be`,
    });
  }
}

/**
 * Passes chunks through, checking that every chunk but the last has the size of the first and
 * the last is not larger; empty chunks may follow the last (Qubes adds one when an item ends on
 * a chunk boundary, trap T12; an empty chunk holds nothing that could be out of place). A chunk
 * is known not to be the last only when the next one comes, so the error is raised then:
 * before the item ends, so nothing of it is kept.
 *
 * @param chunks The item's chunks, in order.
 * @param sizeOf Size of a chunk, as the format fixes it (stored or plaintext bytes).
 * @param nameOf The chunk's name, for messages.
 */
export async function* uniformChunks<T>(
  chunks: AsyncIterable<T>,
  sizeOf: (chunk: T) => number,
  nameOf: (chunk: T) => string,
): AsyncGenerator<T> {
  let first: number | undefined;
  let short: { name: string; size: number } | undefined;
  for await (const chunk of chunks) {
    const size = sizeOf(chunk);
    first ??= size;
    if (short !== undefined && size > 0) throw sizeError(short.name, short.size, first);
    if (size > first) throw sizeError(nameOf(chunk), size, first);
    if (size < first) short ??= { name: nameOf(chunk), size };
    yield chunk;
  }
}

function sizeError(name: string, size: number, first: number): DamagedError {
  return new DamagedError({
    reason: "out-of-place",
    action: "read chunk",
    subject: { kind: "chunk", name },
    detail:
      `it is ${size} bytes, but every chunk of its item before the last is ${first} bytes (chunks out of order or from another backup)`,
  });
}
