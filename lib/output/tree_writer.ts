/**
 * The writer at the end of `restore`: turns inner tar events into files under an output folder.
 *
 * @module
 */

import {
  DamagedError,
  IncompleteError,
  InterruptedError,
  OutputError,
  RecoverError,
  UnsupportedError,
} from "../errors.ts";
import type { TarEntry, TarEvent } from "../tar/mod.ts";
import { describeFsError, toOutputError } from "../fs_errors.ts";
import { BACKGROUND_WINDOW } from "./_background_file.ts";
import { type OpenFile, partialName } from "./_partial_file.ts";
import { safeRelativePath } from "./safe_path.ts";
import { realFs, type SinkFile, type WriterFs } from "./writer_fs.ts";

export type { OpenFile, OutputFile } from "./_partial_file.ts";

/** Options of {@link TreeWriter}. */
export interface TreeWriterOptions {
  /** Output directory (created if missing). */
  root: string;
  /** Allow replacing existing files (never follows or writes through symlinks anyway). */
  force?: boolean;
  /** Map an inner tar member name to an output-relative path, or undefined to skip the member (its data is still consumed). */
  mapName: (memberName: string) => string | undefined;
  /**
   * The output-relative path of a member that `mapName` skipped because its file is in the
   * output folder already (`restore --skip-existing`): a hard link to that member is made to
   * the file there, as `tar --skip-old-files` does (only a regular file reached through real
   * folders). Without it, a hard link to a skipped member is refused.
   */
  kept?: (memberName: string) => string | undefined;
  /** Called after each regular file is complete under its final name, for progress/reporting. */
  onFileDone?: (path: string, size: number) => void;
  /** Called for each member that is not restored because of its kind (device, FIFO). */
  onSkipped?: (path: string, reason: string) => void;
  /** Opens the temporary files; `Deno.open` by default. For tests and special targets. */
  openFile?: OpenFile;
  /** The file system written to: the real one (default) or a `VirtualFs` for `verify`. */
  fs?: WriterFs;
  /** What earlier writers of the same command made; shared so a name made twice is seen. */
  run?: OutputRun;
  /**
   * Build each folder that is not there yet (and is not inside one being built) under a
   * temporary name beside it, `.<name>.<random>.qubes-recover-partial` (mode 0700), and rename
   * it into place when the run ends, also when it is interrupted or fails (then with only its
   * complete files). An empty folder of the final name is made first to hold the name: the
   * rename replaces only that empty folder and fails on anything else. Inside, small files are
   * created under their own names: one directory change per file instead of three
   * (temporary name, link, unlink). For `files get`.
   */
  stageFolders?: boolean;
}

/**
 * The largest file restored: 16 TiB, the largest file ext4 (4 KiB blocks) holds. No Qubes
 * image comes near it; a member claiming more is refused before anything is written, by
 * `restore` and `verify` alike, instead of failing on the file system's own limit.
 */
export const MAX_FILE_SIZE = 16 * 1024 ** 4;

/** The names one command (all items of a restore or verify) has made in the output. */
export class OutputRun {
  /** Output-relative path -> what was made there. */
  readonly made = new Map<string, "file" | "directory" | "symlink">();
}

/** Metadata to give a directory this run created, applied when the stream closes. */
interface DirectoryMeta {
  /** Output-relative path; where it is on disk depends on the folders being built. */
  rel: string;
  depth: number;
  mode?: number;
  mtime?: number;
}

/** The member being written; `undefined` between members. */
type Current =
  | { kind: "ignore" }
  | {
    kind: "file";
    rel: string;
    path: string;
    entry: TarEntry;
    file: SinkFile;
    replace: boolean;
  };

/**
 * A `WritableStream<TarEvent>` that restores members under `root`.
 *
 * Creates regular files (sparse: holes are seeked over and the length set exactly, so holes
 * stay holes), directories, symlinks (as stored, never followed, targets not rewritten: spec
 * T14/T15) and hard links (only to files restored earlier in this run); devices and FIFOs are
 * skipped. A file is written under `.<name>.qubes-recover-partial` and renamed only once
 * complete; on error or abort that temporary file is removed. Nothing existing is replaced
 * unless `force` (and then only files and symlinks, by rename). Every parent is checked with
 * `lstat`: a symlink on the way is refused, so nothing lands outside `root`. Directory modes
 * and times are applied when the stream closes.
 *
 * Errors: {@link DamagedError} for an unsafe name, a symlink parent, a bad hard link, data
 * beyond a member's size; {@link OutputError} when the target exists or the disk refuses
 * (`Cannot write "work/private.img": no space left on device`); {@link IncompleteError} when the
 * stream closes inside a member.
 *
 * @example
 * ```ts
 * const writer = new TreeWriter({ root: "out", mapName: (name) => name });
 * await tarEvents.pipeTo(writer);
 * ```
 */
