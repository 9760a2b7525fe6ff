/**
 * A one-entry lookahead over the outer archive: items end where the next entry belongs to
 * another item, which is only known by looking at it.
 *
 * @module
 */

import type { OuterEntry } from "../outer/mod.ts";

/** Outer entries with `peek()`. */
export class EntryQueue {
  #source: AsyncIterator<OuterEntry>;
  #peeked: OuterEntry | undefined;
  #hasPeeked = false;

  constructor(source: AsyncIterable<OuterEntry>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** The next entry without taking it; undefined at the end of the backup. */
  async peek(): Promise<OuterEntry | undefined> {
    if (!this.#hasPeeked) {
      const next = await this.#source.next();
      this.#peeked = next.done ? undefined : next.value;
      this.#hasPeeked = true;
    }
    return this.#peeked;
  }

  /** Takes the next entry; undefined at the end of the backup. */
  async next(): Promise<OuterEntry | undefined> {
    const entry = await this.peek();
    this.#hasPeeked = false;
    this.#peeked = undefined;
    return entry;
  }

  /**
   * Puts a stage between the queue and the entries still to come (used for format 4's
   * prefetching). Only allowed when no entry is being peeked.
   */
  pipe(stage: (rest: AsyncIterable<OuterEntry>) => AsyncIterable<OuterEntry>): void {
    if (this.#hasPeeked) throw new Error("Cannot add a stage while an entry is peeked");
    const rest = this.#source;
    this.#source = stage({ [Symbol.asyncIterator]: () => rest })[Symbol.asyncIterator]();
  }

  /** Ends the underlying iteration (closes files). */
  async close(): Promise<void> {
    await this.#source.return?.();
  }
}
