/**
 * What {@link TreeWriter} does to a file system, behind one interface: the real one for
 * `restore`, and a virtual one for `verify`, which records names and kinds and keeps no data.
 * `verify` thereby runs every check `restore` runs, in the same code, against what a restore
 * into an empty folder would meet.
 *
 * @module
 */

import { createExclusive, type OpenFile, PARTIAL_SUFFIX, PartialFile } from "./_partial_file.ts";
import { type InPlace, SMALL_FILE, SmallFile } from "./_small_file.ts";
import { BackgroundFile, CreatePace } from "./_background_file.ts";
import { WriteWorker } from "./_worker_file.ts";
import { chownAll, type Owner } from "./write_worker.ts";

/** What `lstat` tells the writer. */
export interface NodeInfo {
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
}

/** A file being written under a temporary name (see `PartialFile`). */
export interface SinkFile {
  /**
   * Whether {@link publish} works in the background (see `BackgroundFile`): the writer may go
   * on before it settles, and must wait for it before it finishes.
   */
  readonly background?: boolean;
  /** How many background files the writer may have in flight (default `BACKGROUND_WINDOW`). */
  readonly window?: number;
  /** Write `bytes` at `offset`; the caller may reuse `bytes` once this resolves. */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Where this file keeps its bytes `offset` to `offset + length` until it is written, if it
   * keeps them in memory: the caller may fill that array and then {@link write} it, which
   * copies nothing (`DataTarget` in tree_writer.ts).
   */
  target?(offset: number, length: number): Uint8Array | undefined;
  commit(size: number, mode: number, mtime: number): Promise<void>;
  /** Gives the file its final name; false when something is there and `replace` is false. */
  publish(finalPath: string, replace: boolean): Promise<boolean>;
  discard(): Promise<void>;
}

