/**
 * The fast path for small regular files: the same protocol as `PartialFile` (exclusive create
 * of a temporary name, data, exact length, time, mode, then `link()` to the final name), but
 * with synchronous calls. A restore of a home folder writes thousands of files of a few KiB;
 * each asynchronous file-system call costs a round trip through Deno's thread pool that is
 * many times the work of the call itself, while a synchronous call on a small file is a few
 * microseconds. Files above {@link SMALL_FILE} keep the asynchronous path, so a large write
 * never holds up the rest of the pipeline.
 *
 * @module
 */

import { errnoCode } from "../fs_errors.ts";
import { createExclusive, LINK_UNSUPPORTED, partialName } from "./_partial_file.ts";

/** Files of at most this many bytes are written with synchronous calls. */
export const SMALL_FILE = 256 * 1024;

/** Create `path` exclusively with `create`, first removing a leftover non-directory there. */
export function createExclusiveSync<T>(path: string, create: () => T): T {
  try {
    return create();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    if (Deno.lstatSync(path).isDirectory) throw error;
    Deno.removeSync(path);
    return create();
  }
}

/** A small file written under a temporary name beside its final one, synchronously. */
export class SmallFile {
  /** Absolute path of the temporary file (the final path when written in place). */
  readonly tempPath: string;
  /** Written under its final name inside a folder being built under a temporary name. */
  readonly #inPlace: boolean;
  #file: Deno.FsFile | undefined;
  #position = 0;
  /** Length of the file so far (the end of the furthest write). */
  #length = 0;

  private constructor(tempPath: string, file: Deno.FsFile, inPlace: boolean) {
    this.tempPath = tempPath;
    this.#file = file;
    this.#inPlace = inPlace;
  }

  /**
   * Create the temporary file for final name `name` in directory `dir` (mode 0600 for now).
   * With `inPlace` (`dir` lies in a folder being built under a temporary name, see
   * `TreeWriterOptions.stageFolders`), the file is created under `name` itself, exclusively:
   * nothing can be there but what this run made, and the folder's rename publishes it.
   */
  static create(dir: string, name: string, inPlace = false): SmallFile {
    const tempPath = `${dir}/${inPlace ? name : partialName(name)}`;
    const create = () => Deno.openSync(tempPath, { write: true, createNew: true, mode: 0o600 });
    return new SmallFile(
      tempPath,
      inPlace ? create() : createExclusiveSync(tempPath, create),
      inPlace,
    );
  }

  /**
   * As {@link create}, but waiting for the creation asynchronously: on a busy disk creating a
   * file is the call that waits (for the journal), and several can wait at once.
   */
  static async open(dir: string, name: string, inPlace = false): Promise<SmallFile> {
    const tempPath = `${dir}/${inPlace ? name : partialName(name)}`;
    const create = () => Deno.open(tempPath, { write: true, createNew: true, mode: 0o600 });
    return new SmallFile(
      tempPath,
      inPlace ? await create() : await createExclusive(tempPath, create),
      inPlace,
    );
  }

  /** Write `bytes` at `offset` (a gap before it stays a hole). */
  write(offset: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const file = this.#open();
    if (offset !== this.#position) file.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
    this.#position = offset + bytes.length;
    this.#length = Math.max(this.#length, this.#position);
  }

  /** Set the length to `size`, then (best effort) the time and permission bits; closes. */
  commit(size: number, mode: number, mtime: number): void {
    const file = this.#open();
    // A new file is exactly as long as its furthest write; only a trailing hole needs a call.
    if (size !== this.#length) file.truncateSync(size);
    try {
      file.utimeSync(mtime, mtime);
    } catch {
      // Best effort: a time the file system cannot store is no reason to lose the data.
    }
    this.#file = undefined;
    file.close();
    try {
      Deno.chmodSync(this.tempPath, mode & 0o777);
    } catch {
      // Best effort, as for the time.
    }
  }

  /** As `PartialFile.publish`: `link()` (never replaces) unless `replace`, then rename. */
  publish(finalPath: string, replace: boolean): boolean {
    if (this.#inPlace) {
      if (finalPath !== this.tempPath) throw new TypeError("SmallFile written in place elsewhere");
      return true;
    }
    if (replace) {
      Deno.renameSync(this.tempPath, finalPath);
      return true;
    }
    try {
      Deno.linkSync(this.tempPath, finalPath);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) return false;
      if (!LINK_UNSUPPORTED.has(errnoCode(error) ?? "")) throw error;
      // No hard links here (vfat, some FUSE): check, then rename.
      if (existsSync(finalPath)) return false;
      Deno.renameSync(this.tempPath, finalPath);
      return true;
    }
    Deno.removeSync(this.tempPath);
    return true;
  }

  /** Close the file if open and remove the temporary file; never throws. */
  discard(): void {
    const file = this.#file;
    this.#file = undefined;
    try {
      file?.close();
    } catch {
      // Already closed or failing: removing the name is what matters.
    }
    try {
      Deno.removeSync(this.tempPath);
    } catch {
      // Gone already, or unremovable: nothing more to do from here.
    }
  }

  #open(): Deno.FsFile {
    if (this.#file === undefined) throw new TypeError("SmallFile is closed");
    return this.#file;
  }
}

/** Whether anything (including a dangling symlink) exists at `path`. */
function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
