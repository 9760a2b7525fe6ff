/**
 * xz and lzma-alone decoding with liblzma compiled to WebAssembly (the `node-liblzma`
 * package's WASM build; its native addon is never loaded).
 *
 * liblzma is the reference decoder: it reads every xz feature and, through its auto decoder,
 * the legacy `.lzma` format that xz-embedded based packages lack. The loop below drives
 * `lzma_code` with 1 MiB buffers, so memory stays bounded (plus the dictionary, at most
 * {@linkcode MEMORY_LIMIT}).
 *
 * @module
 */

import { DamagedError, UnsupportedError } from "../errors.ts";
import type { Compression } from "./compression.ts";
import { type Decoder, endsEarly, OUTPUT_PIECE } from "./_decoder_stream.ts";
import { XZ_MAGIC } from "./detect.ts";

/** The parts of the Emscripten module used here. */
interface LzmaModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(pointer: number): void;
  _lzma_code(stream: number, action: number): number;
  _lzma_end(stream: number): void;
  _lzma_stream_decoder(stream: number, memlimit: bigint, flags: number): number;
  _lzma_auto_decoder(stream: number, memlimit: bigint, flags: number): number;
}

/** Dictionary memory allowed to a decoder; the WASM heap cannot grow past 256 MiB. */
export const MEMORY_LIMIT = 200 * 1024 * 1024;

const LZMA_OK = 0, LZMA_STREAM_END = 1, LZMA_MEM_ERROR = 5, LZMA_MEMLIMIT_ERROR = 6;
const LZMA_FORMAT_ERROR = 7, LZMA_OPTIONS_ERROR = 8, LZMA_DATA_ERROR = 9, LZMA_BUF_ERROR = 10;
const LZMA_RUN = 0, LZMA_FINISH = 3;
/** sizeof(lzma_stream) and the offsets used, for wasm32. */
const STREAM_SIZE = 96, NEXT_IN = 0, AVAIL_IN = 4, NEXT_OUT = 16, AVAIL_OUT = 20;
const INPUT_PIECE = 1024 * 1024;

let loading: Promise<LzmaModule> | undefined;

/** Loads the WASM module once; later calls share it. */
function loadModule(): Promise<LzmaModule> {
  loading ??= (async () => {
    const wasmBinary = await Deno.readFile(
      new URL(import.meta.resolve("node-liblzma/wasm/liblzma.wasm")),
    );
    const glue = await import("node-liblzma/wasm/liblzma.js");
    const create = glue.default as unknown as (arg: object) => Promise<LzmaModule>;
    return await create({ wasmBinary, printErr: () => {} });
  })();
  return loading;
}

function failure(kind: Compression, code: number): Error {
  const reasons: Record<number, string> = {
    [LZMA_FORMAT_ERROR]: "not in the expected format",
    [LZMA_OPTIONS_ERROR]: "unsupported compression options",
    [LZMA_DATA_ERROR]: "the data is corrupt",
  };
  if (code === LZMA_MEM_ERROR || code === LZMA_MEMLIMIT_ERROR) {
    return new UnsupportedError({
      reason: "too-costly",
      action: `decompress ${kind} data`,
      detail: `it needs more than ${MEMORY_LIMIT >> 20} MiB of memory`,
    });
  }
  return new DamagedError({
    reason: "damaged",
    action: `decompress ${kind} data`,
    detail: reasons[code] ?? `liblzma error ${code}`,
  });
}

/**
 * One liblzma decoder with its input and output buffers in WASM memory; `restart()` begins a
 * new stream (for concatenated xz streams).
 */
class LzmaDecoder {
  readonly #module: LzmaModule;
  readonly #kind: "xz" | "lzma";
  readonly #stream: number;
  readonly #input: number;
  readonly #output: number;
  #active = false;