export class TreeWriter extends WritableStream<TarEvent> {
  readonly #restorer: TreeRestorer;

  /** Build a writer; `root` is created when the stream starts. */
  constructor(options: TreeWriterOptions) {
    const restorer = new TreeRestorer(options);
    super({
      start: () => restorer.start(),
      write: (event) => restorer.write(event),
      close: () => restorer.close(),
      abort: () => restorer.abort(),
    });
    this.#restorer = restorer;
  }

  /** Output-relative paths of the members restored so far, in order. */
  get restored(): readonly string[] {
    return this.#restorer.restored;
  }
}

/** How often {@link writeTree} lets the event loop run (signals, timers), in milliseconds. */
const YIELD_EVERY_MS = 20;

/**
 * Where {@link writeTree} gets its events: an async iterable, or a function that hands them to
 * `write` one after the other, awaiting each (no generator steps in between: `files get`).
 */
export type TarEventSource =
  | AsyncIterable<TarEvent>
  | ((write: (event: TarEvent) => Promise<void>, target: DataTarget) => Promise<void>);

/**
 * Where the current file will keep its bytes `offset` to `offset + length`, for the source to
 * read them into directly (then hand that same array to `write` in a `data` event, which copies
 * nothing); undefined when the file has no such place (write the bytes as usual).
 */
export type DataTarget = (offset: number, length: number) => Uint8Array | undefined;

/**
 * Restores `events` as piping them into a {@link TreeWriter} would, without the stream
 * machinery: for sources of many small members (`files get`), whose steps are otherwise mostly
 * promise hops. Lets the event loop run every few milliseconds, so a signal is seen even when
 * every step completes at once; `signal`'s abort stops it with {@link InterruptedError}.
 *
 * @returns The output-relative paths restored, in order.
 */
export async function writeTree(
  options: TreeWriterOptions,
  events: TarEventSource,
  signal?: AbortSignal,
): Promise<readonly string[]> {
  const restorer = new TreeRestorer(options);
  await restorer.start();
  let yielded = performance.now();
  let count = 0;
  const step = (event: TarEvent): Promise<void> =>
    signal?.aborted ? Promise.reject(new InterruptedError()) : restorer.write(event);
  const write = (event: TarEvent): Promise<void> => {
    // Reading the clock costs a call too: look at it every 64 events.
    if ((++count & 63) !== 0 || performance.now() - yielded <= YIELD_EVERY_MS) return step(event);
    return new Promise((resolve) => setTimeout(resolve, 0)).then(() => {
      yielded = performance.now();
      return step(event);
    });
  };
  try {
    if (typeof events === "function") {
      await events(write, (offset, length) => restorer.dataTarget(offset, length));
    } else for await (const event of events) await write(event);
  } catch (error) {
    await restorer.abort();
    throw error;
  }
  await restorer.close();
  return restorer.restored;
}

/** The state and steps behind {@link TreeWriter}. */
class TreeRestorer {
  readonly restored: string[] = [];
  readonly #options: TreeWriterOptions;
  readonly #root: string;
  readonly #fs: WriterFs;
  readonly #run: OutputRun;
  #current: Current | undefined;
  /** Path of the member being handled, for error messages. */
  #currentRel = "";
  /** Output-relative paths known to be real directories (not symlinks) during this run. */
  readonly #knownDirectories = new Set<string>([""]);
  /** Directories this run created, by output-relative path. */
  readonly #createdDirectories = new Map<string, DirectoryMeta>();
  /** Regular files restored in this run: the only allowed hard-link targets. */
  readonly #restoredFiles = new Set<string>();
  /** Files being published in the background (see `BackgroundFile`), by output-relative path. */
  readonly #inFlight = new Map<string, Promise<void>>();
  /** Wakes a writer waiting for room among the files in flight (see `#end`). */
  #roomWaiter: (() => void) | undefined;
  /** The first failure of a file published in the background. */
  #failure: unknown;
  /** Folders being built under a temporary name (see `stageFolders`), by output-relative path. */
  readonly #staged = new Map<string, { temp: string; final: string }>();
  /** Whether {@linkcode abort} ran. */
  #aborted = false;

