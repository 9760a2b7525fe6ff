/**
 * gzip and zlib decoding with `node:zlib`, the fastest inflater available in Deno.
 *
 * Deno's `DecompressionStream("gzip")` rejects multi-member gzip ("failed to write whole
 * buffer"), which pigz and `cat a.gz b.gz` produce; `node:zlib`'s gunzip reads every member.
 *
 * The inflater is driven through its native handle (`writeSync` into our own output buffers,
 * the binding Node's own zlib.js uses) rather than through the Node stream around it: that
 * saves the stream machinery per piece on the busiest thread, and each input piece is known
 * to be consumed the moment the call returns. Where the handle is not there, the stream is
 * used.
 *
 * @module
 */

import * as zlib from "node:zlib";
import type { Transform } from "node:stream";
import { Piece } from "../streams/mod.ts";
import { type Decoder, endsEarly, OUTPUT_PIECE } from "./_decoder_stream.ts";

/** The native binding under a node:zlib stream, as Node's own zlib.js drives it. */
export interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inputOffset: number,
    inputLength: number,
    output: Uint8Array,
    outputOffset: number,
    outputLength: number,
  ): void;
  onerror: (message: string, errno: number) => void;
  close(): void;
}

const NO_INPUT = new Uint8Array(0);

/** Placeholder for a recycled piece. */
const NO_PIECE = Piece.from(NO_INPUT);

/**
 * Runs a `node:zlib` transform over `input` as a Node stream (where its native handle is not
 * there), yielding its output as it is read. Each input piece is recycled once the transform
 * has consumed it. On an error of the transform, output it had not yet handed on may be lost
 * (Node's stream drops it); the handle path of {@linkcode runNodeZlib} does not lose it.
 *
 * `node:zlib` stops inflating while its output buffer is full, so memory stays bounded even
 * for a small piece that inflates to gigabytes.
 */
async function* streamNodeZlib(
  transform: Transform,
  input: AsyncIterable<Piece>,
): AsyncGenerator<Uint8Array> {
  // Writes are consumed in order, but Deno runs their callbacks out of order (a later one may
  // come first): the callback of write `k` recycles every piece up to `k`, in order, so that a
  // piece cut in parts goes back with its last part.
  const written: Piece[] = [];
  let recycled = 0; // Pieces of `written` recycled so far.
  let settled: (() => void) | undefined;
  const consumed = (index: number) => () => {
    while (recycled <= index) {
      written[recycled]!.recycle();
      written[recycled++] = NO_PIECE;
    }
    if (recycled === written.length) settled?.();
  };
  const pump = (async () => {
    try {
      for await (const piece of input) {
        if (transform.destroyed) return;
        written.push(piece);
        if (!transform.write(piece.bytes, consumed(written.length - 1))) await drained(transform);
      }
      transform.end();
    } catch (error) {
      // Kept as thrown: an upstream error must come out of the decoder unchanged.
      transform.destroy(error as Error);
    }
  })();
  try {
    for await (const piece of transform as AsyncIterable<Uint8Array>) {
      yield new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength);
    }
    // A write's callback may run after the output has ended: wait for them all, so that the
    // pieces of the next run (zstd's next frame: parts of the same buffers) are recycled
    // after these, and a buffer goes back with its last part.
    if (recycled < written.length) await new Promise<void>((resolve) => settled = resolve);
  } finally {
    transform.destroy();
    void pump;
  }
}

/**
 * Runs a `node:zlib` decoder (gunzip, inflate, zstd) over `input`, through `transform`'s
 * native handle when it has one (else through the stream). Input pieces are recycled once
 * consumed; output comes in buffers of {@linkcode OUTPUT_PIECE} bytes, each handed on when
 * full, so memory stays bounded however much a piece inflates to. Data after the end of the
 * (last) stream is ignored.
 *
 * On an error (of the decoder, or of `input`), every byte decoded before it is handed on
 * first, then the error is thrown: salvage keeps what a stream decodes to up to its damage.
 */
