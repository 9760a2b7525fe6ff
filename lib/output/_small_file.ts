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

import { errnoCode, existsSync } from "../fs_errors.ts";
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

/**
 * A file created in place: inside a folder being built under a temporary name (see
 * `TreeWriterOptions.stageFolders`), with the permission bits it will have.
 */
export interface InPlace {
  mode: number;
}

/**
 * The permission bits a file created here keeps (`0o777` less the umask, or what a default ACL
 * allows), learnt once from a probe file in the first folder built in place: Deno's own
 * `umask()` and /proc/self/status need permissions the release does not grant. 0 when unknown.
 */
let creatable: number | undefined;

function creatableBits(dir: string): number {
  if (creatable === undefined) {
    creatable = 0;
    const probe = `${dir}/.qubes-recover-mode-probe`;
    try {
      const file = Deno.openSync(probe, { write: true, createNew: true, mode: 0o777 });
      try {
        creatable = file.statSync().mode! & 0o777;
      } finally {
        file.close();
        Deno.removeSync(probe);
      }
    } catch {
      // Unknown: every file is created 0600 and given its mode after.
    }
  }
  return creatable;
}

/**
 * The mode to create a file with that is to get permission bits `inPlace.mode`, and whether it
 * gets exactly those (then no `chmod` is needed after).
 */
function createMode(dir: string, inPlace: InPlace | undefined): { mode: number; exact: boolean } {
  if (inPlace === undefined) return { mode: 0o600, exact: false };
  const mode = inPlace.mode & 0o777;
  // Owner read and write are needed while writing; every other bit must survive creation.
  return (mode & 0o600) !== 0o600 || (mode & ~creatableBits(dir)) !== 0
    ? { mode: 0o600, exact: false }
    : { mode, exact: true };
}

/** A small file written under a temporary name beside its final one, synchronously. */
export class SmallFile {
  /** Absolute path of the temporary file (the final path when written in place). */
  readonly tempPath: string;
  /** Written under its final name inside a folder being built under a temporary name. */
  readonly #inPlace: boolean;
  /** The permission bits it was created with. */
  readonly #mode: number;
  #file: Deno.FsFile | undefined;
  #position = 0;
  /** Length of the file so far (the end of the furthest write). */
  #length = 0;

  private constructor(
    tempPath: string,
    file: Deno.FsFile,
    inPlace: boolean,
    created: { mode: number; exact: boolean },
  ) {
    this.tempPath = tempPath;
    this.#file = file;
    this.#inPlace = inPlace;
    this.#mode = created.exact ? created.mode : -1;
  }

  /**
   * Create the temporary file for final name `name` in directory `dir` (mode 0600 for now).
   * With `inPlace`, the file is created under `name` itself, exclusively (nothing can be there
   * but what this run made, and the folder's rename publishes it), with its final permission
   * bits when the umask lets them through.
   */
  static create(dir: string, name: string, inPlace?: InPlace): SmallFile {
    const tempPath = `${dir}/${inPlace ? name : partialName(name)}`;
    const created = createMode(dir, inPlace);
    const options = { write: true, createNew: true, mode: created.mode };
    const create = () => Deno.openSync(tempPath, options);
    return new SmallFile(
      tempPath,
      inPlace ? create() : createExclusiveSync(tempPath, create),
      inPlace !== undefined,
      created,
    );
  }

  /**
   * As {@link create}, but waiting for the creation asynchronously: on a busy disk creating a
   * file is the call that waits (for the journal), and several can wait at once.
   */
  static async open(dir: string, name: string, inPlace?: InPlace): Promise<SmallFile> {
    const tempPath = `${dir}/${inPlace ? name : partialName(name)}`;
    const created = createMode(dir, inPlace);
    const options = { write: true, createNew: true, mode: created.mode };
    const create = () => Deno.open(tempPath, options);
    return new SmallFile(
      tempPath,
      inPlace ? await create() : await createExclusive(tempPath, create),
      inPlace !== undefined,
      created,
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
    if ((mode & 0o777) === this.#mode) return;
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
