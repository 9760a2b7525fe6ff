/**
 * Small files written in the background, several at a time, when the disk is busy: for `files
 * get`, whose home trees
 * hold thousands of files of a few KiB. Creating a file is a journal transaction on the output
 * file system, and on a busy disk each `open(O_CREAT)` can wait a millisecond for it; one file
 * after the other, a tree of 20 000 files waits 20 000 times. Here the data of a small file is
 * gathered in memory, and {@link BackgroundFile.publish} runs the protocol of `SmallFile`
 * (exclusive create of a temporary name, data, exact length, time, mode, `link()` to the final
 * name, which never replaces anything) with the creation as an asynchronous call, which Deno
 * runs on its thread pool while the writer goes on with the next files. `TreeWriter`
 * keeps at most {@link BACKGROUND_WINDOW} of them in flight and waits for all before it
 * finishes (directory times, the end of the run) or gives up.
 *
 * @module
 */

import { type InPlace, SMALL_FILE, SmallFile } from "./_small_file.ts";

/** How many small files `TreeWriter` lets be written in the background at once. */
export const BACKGROUND_WINDOW = 8;

/** A synchronous create slower than this (milliseconds) waited for the disk. */
const SLOW_CREATE_MS = 0.1;
/** How many recent synchronous creates decide; at least half of them slow means a busy disk. */
const RECENT = 8;
/** While files go to the background, every this many is still created synchronously, to see. */
const PROBE_EVERY = 32;

/**
 * Chooses, file by file, whether a small file goes to the background. On a quiet disk creating
 * a file takes a few microseconds and the synchronous path (`SmallFile`) costs less than a trip
 * through the thread pool; when most recent synchronous creates were slow (they waited for a
 * busy disk's journal), the files go to the background, where several such waits overlap.
 * One slow create (the process was descheduled) changes nothing. Every {@link PROBE_EVERY}th
 * file is still created synchronously, to notice when the disk is quiet again.
 */
export class CreatePace {
  /** Whether each of the last {@link RECENT} synchronous creates was slow (a ring). */
  readonly #slow: boolean[] = [];
  #next = 0;
  #slowCount = 0;
  #count = 0;

  /** Whether the next small file should go to the background. */
  background(): boolean {
    return this.#slowCount * 2 >= RECENT && ++this.#count % PROBE_EVERY !== 0;
  }

  /** Notes how long a synchronous create took, in milliseconds. */
  record(ms: number): void {
    const slow = ms > SLOW_CREATE_MS;
    if (this.#slow[this.#next]) this.#slowCount--;
    this.#slow[this.#next] = slow;
    if (slow) this.#slowCount++;
    this.#next = (this.#next + 1) % RECENT;
  }
}

/** Buffers of {@link SMALL_FILE} bytes, reused: one per file in flight, plus the one filling. */
const spare: Uint8Array[] = [];

/** A small file gathered in memory, then written and published in the background. */
export class BackgroundFile {
  /** Written in the background: the writer may go on before {@link publish} settles. */
  readonly background = true;
  readonly #dir: string;
  readonly #name: string;
  readonly #inPlace: InPlace | undefined;
  #buffer: Uint8Array | undefined;
  /** The ranges written, `[start, end)`, in order; a gap between two stays a hole. */
  #ranges: Array<[number, number]> = [];
  #size = 0;
  #mode = 0;
  #mtime = 0;

  /** `inPlace` as for `SmallFile.create`. */
  constructor(dir: string, name: string, inPlace?: InPlace) {
    this.#dir = dir;
    this.#name = name;
    this.#inPlace = inPlace;
    this.#buffer = spare.pop() ?? new Uint8Array(SMALL_FILE);
  }

  /** Copy `bytes` to `offset` (the caller may reuse `bytes` at once). */
  write(offset: number, bytes: Uint8Array): Promise<void> {
    const buffer = this.#open();
    if (offset + bytes.length > buffer.length) {
      return Promise.reject(new RangeError(`a small file holds at most ${SMALL_FILE} bytes`));
    }
    if (bytes.length === 0) return Promise.resolve();
    buffer.set(bytes, offset);
    const end = offset + bytes.length;
    const last = this.#ranges.at(-1);
    if (last !== undefined && last[1] === offset) last[1] = end;
    else this.#ranges.push([offset, end]);
    return Promise.resolve();
  }

  /** Remember the length, permission bits and time the file gets when it is written. */
  commit(size: number, mode: number, mtime: number): Promise<void> {
    this.#open();
    this.#size = size;
    this.#mode = mode & 0o777;
    this.#mtime = mtime;
    return Promise.resolve();
  }

  /**
   * Write the file under its temporary name and give it `finalPath` (by `link()`, or by rename
   * with `replace`); false when something is at `finalPath` and `replace` is false. Nothing is
   * left under the temporary name when it settles, whatever the outcome. Only the creation is
   * asynchronous (it is what waits on a busy disk); the rest are quick synchronous calls.
   */
  async publish(finalPath: string, replace: boolean): Promise<boolean> {
    const buffer = this.#open();
    this.#buffer = undefined;
    try {
      const file = await SmallFile.open(this.#dir, this.#name, this.#inPlace);
      try {
        for (const [start, end] of this.#ranges) file.write(start, buffer.subarray(start, end));
        file.commit(this.#size, this.#mode, this.#mtime);
        const published = file.publish(finalPath, replace);
        if (!published) file.discard();
        return published;
      } catch (error) {
        file.discard();
        throw error;
      }
    } finally {
      spare.push(buffer);
    }
  }

  /** Drop the gathered data (nothing is on disk before {@link publish}); never throws. */
  discard(): Promise<void> {
    if (this.#buffer !== undefined) spare.push(this.#buffer);
    this.#buffer = undefined;
    return Promise.resolve();
  }

  #open(): Uint8Array {
    if (this.#buffer === undefined) throw new TypeError("BackgroundFile is closed");
    return this.#buffer;
  }
}