  constructor(options: TreeWriterOptions) {
    this.#options = options;
    this.#root = options.root.length > 1 ? options.root.replace(/\/+$/, "") : options.root;
    this.#fs = options.fs ?? realFs(options.openFile);
    this.#run = options.run ?? new OutputRun();
  }

  async start(): Promise<void> {
    try {
      await this.#fs.mkdirAll(this.#root);
    } catch (error) {
      throw toOutputError(error, this.#root);
    }
  }

  async write(event: TarEvent): Promise<void> {
    try {
      switch (event.type) {
        case "entry":
          if (this.#current !== undefined) throw new TypeError("TarEvent entry inside a member");
          this.#currentRel = event.entry.name;
          this.#current = await this.#begin(event.entry);
          return;
        case "data":
          await this.#data(event.offset, event.bytes);
          return;
        case "end":
          await this.#end();
          return;
      }
    } catch (error) {
      // The stream ends with this error (a writable stream's sink is not aborted after a
      // failed write): the folders get their modes here.
      await this.abort();
      throw error instanceof RecoverError ? error : toOutputError(error, this.#currentRel);
    }
  }

  async close(): Promise<void> {
    try {
      const current = this.#current;
      if (current !== undefined) {
        await this.#discard();
        await this.#drain();
        if (current.kind === "file") {
          throw new IncompleteError({
            reason: "truncated",
            action: "restore",
            subject: { kind: "file", name: current.rel },
            detail: "the backup ends inside it",
          });
        }
      }
      await this.#drain();
      this.#throwFailure();
    } catch (error) {
      await this.#unstage().catch(() => {});
      await this.#applyDirectoryMeta({ resumable: true });
      throw error;
    }
    await this.#unstage();
    await this.#applyDirectoryMeta();
  }

  async abort(): Promise<void> {
    // Once: a failed write aborts here, and `writeTree` aborts after it again.
    if (this.#aborted) return;
    this.#aborted = true;
    await this.#discard();
    await this.#drain();
    await this.#unstage().catch(() => {});
    await this.#applyDirectoryMeta({ resumable: true });
  }

  /**
   * Renames the folders built under temporary names into place (every file in them is
   * complete by now). One that cannot be renamed (its name was taken meanwhile by something
   * other than the empty folder this run made) is removed, and the first such failure thrown.
   */
  async #unstage(): Promise<void> {
    let failure: unknown;
    for (const [rel, { temp, final }] of this.#staged) {
      this.#staged.delete(rel);
      try {
        await this.#fs.rename(temp, final);
      } catch (error) {
        await this.#fs.removeTree(temp).catch(() => {});
        failure ??= new OutputError({
          reason: "in-the-way",
          action: "restore",
          subject: { kind: "file", name: rel },
          detail: `something else took its name in the output folder while it was written (${
            describeFsError(error)
          })`,
        }, { cause: error });
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** Wait until no file is being published in the background (failures are kept). */
  async #drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight.values());
  }

  #throwFailure(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Bookkeeping once the file at `rel` has its final name. */
  #published(rel: string, size: number): void {
    this.#run.made.set(rel, "file");
    this.#restoredFiles.add(rel);
    this.restored.push(rel);
    this.#options.onFileDone?.(rel, size);
  }

  async #discard(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (current?.kind === "file") await current.file.discard();
  }

  async #begin(entry: TarEntry): Promise<Current> {
    this.#throwFailure();
    const mapped = this.#options.mapName(entry.name);
    if (mapped === undefined) return { kind: "ignore" };
    const parts = safeRelativePath(mapped);
    const rel = parts.join("/");
    this.#currentRel = rel;
    if (entry.kind === "other") {
      this.#options.onSkipped?.(rel, `not a file, directory or link (type "${entry.typeflag}")`);
      return { kind: "ignore" };
    }
    const before = this.#run.made.get(rel);
    const selfLink = entry.kind === "hardlink" && this.#linkTarget(entry) === rel;
    if (
      before !== undefined && !selfLink && (before !== "directory" || entry.kind !== "directory")
    ) {
      throw new DamagedError({
        reason: "duplicate",
        action: "restore",
        subject: { kind: "file", name: rel },
        detail: `the backup holds it twice${
          before === "directory" || entry.kind === "directory" ? " (as a folder and not)" : ""
        }`,
      });
    }
    if (entry.kind === "file" && entry.size > MAX_FILE_SIZE) {
      throw new UnsupportedError({
        reason: "unsupported",
        action: "restore",
        subject: { kind: "file", name: rel },
        detail:
          `it claims ${entry.size} bytes, more than the ${MAX_FILE_SIZE} bytes (16 TiB) this tool restores`,
      });
    }
    await this.#ensureParents(parts, rel);
    const dir = this.#abs(parts.slice(0, -1).join("/"));
    const name = parts.at(-1)!;
    const path = `${dir}/${name}`;
    switch (entry.kind) {
      case "directory":
        await this.#makeDirectory(rel, parts.length, entry);
        return { kind: "ignore" };
      case "symlink":
        if (entry.linkname === "" || entry.linkname.includes("\0")) {
          throw new DamagedError({
            reason: "damaged",
            action: "restore",
            subject: { kind: "file", name: rel },
            detail: "its link target is empty",
          });
        }
        await this.#makeLink(rel, dir, name, (at) => this.#fs.symlink(entry.linkname, at));
        this.#run.made.set(rel, "symlink");
        return { kind: "ignore" };
      case "hardlink":
        await this.#makeHardLink(rel, dir, name, entry);
        this.#run.made.set(rel, "file");
        return { kind: "ignore" };
      case "file": {
        const replace = await this.#checkTarget(rel, path);
        const file = await this.#fs.createFile(
          dir,
          name,
          entry.size,
          this.#isStaged(rel) ? { mode: entry.mode } : undefined,
        );
        return { kind: "file", rel, path, entry, file, replace };
      }
    }
  }

  /** See {@link DataTarget}. */
  dataTarget(offset: number, length: number): Uint8Array | undefined {
    const current = this.#current;
    if (current?.kind !== "file" || current.file.target === undefined) return undefined;
    if (offset < 0 || offset + length > current.entry.size) return undefined;
    return current.file.target(offset, length);
  }

  async #data(offset: number, bytes: Uint8Array): Promise<void> {
    const current = this.#current;
    if (current === undefined) throw new TypeError("TarEvent data outside a member");
    if (current.kind !== "file") return;
    if (offset < 0 || offset + bytes.length > current.entry.size) {
      throw new DamagedError({
        reason: "damaged",
        action: "restore",
        subject: { kind: "file", name: current.rel },
        detail: `data at offset ${offset} lies beyond its size ${current.entry.size}`,
      });
    }
    await current.file.write(offset, bytes);
  }

