/**
 * A regular file being restored under a temporary name beside its final one.
 *
 * @module
 */

import { errnoCode, exists } from "../fs_errors.ts";

/** The part of `Deno.FsFile` the writer uses; lets tests stand in a failing or counting file. */
export type OutputFile = Pick<Deno.FsFile, "write" | "seek" | "truncate" | "utime" | "close">;

/** Opens a file for writing; `Deno.open` unless a caller injects another. */
export type OpenFile = (path: string, options: Deno.OpenOptions) => Promise<OutputFile>;

/** Small pieces are gathered (copied) into writes of about this size. */
const WRITE_PIECE = 1 << 20;
/** Pieces at least this large are written as they come: a copy costs more than a write call. */
const DIRECT_WRITE = 64 * 1024;

/** Suffix of temporary names; a leftover one can only be ours, from an interrupted run. */
export const PARTIAL_SUFFIX = ".qubes-recover-partial";

/** Longest file name most Linux file systems accept, in UTF-8 bytes. */
const NAME_MAX = 255;

let fallbackCounter = 0;

/** The temporary name for `name`: `.<name>.qubes-recover-partial`, shortened if too long. */
export function partialName(name: string): string {
  const wanted = `.${name}${PARTIAL_SUFFIX}`;
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most names need no encoding to be sure.
  if (wanted.length * 3 <= NAME_MAX || utf8Length(wanted) <= NAME_MAX) return wanted;
  return `.${Deno.pid}-${++fallbackCounter}${PARTIAL_SUFFIX}`;
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/**
 * Create `path` exclusively (`O_EXCL` never follows a symlink), first removing a leftover file
 * or symlink of that name from an interrupted run.
 */
export async function createExclusive<T>(path: string, create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    const info = await Deno.lstat(path);
    if (info.isDirectory) throw error;
    await Deno.remove(path);
    return await create();
  }
}

/**
 * A file written at arbitrary offsets through one handle, then published under its final name.
 *
 * Small contiguous pieces are gathered (copied) into writes of at most 1 MiB; gaps between pieces are
 * skipped with a seek, so they stay holes. {@link commit} sets the exact logical size with
 * `ftruncate` (a trailing hole stays a hole) and the metadata; {@link publish} renames.
 */
export class PartialFile {
  /** Absolute path of the temporary file. */
  readonly tempPath: string;
  #file: OutputFile | undefined;
  #position = 0;
  /** Small pieces are copied here until written: a caller may reuse its buffer after write. */
  #gather: Uint8Array | undefined;
  #pendingStart = 0;
  #pendingLength = 0;

  private constructor(tempPath: string, file: OutputFile) {
    this.tempPath = tempPath;
    this.#file = file;
  }

  /** Create the temporary file for final name `name` in directory `dir` (mode 0600 for now). */
  static async create(dir: string, name: string, open: OpenFile): Promise<PartialFile> {
    const tempPath = `${dir}/${partialName(name)}`;
    const file = await createExclusive(
      tempPath,
      () => open(tempPath, { write: true, createNew: true, mode: 0o600 }),
    );
    return new PartialFile(tempPath, file);
  }

  /**
   * Write `bytes` at logical `offset`. When the promise resolves, `bytes` is no longer needed
   * (small pieces are copied into the gathering buffer, large ones written).
   */
  async write(offset: number, bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    if (
      this.#pendingLength > 0 &&
      (offset !== this.#pendingStart + this.#pendingLength ||
        this.#pendingLength + bytes.length > WRITE_PIECE)
    ) {
      await this.#flush();
    }
    if (bytes.length >= DIRECT_WRITE) {
      await this.#flush();
      await this.#writeAt(offset, bytes);
      return;
    }
    if (this.#pendingLength === 0) this.#pendingStart = offset;
    this.#gather ??= new Uint8Array(WRITE_PIECE);
    this.#gather.set(bytes, this.#pendingLength);
    this.#pendingLength += bytes.length;
    if (this.#pendingLength >= WRITE_PIECE) await this.#flush();
  }

  /**
   * Finish the data: write what is gathered, set the length to `size`, then (best effort) the
   * permission bits `mode & 0o777` and the modification time `mtime` (seconds); closes the file.
   */
  async commit(size: number, mode: number, mtime: number): Promise<void> {
    const file = this.#open();
    await this.#flush();
    await file.truncate(size);
    try {
      await file.utime(mtime, mtime);
    } catch {
      // Best effort: a time the file system cannot store is no reason to lose the data.
    }
    this.#file = undefined;
    file.close();
    try {
      await Deno.chmod(this.tempPath, mode & 0o777);
    } catch {
      // Best effort, as for the time.
    }
  }

  /**
   * Move the committed file to `finalPath`. With `replace`, an existing non-directory there is
   * replaced atomically by rename (which never follows a symlink). Without it, the file is
   * published with `link()`, which fails rather than replace anything; returns false when
   * `finalPath` exists (the temporary file is then still there: call {@link discard}).
   */
  async publish(finalPath: string, replace: boolean): Promise<boolean> {
    if (replace) {
      await Deno.rename(this.tempPath, finalPath);
      return true;
    }
    try {
      await Deno.link(this.tempPath, finalPath);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) return false;
      if (!LINK_UNSUPPORTED.has(errnoCode(error) ?? "")) throw error;
      // No hard links here (vfat, some FUSE): check, then rename.
      if (await exists(finalPath)) return false;
      await Deno.rename(this.tempPath, finalPath);
      return true;
    }
    await Deno.remove(this.tempPath);
    return true;
  }

  /** Close the file if open and remove the temporary file; never throws. */
  async discard(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    this.#gather = undefined;
    this.#pendingLength = 0;
    try {
      file?.close();
    } catch {
      // Already closed or failing: removing the name is what matters.
    }
    try {
      await Deno.remove(this.tempPath);
    } catch {
      // Gone already, or unremovable: nothing more to do from here.
    }
  }

  #open(): OutputFile {
    if (this.#file === undefined) throw new TypeError("PartialFile is closed");
    return this.#file;
  }

  async #flush(): Promise<void> {
    if (this.#pendingLength === 0) return;
    const length = this.#pendingLength;
    this.#pendingLength = 0;
    await this.#writeAt(this.#pendingStart, this.#gather!.subarray(0, length));
  }

  async #writeAt(offset: number, bytes: Uint8Array): Promise<void> {
    const file = this.#open();
    if (offset !== this.#position) await file.seek(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
    this.#position = offset + bytes.length;
  }
}

/** `link()` failures that mean "this file system has no hard links", not "it exists". */
export const LINK_UNSUPPORTED = new Set([
  "EPERM",
  "ENOTSUP",
  "EOPNOTSUPP",
  "EXDEV",
  "EMLINK",
  "ENOSYS",
]);
