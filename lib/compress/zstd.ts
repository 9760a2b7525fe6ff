/**
 * zstd decoding: `node:zlib` inflates one frame at a time, a small frame parser finds where
 * frames end, so multi-frame input (`cat a.zst b.zst`, pzstd) and skippable frames work.
 *
 * `node:zlib`'s zstd decoder stops after the first frame and ignores the rest, and does not
 * notice a frame that is cut short; the parser below catches both.
 *
 * @module
 */

import * as zlib from "node:zlib";
import { DamagedError } from "../errors.ts";
import { type Decoder, endsEarly, OUTPUT_PIECE } from "./_decoder_stream.ts";
import { runNodeZlib } from "./node_zlib.ts";
import { Piece } from "../streams/mod.ts";

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC = 0x184d2a50; // low 4 bits are free

/**
 * A run of bytes of one zstd frame, a part of an input piece (or a copy); `last` marks the
 * frame's final bytes.
 */
export interface FramePart {
  piece: Piece;
  last: boolean;
}

const enum State {
  /** Between frames: zero padding is skipped, anything else starts a frame (4-byte magic). */
  Magic,
  /** The frame header descriptor byte. */
  Descriptor,
  /** A 3-byte block header. */
  BlockHeader,
  /** The 4-byte size of a skippable frame. */
  SkippableSize,
  /** Counted bytes: the rest of a frame header, block content, checksum, skippable data. */
  Counted,
}

/**
 * Finds frame boundaries in zstd input without decompressing: reads frame and block headers
 * and counts the bytes between them. Drops zero padding between frames and skippable frames.
 */
export class ZstdFrameSplitter {
  #state = State.Magic;
  #field = new Uint8Array(4);
  #fieldBytes = 0;
  #counted = 0;
  /** What follows the counted bytes. */
  #after: "blocks" | "checksum" | "end" | "skip" = "blocks";
  #lastBlock = false;
  #checksum = false;

  /** Whether the input so far ends exactly between frames. */
  get atBoundary(): boolean {
    return this.#state === State.Magic && this.#fieldBytes === 0;
  }

  /**
   * Splits one input piece into frame parts (parts of `piece`, except a magic number, which is
   * copied). The parts own the piece together: it must not be used afterwards.
   *
   * @throws {DamagedError} On bytes that start no frame, or a reserved block type.
   */
  split(input: Piece): FramePart[] {
    const piece = input.bytes;
    const parts: FramePart[] = [];
    let start = this.#inFrame() ? 0 : -1; // start of the frame bytes of this piece
    let i = 0;
    while (i < piece.length) {
      if (this.#state === State.Counted) {
        const take = Math.min(this.#counted, piece.length - i);
        i += take;
        this.#counted -= take;
        if (this.#counted > 0) break;
        if (this.#after === "skip") {
          this.#state = State.Magic;
          continue;
        }
        if (this.#after === "blocks") {
          this.#state = State.BlockHeader;
          continue;
        }
        if (this.#after === "checksum") {
          this.#after = "end";
          this.#counted = this.#checksum ? 4 : 0;
          continue;
        }
        parts.push({ piece: input.part(start, i), last: true });
        start = -1;
        this.#state = State.Magic;
        continue;
      }
      const byte = piece[i++]!;
      if (this.#state === State.Magic && this.#fieldBytes === 0 && byte === 0) continue;
      this.#field[this.#fieldBytes++] = byte;
      if (this.#state === State.Magic) {
        if (this.#fieldBytes < 4) continue;
        this.#fieldBytes = 0;
        const magic = new DataView(this.#field.buffer).getUint32(0, true);
        if (magic === FRAME_MAGIC) {
          parts.push({ piece: Piece.from(this.#field.slice(0, 4)), last: false });
          start = i;
          this.#state = State.Descriptor;
        } else if ((magic & 0xfffffff0) === SKIPPABLE_MAGIC) {
          this.#state = State.SkippableSize;
        } else {
          throw new DamagedError({
            reason: "damaged",
            action: "decompress zstd data",
            detail: "bytes after a frame start no zstd frame",
          });
        }
      } else if (this.#state === State.Descriptor) {
        this.#fieldBytes = 0;
        const single = (byte >> 5) & 1;
        const fcs = [single, 2, 4, 8][byte >> 6]!;
        const dictionary = [0, 1, 2, 4][byte & 3]!;
        if (byte & 0x08) {
          throw new DamagedError({
            reason: "damaged",
            action: "decompress zstd data",
            detail: "reserved bit set in a frame header",
          });
        }
        this.#checksum = (byte & 0x04) !== 0;
        this.#count((single ? 0 : 1) + dictionary + fcs, "blocks");
      } else if (this.#state === State.BlockHeader) {
        if (this.#fieldBytes < 3) continue;
        this.#fieldBytes = 0;
        const header = this.#field[0]! | (this.#field[1]! << 8) | (this.#field[2]! << 16);
        const type = (header >> 1) & 3;
        if (type === 3) {
          throw new DamagedError({
            reason: "damaged",
            action: "decompress zstd data",
            detail: "reserved block type",
          });
        }
        this.#lastBlock = (header & 1) === 1;
        this.#count(type === 1 ? 1 : header >>> 3, this.#lastBlock ? "checksum" : "blocks");
      } else {
        if (this.#fieldBytes < 4) continue;
        this.#fieldBytes = 0;
        this.#count(new DataView(this.#field.buffer).getUint32(0, true), "skip");
      }
    }
    if (start >= 0 && start < piece.length) {
      parts.push({ piece: input.part(start), last: false });
    }
    return parts;
  }

  #count(bytes: number, after: "blocks" | "checksum" | "skip"): void {
    this.#state = State.Counted;
    this.#counted = bytes;
    this.#after = after;
  }

  #inFrame(): boolean {
    if (this.#state === State.Magic || this.#state === State.SkippableSize) return false;
    return !(this.#state === State.Counted && this.#after === "skip");
  }
}

/** Decodes zstd: every frame, skipping skippable frames and zero padding between frames. */
export const decodeZstd: Decoder = async function* (input) {
  const splitter = new ZstdFrameSplitter();
  const iterator = input[Symbol.asyncIterator]();
  const parts: FramePart[] = [];
  let sawFrame = false;
  /** Reads input until a part is queued; false at the end of the input. */
  async function fill(): Promise<boolean> {
    while (parts.length === 0) {
      const next = await iterator.next();
      if (next.done) {
        if (!splitter.atBoundary) throw endsEarly("zstd", "a frame");
        return false;
      }
      parts.push(...splitter.split(next.value));
    }
    return true;
  }
  async function* frame(): AsyncGenerator<Piece> {
    for (;;) {
      if (!await fill()) throw endsEarly("zstd", "a frame");
      const part = parts.shift()!;
      if (part.piece.length > 0) yield part.piece; // An empty part is dropped (never recycled).
      if (part.last) return;
    }
  }
  while (await fill()) {
    sawFrame = true;
    yield* runNodeZlib(zlib.createZstdDecompress({ chunkSize: OUTPUT_PIECE }), frame());
  }
  if (!sawFrame) throw endsEarly("zstd", "the first frame");
};
