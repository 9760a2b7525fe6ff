/**
 * Random access to the bytes of a disk image: a whole file or a window of it (a partition).
 *
 * @module
 */

import { ImageDamage } from "./damage.ts";

/** Bytes that can be read at any offset: an image file or a partition inside one. */
export interface ByteSource {
  /** Size in bytes. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `offset`.
   *
   * @throws {ImageDamage} When the range lies outside the source.
   */
  readAt(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Reads exactly `target.length` bytes at `offset` into `target` (a buffer the caller reuses).
   *
   * @throws {ImageDamage} When the range lies outside the source.
   */
  readInto(offset: number, target: Uint8Array): Promise<void>;
  /**
   * The `length` bytes at `offset` as a view into a window of the image this source keeps, or
   * undefined when the caller should read them itself ({@link readInto}). A window is read
   * only where a view follows on from the last one (a tree's small files often lie one after
   * the other, a few bytes of their last blocks apart): one read then serves many files. The
   * view is valid until the next `view` call.
   *
   * @throws {ImageDamage} When the range lies outside the source.
   */
  view?(offset: number, length: number): Uint8Array | undefined;
}

/** Bytes of a window read for {@link ByteSource.view}. */
export const VIEW_WINDOW = 512 << 10;
/** A view that starts at most this far after the last one still counts as following on. */
const VIEW_GAP = 64 << 10;

/** Largest single read the reader ever asks for (one directory or data run piece). */
export const MAX_READ = 8 << 20;

/**
 * A {@link ByteSource} over an open file; reads with `seek` + `read`, synchronously: reading
 * the image is a stream of small reads (inode tables, tree nodes, files of a few KiB) from the
 * page cache, where an asynchronous call's trip through the thread pool costs more than the
 * read itself.
 */
export class FileSource implements ByteSource {
  readonly size: number;
  readonly #file: Deno.FsFile;
  /** Where the next read starts without a seek; -1 when not known. */
  #position = -1;
  /** The window of {@link view}: its bytes, where they start, how many are valid. */
  #window: Uint8Array | undefined;
  #windowStart = 0;
  #windowLength = 0;
  /** Where the last view ended. */
  #viewEnd = -1;

  private constructor(file: Deno.FsFile, size: number) {
    this.#file = file;
    this.size = size;
  }

  /** Opens `path` read-only (never written, never mounted). */
  static async open(path: string): Promise<FileSource> {
    const file = await Deno.open(path, { read: true });
    try {
      const info = await file.stat();
      if (info.isDirectory) {
        throw new ImageDamage({ reason: "damaged", detail: "it is a directory, not an image" });
      }
      // A block device (a VM's volume, a partition, a loop device) has no size of its own in
      // its status; its end is where a seek to the end lands.
      const size = info.isBlockDevice ? await file.seek(0, Deno.SeekMode.End) : info.size;
      return new FileSource(file, size);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  readAt(offset: number, length: number): Promise<Uint8Array> {
    try {
      checkRange(offset, length, this.size);
      const buffer = new Uint8Array(length);
      this.#read(offset, buffer);
      return Promise.resolve(buffer);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  readInto(offset: number, target: Uint8Array): Promise<void> {
    try {
      checkRange(offset, target.length, this.size);
      this.#read(offset, target);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  view(offset: number, length: number): Uint8Array | undefined {
    checkRange(offset, length, this.size);
    // Files end mid-block: the next one "follows" when it starts a little after the last view.
    const follows = offset >= this.#viewEnd && offset - this.#viewEnd <= VIEW_GAP;
    this.#viewEnd = offset + length;
    const start = offset - this.#windowStart;
    if (start >= 0 && start + length <= this.#windowLength) {
      return this.#window!.subarray(start, start + length);
    }
    if (!(follows || (start >= 0 && start < this.#windowLength)) || length > VIEW_WINDOW) {
      return undefined;
    }
    this.#window ??= new Uint8Array(VIEW_WINDOW);
    const n = Math.min(VIEW_WINDOW, this.size - offset);
    this.#windowLength = 0;
    this.#read(offset, this.#window.subarray(0, n));
    this.#windowStart = offset;
    this.#windowLength = n;
    return this.#window.subarray(0, length);
  }

  #read(offset: number, buffer: Uint8Array): void {
    // Unknown while a read is under way: a failed one leaves the position anywhere.
    const position = this.#position;
    this.#position = -1;
    if (offset !== position) this.#file.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < buffer.length) {
      const n = this.#file.readSync(buffer.subarray(done));
      if (n === null) {
        throw new ImageDamage({
          reason: "damaged",
          detail: `the image ends at byte ${offset + done}`,
        });
      }
      done += n;
    }
    this.#position = offset + done;
  }

  /** Closes the file. */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // Already closed.
    }
  }
}

/** A window `[start, start + size)` of another source: a partition. */
export class SliceSource implements ByteSource {
  readonly size: number;
  readonly #inner: ByteSource;
  readonly #start: number;

  constructor(inner: ByteSource, start: number, size: number) {
    if (start < 0 || size < 0 || start + size > inner.size) {
      throw new ImageDamage({
        reason: "damaged",
        detail: `the partition at byte ${start} (${size} bytes) lies beyond the end of the image`,
      });
    }
    this.#inner = inner;
    this.#start = start;
    this.size = size;
  }

  readAt(offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length, this.size);
    return this.#inner.readAt(this.#start + offset, length);
  }

  readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(offset, target.length, this.size);
    return this.#inner.readInto(this.#start + offset, target);
  }

  view(offset: number, length: number): Uint8Array | undefined {
    checkRange(offset, length, this.size);
    return this.#inner.view?.(this.#start + offset, length);
  }
}

/** A {@link ByteSource} over bytes in memory (tests, the fuzzer). */
export class MemorySource implements ByteSource {
  readonly size: number;
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.size = bytes.length;
  }

  readAt(offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length, this.size);
    return Promise.resolve(this.#bytes.slice(offset, offset + length));
  }

  readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(offset, target.length, this.size);
    target.set(this.#bytes.subarray(offset, offset + target.length));
    return Promise.resolve();
  }
}

function checkRange(offset: number, length: number, size: number): void {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
    length > MAX_READ || offset + length > size
  ) {
    throw new ImageDamage({
      reason: "damaged",
      detail: `a block at byte ${offset} lies outside the image (${size} bytes)`,
    });
  }
}