  async #end(): Promise<void> {
    const current = this.#current;
    if (current === undefined) throw new TypeError("TarEvent end outside a member");
    if (current.kind === "file") {
      const { rel, path, entry, file, replace } = current;
      await file.commit(entry.size, entry.mode, entry.mtime);
      if (file.background) {
        // The name is taken now; the file is the background's from here.
        this.#run.made.set(rel, "file");
        this.#current = undefined;
        const job = file.publish(path, replace).then(
          (ok) => {
            if (!ok) throw existsError(rel);
            this.#published(rel, entry.size);
          },
        ).catch((error) => {
          this.#failure ??= error instanceof RecoverError ? error : toOutputError(error, rel);
        }).finally(() => {
          this.#inFlight.delete(rel);
          const wake = this.#roomWaiter;
          this.#roomWaiter = undefined;
          wake?.();
        });
        this.#inFlight.set(rel, job);
        // One waiter woken by the next file to settle: a race over hundreds of files in flight
        // would add a reaction to each of them for every file.
        while (this.#inFlight.size >= (file.window ?? BACKGROUND_WINDOW)) {
          await new Promise<void>((resolve) => this.#roomWaiter = resolve);
        }
        this.#throwFailure();
        return;
      }
      if (!(await file.publish(path, replace))) throw existsError(rel);
      this.#published(rel, entry.size);
    }
    this.#current = undefined;
  }