  constructor(module: LzmaModule, kind: "xz" | "lzma") {
    this.#module = module;
    this.#kind = kind;
    this.#stream = module._malloc(STREAM_SIZE);
    this.#input = module._malloc(INPUT_PIECE);
    this.#output = module._malloc(OUTPUT_PIECE);
    if (!this.#stream || !this.#input || !this.#output) {
      this.free();
      throw new UnsupportedError({
        reason: "too-costly",
        action: `decompress ${kind} data`,
        detail: "out of WASM memory",
      });
    }
    module.HEAPU8.fill(0, this.#stream, this.#stream + STREAM_SIZE);
  }

  /** Whether a stream has begun and not yet ended. */
  get active(): boolean {
    return this.#active;
  }

  /** Begins a new stream. */
  start(): void {
    const m = this.#module;
    const limit = BigInt(MEMORY_LIMIT);
    // lzma_auto_decoder reads both .xz and .lzma; lzma_stream_decoder only .xz
    const code = this.#kind === "xz"
      ? m._lzma_stream_decoder(this.#stream, limit, 0)
      : m._lzma_auto_decoder(this.#stream, limit, 0);
    if (code !== LZMA_OK) throw failure(this.#kind, code);
    this.#active = true;
  }

  #view(): DataView {
    return new DataView(this.#module.HEAPU8.buffer);
  }

  /**
   * Decodes `bytes` (at most {@linkcode INPUT_PIECE}) with `action`; yields output and
   * returns how many input bytes are left over after the stream ended (0 if it did not).
   */
  *run(bytes: Uint8Array, action: number): Generator<Uint8Array, number> {
    const m = this.#module;
    m.HEAPU8.set(bytes, this.#input);
    const start = this.#view();
    start.setUint32(this.#stream + NEXT_IN, this.#input, true);
    start.setUint32(this.#stream + AVAIL_IN, bytes.length, true);
    for (;;) {
      // a fresh view every time: any decoder sharing the module may have grown the heap
      let view = this.#view();
      view.setUint32(this.#stream + NEXT_OUT, this.#output, true);
      view.setUint32(this.#stream + AVAIL_OUT, OUTPUT_PIECE, true);
      const code = m._lzma_code(this.#stream, action);
      view = this.#view(); // the heap may have grown
      const produced = OUTPUT_PIECE - view.getUint32(this.#stream + AVAIL_OUT, true);
      const left = view.getUint32(this.#stream + AVAIL_IN, true);
      if (produced > 0) yield m.HEAPU8.slice(this.#output, this.#output + produced);
      if (code === LZMA_STREAM_END) {
        this.#active = false;
        return left;
      }
      if (code === LZMA_BUF_ERROR && action === LZMA_FINISH) {
        throw endsEarly(this.#kind, "a stream");
      }
      if (code !== LZMA_OK) throw failure(this.#kind, code);
      // at LZMA_FINISH liblzma reports a short input (LZMA_BUF_ERROR) on the second call
      // that makes no progress, so keep calling
      if (action === LZMA_RUN && left === 0 && produced < OUTPUT_PIECE) return 0;
    }
  }

  /** Releases the decoder and its buffers. */
  free(): void {
    const m = this.#module;
    if (this.#stream) m._lzma_end(this.#stream);
    for (const pointer of [this.#stream, this.#input, this.#output]) if (pointer) m._free(pointer);
  }
}

/** Whether `bytes` begin like an xz stream (as far as they go); lzma-alone never concatenates. */
function startsLikeXz(bytes: Uint8Array): boolean {
  return XZ_MAGIC.every((byte, i) => i >= bytes.length || bytes[i] === byte);
}

/** Makes the decoder of xz (every stream of a concatenation) or lzma-alone input. */
function decodeLzma(kind: "xz" | "lzma"): Decoder {
  return async function* (pieces) {
    const decoder = new LzmaDecoder(await loadModule(), kind);
    let sawStream = false;
    try {
      for await (const input of pieces) {
        const piece = input.bytes;
        for (let offset = 0; offset < piece.length;) {
          if (!decoder.active) {
            while (offset < piece.length && piece[offset] === 0) offset++; // padding
            if (offset === piece.length) break;
            if (sawStream && !startsLikeXz(piece.subarray(offset))) {
              throw new DamagedError({
                reason: "damaged",
                action: `decompress ${kind} data`,
                detail: "unexpected bytes after the end of a stream",
              });
            }
            decoder.start();
            sawStream = true;
          }
          const bytes = piece.subarray(offset, offset + INPUT_PIECE);
          const left = yield* decoder.run(bytes, LZMA_RUN);
          offset += bytes.length - left;
        }
        input.recycle(); // Its bytes were copied into the decoder's heap.
      }
      if (decoder.active) yield* decoder.run(new Uint8Array(0), LZMA_FINISH);
      if (!sawStream) throw endsEarly(kind, "the first stream");
    } finally {
      decoder.free();
    }
  };
}

/** Decodes xz: every stream of a concatenation, zero padding between and after them. */
export const decodeXz: Decoder = decodeLzma("xz");

/** Decodes the legacy lzma-alone (`.lzma`) format of the `lzma` filter. */
export const decodeLzmaAlone: Decoder = decodeLzma("lzma");
