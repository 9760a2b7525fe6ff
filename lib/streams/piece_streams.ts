/**
 * Where pieces leave the stages that own them: a stream of {@linkcode Piece}s turned into the
 * plain bytes a reader borrows (the tar parser, salvage), which never recycles them.
 *
 * @module
 */

import { Piece } from "./piece_pool.ts";

/**
 * The bytes of `pieces`, each piece given away ({@linkcode Piece.giveAway}): the reader
 * borrows the bytes and leaves their buffers to the collector. Read lazily, one piece per read.
 *
 * @example
 * ```ts
 * const tar = givenAway(decrypted.pipeThrough(decompressPieces("gzip")));
 * ```
 */
export function givenAway(pieces: ReadableStream<Piece>): ReadableStream<Uint8Array> {
  return ReadableStream.from(bytesOf(pieces));
}

async function* bytesOf(pieces: ReadableStream<Piece>): AsyncGenerator<Uint8Array> {
  for await (const piece of pieces) yield piece.giveAway();
}

/** Borrowed bytes as plain pieces (recycling one leaves its bytes to the collector). */
export async function* asPieces(input: AsyncIterable<Uint8Array>): AsyncGenerator<Piece> {
  for await (const bytes of input) yield Piece.from(bytes);
}