  /** Make sure every parent of `rel` is a real directory, creating missing ones. */
  async #ensureParents(parts: string[], rel: string): Promise<void> {
    // A folder becomes known only once all of its parents are: a known parent is enough.
    if (parts.length === 1 || this.#knownDirectories.has(rel.slice(0, rel.lastIndexOf("/")))) {
      return;
    }
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (this.#knownDirectories.has(parent)) continue;
      if (this.#inFlight.has(parent)) {
        throw new DamagedError({
          reason: "damaged",
          action: "restore",
          subject: { kind: "file", name: rel },
          detail: `the backup holds "${parent}" as a file`,
        });
      }
      const path = this.#abs(parent);
      let info = await this.#fs.lstat(path);
      if (info === undefined) {
        try {
          await this.#fs.mkdir(path);
          this.#createdDirectories.set(parent, { rel: parent, depth: i });
          this.#knownDirectories.add(parent);
          this.#run.made.set(parent, "directory");
          continue;
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
          info = await this.#fs.lstat(path);
          if (info === undefined) throw error;
        }
      }
      if (info.isSymlink) {
        // A link the backup made is the backup's doing; one that was there is the folder's.
        throw this.#run.made.get(parent) === "symlink"
          ? new DamagedError({
            reason: "unsafe-name",
            action: "restore",
            subject: { kind: "file", name: rel },
            detail: `"${parent}" is a symbolic link`,
          })
          : new OutputError({
            reason: "in-the-way",
            action: "restore",
            subject: { kind: "file", name: rel },
            detail:
              `"${parent}" in the output folder is a symbolic link (nothing is written through links)`,
          });
      }
      if (!info.isDirectory) {
        // Made by this run: the backup holds a file where it also needs a folder.
        throw this.#run.made.has(parent)
          ? new DamagedError({
            reason: "damaged",
            action: "restore",
            subject: { kind: "file", name: rel },
            detail: `the backup holds "${parent}" as a file`,
          })
          : new OutputError({
            reason: "in-the-way",
            action: "restore",
            subject: { kind: "file", name: rel },
            detail: `"${parent}" exists and is not a directory`,
          });
      }
      this.#knownDirectories.add(parent);
    }
  }

  async #makeDirectory(rel: string, depth: number, entry: TarEntry): Promise<void> {
    const path = this.#abs(rel);
    if (!this.#knownDirectories.has(rel)) {
      const info = await this.#fs.lstat(path);
      if (info === undefined) {
        // Owner-writable until the stream closes, so members inside can still be written.
        await this.#fs.mkdir(path, 0o700);
        if (this.#options.stageFolders && !this.#isStaged(rel)) await this.#stage(rel, path);
        this.#createdDirectories.set(rel, { rel, depth });
        this.#run.made.set(rel, "directory");
      } else if (!info.isDirectory) {
        // Never replaced by a folder, with or without --force; --skip-existing keeps it, but
        // the folder's members could not be written: told as in the way either way.
        throw inTheWay(rel, "something that is not a directory");
      }
      this.#knownDirectories.add(rel);
      this.restored.push(rel);
    }
    const meta = this.#createdDirectories.get(rel);
    if (meta !== undefined) {
      meta.mode = entry.mode;
      meta.mtime = entry.mtime;
    }
  }

  /** Create a link `dir/name` with `make`, directly or (when replacing) via a temporary name. */
  async #makeLink(
    rel: string,
    dir: string,
    name: string,
    make: (at: string) => Promise<void>,
  ): Promise<void> {
    const path = `${dir}/${name}`;
    const replace = await this.#checkTarget(rel, path);
    if (replace) {
      const temp = `${dir}/${partialName(name)}`;
      await this.#fs.createExclusive(temp, () => make(temp));
      try {
        await this.#fs.rename(temp, path);
      } catch (error) {
        await this.#fs.remove(temp).catch(() => {});
        throw error;
      }
    } else {
      try {
        await make(path);
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) throw existsError(rel);
        throw error;
      }
    }
    this.restored.push(rel);
  }

  /** The output-relative path a hard link points to (unsafe targets throw). */
  #linkTarget(entry: TarEntry): string | undefined {
    const mapped = this.#options.mapName(entry.linkname);
    return mapped === undefined ? undefined : safeRelativePath(mapped).join("/");
  }

  /**
   * Where hard link `entry` points when its target was left alone because it exists (see
   * `TreeWriterOptions.kept`): that file's output-relative path, once every folder on its way
   * is a real folder (a link there throws, as for a member written there) and it is a regular
   * file; else undefined.
   */
  async #keptTarget(entry: TarEntry): Promise<string | undefined> {
    const kept = this.#options.kept?.(entry.linkname);
    if (kept === undefined) return undefined;
    const parts = safeRelativePath(kept);
    const rel = parts.join("/");
    await this.#ensureParents(parts, rel);
    const info = await this.#fs.lstat(this.#abs(rel));
    return info?.isFile ? rel : undefined;
  }

  async #makeHardLink(rel: string, dir: string, name: string, entry: TarEntry): Promise<void> {
    const target = this.#linkTarget(entry);
    const pending = target === undefined ? undefined : this.#inFlight.get(target);
    if (pending !== undefined) {
      await pending;
      this.#throwFailure();
    }
    if (target === undefined || !this.#restoredFiles.has(target)) {
      const kept = await this.#keptTarget(entry);
      if (kept === undefined) {
        throw new DamagedError({
          reason: "out-of-place",
          action: "restore",
          subject: { kind: "file", name: rel },
          detail: `its hard link target "${entry.linkname}" was not restored before it`,
        });
      }
      await this.#makeLink(rel, dir, name, (at) => this.#fs.link(this.#abs(kept), at));
      this.#restoredFiles.add(rel);
      return;
    }
    if (target === rel) {
      // A link to itself: the file is already there.
      this.restored.push(rel);
      return;
    }
    const targetPath = this.#abs(target);
    await this.#makeLink(rel, dir, name, (at) => this.#fs.link(targetPath, at));
    this.#restoredFiles.add(rel);
  }

  /**
   * Decide what to do about whatever is at `path`: returns false if nothing is there, true if
   * it may be replaced (`force`, and not a directory); throws otherwise.
   */
  async #checkTarget(rel: string, path: string): Promise<boolean> {
    // In a folder this run created, only this run made names, and `run.made` refused a second
    // one already; whatever else might appear meanwhile, the link that publishes never replaces.
    if (this.#createdDirectories.has(rel.slice(0, Math.max(rel.lastIndexOf("/"), 0)))) {
      return false;
    }
    const info = await this.#fs.lstat(path);
    if (info === undefined) return false;
    // A directory is never replaced, and --skip-existing keeps only what a member would
    // replace: neither option helps, so neither is suggested.
    if (info.isDirectory) throw inTheWay(rel, "a directory");
    if (!this.#options.force) throw existsError(rel);
    return true;
  }

  /**
   * Start building the new, empty folder at `rel` (made by this run at `path`, where it holds
   * the name) under a temporary name beside it; when that cannot be made, the folder is
   * written in place as without `stageFolders`.
   */
  async #stage(rel: string, path: string): Promise<void> {
    const cut = path.lastIndexOf("/");
    try {
      const temp = await this.#fs.makeStagingDir(path.slice(0, cut), path.slice(cut + 1));
      this.#staged.set(rel, { temp, final: path });
    } catch {
      // A name too long for a temporary one, say: the files get temporary names instead.
    }
  }

  /** Whether `rel` lies inside (or is) a folder being built under a temporary name. */
  #isStaged(rel: string): boolean {
    return this.#stagedRoot(rel) !== undefined;
  }

  #stagedRoot(rel: string): string | undefined {
    for (const root of this.#staged.keys()) {
      if (rel.startsWith(root) && (rel.length === root.length || rel[root.length] === "/")) {
        return root;
      }
    }
    return undefined;
  }

  /**
   * Gives the folders this run made their modes and times, deepest first. `resumable`: the run
   * stopped early, and a later run (`--skip-existing`) must still be able to write into them,
   * which never changes an existing folder: each keeps its owner's read, write and search
   * bits (a read-only folder of the backup comes out owner-writable), instead of the 0700 it
   * was made with.
   */
  async #applyDirectoryMeta(options: { resumable?: boolean } = {}): Promise<void> {
    const directories = [...this.#createdDirectories.values()].sort((a, b) => b.depth - a.depth);
    for (const { rel, mode, mtime } of directories) {
      if (mode === undefined || mtime === undefined) continue;
      try {
        const given = options.resumable ? mode | 0o700 : mode;
        await this.#fs.setDirectoryMeta(this.#abs(rel), given, mtime);
      } catch {
        // Best effort: the data is restored; a mode or time is not worth failing for.
      }
    }
  }

  /** Where the output-relative path `rel` is on disk now (inside a folder being built, maybe). */
  #abs(rel: string): string {
    if (rel === "") return this.#root;
    if (this.#staged.size > 0) {
      const root = this.#stagedRoot(rel);
      if (root !== undefined) return this.#staged.get(root)!.temp + rel.slice(root.length);
    }
    return `${this.#root}/${rel}`;
  }
}

function existsError(rel: string): OutputError {
  return new OutputError({
    reason: "exists",
    action: "restore",
    subject: { kind: "file", name: rel },
    detail: "it exists",
  });
}

function inTheWay(rel: string, what: string): OutputError {
  return new OutputError({
    reason: "in-the-way",
    action: "restore",
    subject: { kind: "file", name: rel },
    detail: `${what} is in the way`,
  });
}
