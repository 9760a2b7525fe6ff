/**
 * The new backup file read back while it is still being written (`convert`): the reader gets
 * only bytes the writer has reported written, and waits for more, until the writer says the
 * file is complete (then the end of the file is the end) or failed (then reading fails). The
 * bytes are read from the file, as any reader of it would (not handed over in memory).
 *
 * @module
 */

import type { ByteReader } from "../outer/mod.ts";

/** A file being written, and readers that follow it. */
export class GrowingFile {
  #written = 0;
  #complete = false;
  #failure: { error: unknown } | undefined;
  #waiting: Array<() => void> = [];

  /** The writer has written `bytes` bytes in total. */
  grew(bytes: number): void {
    this.#written = bytes;
    this.#wake();
  }

  /** The writer is done: what is written is the whole file. */
  complete(): void {
    this.#complete = true;
    this.#wake();
  }

  /** The writer failed: readers stop with `error`. */
  fail(error: unknown): void {
    this.#failure ??= { error };
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiting.splice(0)) wake();
  }

  /** Opens `path` (the file being written) for a reader that follows the writer. */
  readonly open = async (path: string): Promise<ByteReader & { close(): void }> => {
    const file = await Deno.open(path, { read: true });
    let position = 0;
    return {
      read: async (p: Uint8Array): Promise<number | null> => {
        for (;;) {
          if (this.#failure) throw this.#failure.error;
          const ready = this.#written - position;
          if (ready > 0) {
            const n = await file.read(p.subarray(0, Math.min(p.length, ready)));
            if (n === null) throw new Error(`"${path}" is shorter than what was written to it`);
            position += n;
            return n;
          }
          if (this.#complete) return null;
          await new Promise<void>((resolve) => this.#waiting.push(resolve));
        }
      },
      close: () => file.close(),
    };
  };
}
