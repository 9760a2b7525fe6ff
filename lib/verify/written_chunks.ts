/**
 * Chunks a backup's writer has hashed, held until a reader of the written file has compared
 * them (`convert` reads its new file back as it writes it). The writer computed each chunk's
 * HMAC and wrote it to the `.hmac` entry; the reader, instead of hashing the chunk a second
 * time, compares every byte it reads from the file with the bytes that were hashed. Equal bytes
 * have that HMAC, so the `.hmac` entry read from the file is then checked against it as usual.
 * A byte that differs (or a chunk of another length) is a damaged chunk.
 *
 * Memory is bounded without making the writer wait: a chunk the reader has not come to by the
 * time the next one is handed over is let go (the reader then hashes it, as any reader does),
 * so at most one chunk waits and one is being compared.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { DamagedError } from "../errors.ts";

/** A chunk as its writer hashed and wrote it. */
interface WrittenChunk {
  hex: string;
  pieces: readonly Uint8Array[];
}

/** What a reader compares a chunk with: fed the bytes read, in order, like an HMAC. */
export interface ChunkComparison {
  /** Compares the next bytes read (kept, and handed back by {@linkcode finish}). */
  update(piece: Uint8Array): void;
  /** Drops the comparison of a chunk given up halfway. */
  discard(): void;
  /**
   * The digest the writer computed over these bytes, and the pieces fed, in order.
   *
   * @throws {DamagedError} When a byte read differs from the one written, or the lengths differ.
   */
  finish(): Promise<{ hex: string; pieces: Uint8Array[] }>;
}

/** The chunks written and not yet come to by the reader, by entry name. */
export class WrittenChunks {
  readonly #waiting = new Map<string, WrittenChunk>();
  #closed = false;

  /**
   * Hands over chunk `name` as hashed (`hex`) and about to be written (`pieces`, not changed
   * after). A chunk handed over before and not taken yet is let go.
   */
  put(name: string, hex: string, pieces: readonly Uint8Array[]): void {
    this.#waiting.clear();
    if (!this.#closed) this.#waiting.set(name, { hex, pieces });
  }

  /** No more comparisons (the reader stopped): nothing is kept any more. */
  close(): void {
    this.#closed = true;
    this.#waiting.clear();
  }

  /**
   * The comparison of chunk `name` with what was written; undefined when it was not handed
   * over or was let go (the reader then hashes the chunk).
   */
  take(name: string): ChunkComparison | undefined {
    const chunk = this.#waiting.get(name);
    if (chunk === undefined) return undefined;
    this.#waiting.delete(name);
    return new Comparison(name, chunk);
  }
}

class Comparison implements ChunkComparison {
  readonly #name: string;
  readonly #chunk: WrittenChunk;
  /** Where the next byte read is in the written pieces. */
  #piece = 0;
  #offset = 0;
  /** Bytes compared so far. */
  #position = 0;
  /** What differs, once something does. */
  #problem: string | undefined;
  #kept: Uint8Array[] = [];

  constructor(name: string, chunk: WrittenChunk) {
    this.#name = name;
    this.#chunk = chunk;
  }

  update(piece: Uint8Array): void {
    this.#kept.push(piece);
    let at = 0;
    while (this.#problem === undefined && at < piece.length) {
      const written = this.#chunk.pieces[this.#piece];
      if (written === undefined) {
        this.#problem = `more than the ${this.#position} bytes written were read back`;
        break;
      }
      const n = Math.min(written.length - this.#offset, piece.length - at);
      const a = piece.subarray(at, at + n);
      const b = written.subarray(this.#offset, this.#offset + n);
      if (Buffer.compare(a, b) !== 0) {
        const byte = this.#position + firstDifference(a, b);
        this.#problem = `byte ${byte} read back differs from the one written`;
      }
      at += n;
      this.#position += n;
      this.#offset += n;
      if (this.#offset === written.length) {
        this.#piece++;
        this.#offset = 0;
      }
    }
  }

  discard(): void {
    this.#kept = [];
  }

  finish(): Promise<{ hex: string; pieces: Uint8Array[] }> {
    const written = this.#chunk.pieces.reduce((sum, piece) => sum + piece.length, 0);
    const problem = this.#problem ??
      (this.#position < written
        ? `${this.#position} bytes were read back, ${written} were written`
        : undefined);
    if (problem !== undefined) {
      return Promise.reject(
        new DamagedError({
          reason: "damaged",
          action: "verify chunk",
          subject: { kind: "chunk", name: this.#name },
          detail: problem,
        }),
      );
    }
    return Promise.resolve({ hex: this.#chunk.hex, pieces: this.#kept });
  }
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length;
}
