/**
 * The writer for `verify`: reads every event to the end and writes nothing.
 *
 * @module
 */

import type { TarEvent } from "../tar/mod.ts";

/**
 * A `WritableStream<TarEvent>` that consumes everything and only counts: members and the
 * data bytes they carry. Pulling the whole stream through it makes every upstream stage
 * (HMAC, decryption, decompression, tar parsing) check all of the backup.
 *
 * @example
 * ```ts
 * const sink = new NullWriter();
 * await tarEvents.pipeTo(sink);
 * sink.members; // number of members seen
 * ```
 */
export class NullWriter extends WritableStream<TarEvent> {
  readonly #counts: { members: number; bytes: number };

  /** Build a writer with both counts at zero. */
  constructor() {
    const counts = { members: 0, bytes: 0 };
    super({
      write(event) {
        if (event.type === "entry") counts.members++;
        else if (event.type === "data") counts.bytes += event.bytes.length;
      },
    });
    this.#counts = counts;
  }

  /** Number of members seen (one per `entry` event). */
  get members(): number {
    return this.#counts.members;
  }

  /** Number of data bytes seen (stored bytes, not counting holes). */
  get bytes(): number {
    return this.#counts.bytes;
  }
}
