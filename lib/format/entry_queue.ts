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
  #lastTaken: string | undefined;
  #toldMissing: string | undefined;
  #held: unknown;
  /** The chunk reader of the item being read, while it may still take entries. */
  #reader: { stop(): Promise<void> } | undefined;

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

  /** The name of the entry taken last (where a failed read stopped). */
  get lastTaken(): string | undefined {
    return this.#lastTaken;
  }

  /**
   * The chunk a reader told missing when it peeked at the entry that stands in its place (that
   * entry is still the next one); undefined once an entry is taken.
   */
  get toldMissing(): string | undefined {
    return this.#toldMissing;
  }

  /** Records that chunk `name` was told missing where the next entry stands. */
  tellMissing(name: string): void {
    this.#toldMissing = name;
  }

  /**
   * Keeps the failure of a read ahead that nobody was told (the item's read failed first,
   * elsewhere), for the check of the rest of the item to tell; a told gap is then not told.
   */
  holdProblem(error: unknown): void {
    this.#held = error;
  }

  /** The failure kept by {@linkcode holdProblem}, once. */
  takeHeldProblem(): unknown {
    const held = this.#held;
    this.#held = undefined;
    return held;
  }

  /** Takes the next entry; undefined at the end of the backup. */
  async next(): Promise<OuterEntry | undefined> {
    const entry = await this.peek();
    this.#toldMissing = undefined;
    if (entry !== undefined) this.#lastTaken = entry.name;
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

  /**
   * Wraps the chunk reader of an item (the one generator that takes its entries) so that a
   * read that failed further down the pipeline can be stopped with {@linkcode stopReading}
   * before the rest of the item is passed over: no entry is taken by it after that.
   *
   * @param onStop Called first when it is stopped: frees what a read ahead may be waiting for.
   */
  reading<T>(source: AsyncGenerator<T>, onStop?: () => void): AsyncGenerator<T> {
    let pending: Promise<unknown> = Promise.resolve();
    let stopped = false;
    let closing: Promise<void> | undefined;
    // Once: frees what a read ahead may wait for, waits for the step in progress, then runs
    // the reader's own cleanup (it waits for a chunk it reads ahead).
    let finished = false;
    const close = () =>
      closing ??= (async () => {
        stopped = true;
        if (!finished) onStop?.();
        await pending.catch(() => {});
        await source.return(undefined).catch(() => {});
      })();
    const reader = { stop: close };
    this.#reader = reader;
    this.#held = undefined;
    const forget = () => {
      if (this.#reader === reader) this.#reader = undefined;
    };
    return (async function* () {
      try {
        for (;;) {
          if (stopped) return;
          const step = source.next();
          pending = step;
          const result = await step;
          if (result.done) {
            finished = true; // Read to its end: nothing is left to free.
            return;
          }
          yield result.value;
        }
      } finally {
        // Also when the consumer cancels: the reader is known until it holds no entry.
        await close();
        forget();
      }
    })();
  }

  /**
   * Stops the chunk reader of the item being read (see {@linkcode reading}) and waits until it
   * holds no entry any more. Nothing happens when no reader is running.
   */
  async stopReading(): Promise<void> {
    const reader = this.#reader;
    this.#reader = undefined;
    await reader?.stop();
  }

  /** Ends the underlying iteration (closes files). */
  async close(): Promise<void> {
    await this.#source.return?.();
  }
}
