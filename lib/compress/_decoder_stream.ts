/**
 * Turns a pull-driven decoder (an async generator over the input pieces) into a stream pair,
 * with backpressure, large output pieces and one error shape.
 *
 * @module
 */

import { concat, Piece } from "../streams/mod.ts";
import { DamagedError, IncompleteError, RecoverError } from "../errors.ts";
import type { Compression } from "./compression.ts";

/**
 * A decoder: reads compressed pieces from `input` and yields decompressed bytes. It only runs
 * while its output is being read, so memory stays bounded whatever the compression ratio.
 * It owns the input pieces: it recycles each once its bytes are used, or gives it away when
 * it keeps the bytes (rule 3 of `lib/streams/piece_pool.ts`). The bytes it yields are its
 * own new buffers (or copies), which it never touches again.
 */
export type Decoder = (input: AsyncIterable<Piece>) => AsyncIterable<Uint8Array>;

/** Pieces smaller than this are gathered before they are handed on. */
export const MIN_PIECE = 256 * 1024;

/** The size of the output buffers that decoders fill. */
export const OUTPUT_PIECE = 512 * 1024;

/** Wraps an error of the upstream stream so that it passes through the decoder unchanged. */
class UpstreamError {
  constructor(readonly error: unknown) {}
}

/**
 * Makes a stream pair that runs `decode` over what is written to it: `take` makes each input
 * a piece the decoder owns, `give` passes on each output piece (plain pieces of the decoder's
 * new buffers).
 *
 * Errors that are not already a {@linkcode RecoverError} become
 * `DamagedError("Cannot decompress <kind> data: <reason>")`; errors of the upstream stream
 * pass unchanged. A decoding error also errors the writable side, so a `pipeTo` into it fails.
 */
export function decoderStream<I extends Piece | Uint8Array, O extends Piece | Uint8Array>(
  kind: Compression,
  decode: Decoder,
  take: (input: I) => Piece,
  give: (output: Uint8Array) => O,
): TransformStream<I, O> {
  const { writable, readable: source } = new TransformStream<I, I>();
  const reader = source.getReader();
  async function* input(): AsyncGenerator<Piece> {
    for (;;) {
      let result: ReadableStreamReadResult<I>;
      try {
        result = await reader.read();
      } catch (error) {
        throw new UpstreamError(error);
      }
      if (result.done) return;
      const piece = take(result.value);
      if (piece.length > 0) yield piece;
      else piece.recycle();
    }
  }
  const output = gather(decode(input()))[Symbol.asyncIterator]();
  const readable = new ReadableStream<O>({
    async pull(controller) {
      try {
        const result = await output.next();
        if (result.done) controller.close();
        else controller.enqueue(give(result.value));
      } catch (thrown) {
        const error = describe(kind, thrown);
        controller.error(error);
        await reader.cancel(error).catch(() => {});
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
      await output.return(undefined).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { writable, readable };
}

function describe(kind: Compression, thrown: unknown): unknown {
  if (thrown instanceof UpstreamError) return thrown.error;
  if (thrown instanceof RecoverError) return thrown;
  const reason = thrown instanceof Error ? thrown.message : String(thrown);
  return new DamagedError(
    { reason: "damaged", action: `decompress ${kind} data`, detail: reason },
    { cause: thrown },
  );
}

/** Hands on pieces of at least {@linkcode MIN_PIECE} bytes (except the last), copying only small ones. */
async function* gather(pieces: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  for await (const piece of pieces) {
    if (piece.length === 0) continue;
    if (heldBytes === 0 && piece.length >= MIN_PIECE) {
      yield piece;
      continue;
    }
    held.push(piece);
    heldBytes += piece.length;
    if (heldBytes >= MIN_PIECE) {
      yield concat(held, heldBytes);
      held = [];
      heldBytes = 0;
    }
  }
  if (heldBytes > 0) yield concat(held, heldBytes);
}

/** The message tail used by every codec when the input stops inside a member, stream or frame. */
export function endsEarly(kind: Compression, where: string): IncompleteError {
  return new IncompleteError({
    reason: "truncated",
    action: `decompress ${kind} data`,
    detail: `it ends early, inside ${where}`,
  });
}