/** The file-system operations of a restore. Errors are Deno's (`Deno.errors.AlreadyExists`...). */
export interface WriterFs {
  mkdirAll(path: string): Promise<void>;
  /** The node at `path` (links not followed), or undefined when there is none. */
  lstat(path: string): Promise<NodeInfo | undefined>;
  mkdir(path: string, mode?: number): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  link(existing: string, path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** Creates `path` with `create`, first removing a non-directory left there by a crash. */
  createExclusive<T>(path: string, create: () => Promise<T>): Promise<T>;
  /**
   * Opens `dir/<temporary name>` for the file `name`, which will hold `size` bytes. With
   * `inPlace`, `dir` lies inside a folder built under a temporary name (see
   * `TreeWriterOptions.stageFolders`): a small file may then be created as `dir/name` itself,
   * with its permission bits `inPlace.mode`.
   */
  createFile(dir: string, name: string, size: number, inPlace?: InPlace): Promise<SinkFile>;
  /**
   * Makes an empty folder (mode 0700) in `dir` under a new temporary name for the folder
   * `name`, and returns its path.
   */
  makeStagingDir(dir: string, name: string): Promise<string>;
  /** Removes `path` and everything below it (links are removed, never followed). */
  removeTree(path: string): Promise<void>;
  /** Gives a directory its mode and time (best effort). */
  setDirectoryMeta(path: string, mode: number, mtime: number): Promise<void>;
}

/**
 * The real file system; temporary files are opened with `open` (`Deno.open` by default).
 * Metadata calls and small files (see `SmallFile`) are synchronous: each is a few
 * microseconds, far less than an asynchronous call's trip through the thread pool.
 */
export function realFs(open: OpenFile = Deno.open): WriterFs {
  return {
    mkdirAll: (path) => Deno.mkdir(path, { recursive: true }),
    lstat: (path) =>
      sync(() => {
        try {
          return Deno.lstatSync(path);
        } catch (error) {
          if (error instanceof Deno.errors.NotFound) return undefined;
          throw error;
        }
      }),
    mkdir: (path, mode) => sync(() => Deno.mkdirSync(path, mode === undefined ? {} : { mode })),
    symlink: (target, path) => sync(() => Deno.symlinkSync(target, path)),
    link: (existing, path) => sync(() => Deno.linkSync(existing, path)),
    rename: (from, to) => sync(() => Deno.renameSync(from, to)),
    remove: (path) => sync(() => Deno.removeSync(path)),
    createExclusive,
    createFile: (dir, name, size, inPlace) =>
      open === Deno.open && size <= SMALL_FILE
        ? sync(() => smallSink(SmallFile.create(dir, name, inPlace)))
        : PartialFile.create(dir, name, open),
    makeStagingDir: (dir, name) =>
      sync(() => Deno.makeTempDirSync({ dir, prefix: `.${name}.`, suffix: PARTIAL_SUFFIX })),
    removeTree: (path) => Deno.remove(path, { recursive: true }),
    setDirectoryMeta(path, mode, mtime) {
      return sync(() => {
        if (!Deno.lstatSync(path).isDirectory) return;
        Deno.chmodSync(path, mode & 0o777);
        Deno.utimeSync(path, mtime, mtime);
      });
    },
  };
}

/**
 * The real file system, with small files written in the background, several at a time, when
 * creating them one after the other has become slow (see `CreatePace`, `BackgroundFile`): for
 * `files get`, whose trees hold thousands of small files. With `always`, every small file goes to
 * the background (for tests).
 */
export function backgroundFs(options: { always?: boolean } = {}): WriterFs {
  const fs = realFs();
  const pace = new CreatePace();
  let created = 0;
  return {
    ...fs,
    createFile(dir, name, size, inPlace) {
      if (size > SMALL_FILE) return fs.createFile(dir, name, size);
      if (options.always || pace.background()) {
        return Promise.resolve(new BackgroundFile(dir, name, inPlace));
      }
      return sync(() => {
        // Reading the clock is a call too: every fourth create is timed.
        if ((++created & 3) !== 0) return smallSink(SmallFile.create(dir, name, inPlace));
        const started = performance.now();
        const file = SmallFile.create(dir, name, inPlace);
        pace.record(performance.now() - started);
        return smallSink(file);
      });
    },
  };
}

/**
 * The real file system, with small files written by a worker on another core (see
 * `WriteWorker`); while the worker has every buffer, on this thread as {@link realFs} writes
 * them; where no worker can run, as {@link backgroundFs} writes them: for `files get`. `close`
 * stops the worker once the writer is done.
 */
export function workerFs(): WriterFs & {
  /**
   * Gives each node its owner with `lchown` (as root; best effort): half on the worker, half
   * on this thread at the same time.
   */
  chown(owners: Owner[]): Promise<void>;
  close(): void;
} {
  const fs = backgroundFs();
  // Not in the background: a background file would make the writer wait until fewer than
  // `BACKGROUND_WINDOW` files are in flight, the worker's included.
  const here = realFs();
  const worker = WriteWorker.start();
  let ready: boolean | undefined;
  return {
    ...fs,
    async createFile(dir, name, size, inPlace) {
      if (size > SMALL_FILE || worker === undefined) return fs.createFile(dir, name, size, inPlace);
      ready ??= await worker.ready;
      if (!ready) return fs.createFile(dir, name, size, inPlace);
      // With every buffer at the worker, this thread writes the file itself, synchronously.
      return worker.file(dir, name, size, inPlace) ?? here.createFile(dir, name, size, inPlace);
    },
    async chown(owners) {
      if (worker !== undefined) ready ??= await worker.ready;
      const half = ready ? owners.length >> 1 : 0;
      const theirs = half > 0 ? worker!.chown(owners.slice(half)) : undefined;
      chownAll(half > 0 ? owners.slice(0, half) : owners);
      // The worker stopped: its half is done here.
      await theirs?.catch(() => chownAll(owners.slice(half)));
    },
    close: () => worker?.close(),
  };
}

/** A {@link SinkFile} over a synchronous {@link SmallFile}. */
function smallSink(file: SmallFile): SinkFile {
  return {
    write: (offset, bytes) => sync(() => file.write(offset, bytes)),
    commit: (size, mode, mtime) => sync(() => file.commit(size, mode, mtime)),
    publish: (finalPath, replace) => sync(() => file.publish(finalPath, replace)),
    discard: () => sync(() => file.discard()),
  };
}

/** The result of a synchronous call as a promise (a throw becomes a rejection). */
function sync<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

type Kind = "file" | "directory" | "symlink";

/**
 * A file system in memory that keeps names and kinds only: data is checked by the writer and
 * dropped. By default it starts empty: `verify` sees what a restore into a new folder would.
 * With `readThrough`, a path it has not made (or removed) is looked up on the real file system,
 * which is never written: `restore --dry-run` then meets what is in the output folder (a file
 * where a folder goes, a folder where a file goes, a link) exactly as the restore would.
 */
export class VirtualFs implements WriterFs {
  readonly #nodes = new Map<string, Kind>();
  /** Real paths removed here (with what is below them), when reading through. */
  readonly #removed = new Set<string>();
  readonly #readThrough: boolean;