export async function* runNodeZlib(
  transform: Transform,
  input: AsyncIterable<Piece>,
): AsyncGenerator<Uint8Array> {
  const inner = transform as unknown as { _handle?: ZlibHandle; _writeState?: Uint32Array };
  const handle = inner._handle, state = inner._writeState;
  if (typeof handle?.writeSync !== "function" || !(state instanceof Uint32Array)) {
    yield* streamNodeZlib(transform, input);
    return;
  }
  let failure: Error | undefined;
  handle.onerror = (message) => failure ??= new Error(message);
  let out = new Uint8Array(OUTPUT_PIECE);
  let filled = 0;
  /** One call; returns [bytes consumed, whether the output buffer is full]. */
  const step = (flush: number, piece: Uint8Array, at: number): [number, boolean] => {
    const room = out.length - filled;
    // Deno's binding reports the output room left also for a call that fails: a value that
    // cannot be one tells whether it did.
    state[0] = room + 1;
    handle.writeSync(flush, piece, at, piece.length - at, out, filled, room);
    if (failure !== undefined) {
      if (state[0]! <= room) filled += room - state[0]!;
      throw failure;
    }
    filled += room - state[0]!;
    return [piece.length - at - state[1]!, state[0] === 0];
  };
  // An error of the input ends it; what the decoder still holds is drained before it is
  // thrown (unchanged: an upstream error must come out of the decoder as it was).
  let upstream: { error: unknown } | undefined;
  async function* guarded(): AsyncGenerator<Piece> {
    try {
      yield* input;
    } catch (error) {
      upstream = { error };
    }
  }
  try {
    let ended = false;
    for await (const piece of guarded()) {
      const bytes = piece.bytes;
      let at = 0;
      while (!ended && at < bytes.length) {
        const [consumed, full] = step(zlib.constants.Z_NO_FLUSH, bytes, at);
        at += consumed;
        if (full) {
          yield out;
          out = new Uint8Array(OUTPUT_PIECE);
          filled = 0;
        } else if (at < bytes.length) {
          ended = true; // Room left and input left: the stream has ended.
        }
      }
      piece.recycle();
    }
    try {
      for (;;) {
        const [, full] = step(zlib.constants.Z_FINISH, NO_INPUT, 0);
        if (!full) break;
        yield out;
        out = new Uint8Array(OUTPUT_PIECE);
        filled = 0;
      }
    } catch (error) {
      if (upstream === undefined) throw error; // else the input's error is the one thrown
    }
    if (filled > 0) yield out.subarray(0, filled);
    filled = 0;
    if (upstream !== undefined) throw upstream.error;
  } catch (error) {
    // What was decoded before the error is handed on first.
    if (filled > 0) yield out.subarray(0, filled);
    throw error;
  } finally {
    transform.destroy();
  }
}

function drained(transform: Transform): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      transform.off("drain", done).off("close", done).off("error", done);
      resolve();
    };
    transform.on("drain", done).on("close", done).on("error", done);
  });
}

/** `node:zlib` reports a short input this way. */
function isEndOfFile(error: unknown): boolean {
  return error instanceof Error && /unexpected end of file/i.test(error.message);
}

/**
 * Decodes gzip: every member of a multi-member file (pigz, `cat a.gz b.gz`), then ignores
 * zero bytes after the last one.
 */
export const decodeGzip: Decoder = async function* (input) {
  let sawInput = false;
  async function* watched() {
    for await (const piece of input) {
      sawInput = true;
      yield piece;
    }
  }
  try {
    yield* runNodeZlib(zlib.createGunzip({ chunkSize: OUTPUT_PIECE }), watched());
  } catch (error) {
    if (isEndOfFile(error)) throw endsEarly("gzip", sawInput ? "a member" : "the first member");
    throw error;
  }
};

/**
 * Decodes one zlib (RFC 1950) stream, as `openssl enc -z` writes it; input without a zlib
 * header is inflated as raw deflate (spec §6.5 is unsure which one OpenSSL writes).
 * Bytes after the end of the stream are ignored.
 */
export const decodeZlib: Decoder = async function* (input) {
  const iterator = input[Symbol.asyncIterator]();
  const head: Piece[] = [];
  const magic: number[] = [];
  while (magic.length < 2) {
    const next = await iterator.next();
    if (next.done) break;
    head.push(next.value);
    magic.push(...next.value.bytes.subarray(0, 2 - magic.length));
  }
  if (magic.length === 0) throw endsEarly("zlib", "the stream header");
  const b0 = magic[0]!, b1 = magic[1] ?? 0;
  const wrapped = (b0 & 0x0f) === 8 && (b0 * 256 + b1) % 31 === 0;
  async function* rest() {
    yield* head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  const options = { chunkSize: OUTPUT_PIECE };
  const inflater = wrapped ? zlib.createInflate(options) : zlib.createInflateRaw(options);
  try {
    yield* runNodeZlib(inflater, rest());
  } catch (error) {
    if (isEndOfFile(error)) throw endsEarly("zlib", "the stream");
    throw error;
  }
};