  constructor(options: { readThrough?: boolean } = {}) {
    this.#readThrough = options.readThrough ?? false;
  }

  /** What is at `path`: made here, else (reading through) on disk, links not followed. */
  #kind(path: string): Kind | undefined {
    const made = this.#nodes.get(path);
    if (made !== undefined || !this.#readThrough || this.#hidden(path)) return made;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch (error) {
      // Nothing there, or a file where a folder of the path would be (the writer meets that
      // file itself, as it walks the path from the top).
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
        return undefined;
      }
      throw error;
    }
    // Anything that is neither a folder nor a link (a FIFO, a device) stands in the way as a
    // file does.
    return info.isDirectory ? "directory" : info.isSymlink ? "symlink" : "file";
  }

  /** Whether `path`, or a folder above it, was removed here. */
  #hidden(path: string): boolean {
    if (this.#removed.size === 0) return false;
    for (let at = path; at !== ""; at = at.slice(0, Math.max(at.lastIndexOf("/"), 0))) {
      if (this.#removed.has(at)) return true;
    }
    return false;
  }

  #forget(path: string): void {
    this.#nodes.delete(path);
    if (this.#readThrough) this.#removed.add(path);
  }

  mkdirAll(path: string): Promise<void> {
    this.#nodes.set(path, "directory");
    return Promise.resolve();
  }

  lstat(path: string): Promise<NodeInfo | undefined> {
    return sync(() => {
      const kind = this.#kind(path);
      return kind === undefined ? undefined : {
        isFile: kind === "file",
        isDirectory: kind === "directory",
        isSymlink: kind === "symlink",
      };
    });
  }

  mkdir(path: string): Promise<void> {
    return this.#create(path, "directory");
  }

  symlink(_target: string, path: string): Promise<void> {
    return this.#create(path, "symlink");
  }

  link(existing: string, path: string): Promise<void> {
    if (this.#kind(existing) !== "file") {
      return Promise.reject(new Deno.errors.NotFound(`No such file: ${existing}`));
    }
    return this.#create(path, "file");
  }

  rename(from: string, to: string): Promise<void> {
    const kind = this.#kind(from);
    if (kind === undefined) {
      return Promise.reject(new Deno.errors.NotFound(`No such file: ${from}`));
    }
    this.#forget(from);
    this.#nodes.set(to, kind);
    return Promise.resolve();
  }

  remove(path: string): Promise<void> {
    this.#forget(path);
    return Promise.resolve();
  }

  createExclusive<T>(_path: string, create: () => Promise<T>): Promise<T> {
    return create();
  }

  makeStagingDir(dir: string, name: string): Promise<string> {
    const path = `${dir}/.${name}.${this.#nodes.size}${PARTIAL_SUFFIX}`;
    return this.#create(path, "directory").then(() => path);
  }

  removeTree(path: string): Promise<void> {
    for (const node of [...this.#nodes.keys()]) {
      if (node === path || node.startsWith(`${path}/`)) this.#nodes.delete(node);
    }
    if (this.#readThrough) this.#removed.add(path);
    return Promise.resolve();
  }

  createFile(): Promise<SinkFile> {
    return Promise.resolve({
      write: () => Promise.resolve(),
      commit: () => Promise.resolve(),
      publish: (finalPath: string, replace: boolean) =>
        sync(() => {
          if (this.#kind(finalPath) !== undefined && !replace) return false;
          this.#nodes.set(finalPath, "file");
          return true;
        }),
      discard: () => Promise.resolve(),
    });
  }

  setDirectoryMeta(): Promise<void> {
    return Promise.resolve();
  }

  #create(path: string, kind: Kind): Promise<void> {
    return sync(() => {
      if (this.#kind(path) !== undefined) {
        throw new Deno.errors.AlreadyExists(`File exists: ${path}`);
      }
      const parent = path.slice(0, path.lastIndexOf("/"));
      if (parent !== "" && this.#kind(parent) !== "directory") {
        throw new Deno.errors.NotFound(`No such directory: ${parent}`);
      }
      this.#nodes.set(path, kind);
    });
  }
}
