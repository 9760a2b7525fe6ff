/**
 * `files ls`, `files get`, `files cat`: directories and files read out of an ext2/3/4 VM image
 * (a restored `private.img`, `root.img`, or a disk with partitions) without root or mount.
 *
 * An AppVM's `private.img` is what the VM mounts at `/rw`: `/home/user` in the VM is
 * `home/user` in the image, `/usr/local` is `usrlocal`, `/rw/config` is `config`.
 *
 * @module
 */

import { DamagedError, RecoverError, UsageError } from "../errors.ts";
import {
  type ExtFileSystem,
  ImageDamage,
  ImageUnsupported,
  type Inode,
  type InodeKind,
  isDotName,
  openFileSystem,
  openImage,
  type PartitionInfo,
} from "../ext/mod.ts";
import { describeFsError } from "../fs_errors.ts";
import {
  type DataTarget,
  outputNames,
  type TreeWriterOptions,
  workerFs,
  writeTree,
} from "../output/mod.ts";
import { type Reporter, silentReporter } from "../reporter.ts";
import type { TarEvent } from "../tar/mod.ts";

/** Where an AppVM's paths are inside its private.img, for help and hints. */
export const PRIVATE_IMG_HINT =
  "an AppVM's private.img holds its /rw: /home/user is home/user, /usr/local is usrlocal, /rw/config is config";

/** Options shared by the `files` commands. */
export interface FilesOptions {
  /** Partition number (1-based) of a disk image with a partition table. */
  partition?: number;
  reporter?: Reporter;
}

/** One line of a listing. */
export interface ListEntry {
  name: string;
  inode: number;
  kind: InodeKind;
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  links: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Symlink target. */
  target?: string;
}

/** What `files ls` found: the entries of a directory (or one file), or the partitions. */
export type Listing =
  | { kind: "entries"; path: string; entries: ListEntry[] }
  | { kind: "partitions"; scheme: "mbr" | "gpt"; partitions: PartitionInfo[] };

/**
 * Lists `path` inside the image (a directory's entries without "." and "..", sorted by name;
 * or the one entry of a file). On a partitioned image with no partition chosen, lists the
 * partitions instead.
 *
 * @throws {UsageError} When the image or the path is not there (with a hint to the top level).
 * @throws {DamagedError} When the image is damaged on the way.
 */
export async function listFiles(
  image: string,
  path: string,
  options: FilesOptions = {},
): Promise<Listing> {
  return await withImage(image, async () => {
    const opened = await openImage(image, options.partition);
    try {
      if (opened.kind === "partitions") {
        return { kind: "partitions", scheme: opened.scheme, partitions: opened.partitions };
      }
      const fs = opened.fs;
      warnJournal(fs, image, options.reporter ?? silentReporter);
      const inode = await find(fs, image, path);
      const shown = displayPath(path);
      if (inode.kind !== "directory") {
        const name = shown.split("/").pop() || "/";
        return { kind: "entries", path: shown, entries: [await listEntry(fs, name, inode)] };
      }
      const entries: ListEntry[] = [];
      for await (const entry of fs.entries(inode)) {
        if (isDotName(entry.name)) continue;
        const name = decodeName(entry.name);
        try {
          entries.push(await listEntry(fs, name, await fs.inode(entry.inode)));
        } catch (error) {
          if (!(error instanceof ImageDamage)) throw error;
          (options.reporter ?? silentReporter).warn(
            `Skipped "${joinShown(shown, name)}": ${error.message}`,
          );
        }
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return { kind: "entries", path: shown, entries };
    } finally {
      opened.close();
    }
  });
}

/** Options of {@link getFiles}. */
export interface GetOptions extends FilesOptions {
  /** Output directory; created when missing. */
  output: string;
  /** Replace existing files. */
  force?: boolean;
  /** Leave files and links that exist alone and copy the rest (resuming a stopped copy). */
  skipExisting?: boolean;
  /** Told each output path left alone (`skipExisting`). */
  onExisting?(path: string): void;
  signal?: AbortSignal;
  /** Folder under `output` to put the copies in (`restore --files` uses the VM name). */
  under?: string;
  /** How messages name the image (default: its path). */
  label?: string;
}

/** What {@link getFiles} did. */
export interface GetSummary {
  files: number;
  bytes: number;
  /** Entries not copied: damaged, or devices, FIFOs and sockets (each reported). */
  skipped: number;
  /** How many of the skipped entries were damaged (the rest are special files). */
  damaged: number;
  /** Files and links left alone because they exist (`skipExisting`). */
  existing: number;
}

/**
 * Copies each of `paths` from the image into `output` under its own name (folders
 * recursively): `/home/user` gives `output/user/...`, `/` gives the whole image in `output`.
 * Regular files keep their holes, modes (permission bits) and modification times; symlinks are
 * copied as links; hard links inside the copied tree stay hard links; devices, FIFOs and
 * sockets are skipped with a notice, as are damaged entries (counted in `damaged`). Files are
 * written under temporary names and renamed when complete; nothing existing is replaced
 * without `force` (with `skipExisting` it is left alone and the rest copied); nothing is
 * written outside `output`.
 *
 * @throws {UsageError} When the image or a path is not there.
 * @throws {OutputError} When the output cannot be written (exists, disk full).
 * @throws {DamagedError} When the image is damaged so that nothing can be read.
 */
export async function getFiles(
  image: string,
  paths: readonly string[],
  options: GetOptions,
): Promise<GetSummary> {
  const reporter = options.reporter ?? silentReporter;
  if (paths.length === 0) {
    throw new UsageError({ reason: "usage", detail: "files get needs at least one PATH" });
  }
  const label = options.label ?? image;
  return await withImage(label, async () => {
    const { fs, close } = await openFileSystem(image, options.partition);
    try {
      warnJournal(fs, label, reporter);
      const starts: Array<{ inode: Inode; out: string; shown: string }> = [];
      for (const path of paths) {
        const inode = await find(fs, label, path);
        const shown = displayPath(path);
        const base = shown === "/" ? "" : shown.split("/").pop()!;
        const out = [options.under ?? "", base].filter((part) => part !== "").join("/");
        starts.push({ inode, out, shown });
      }
      const summary: GetSummary = { files: 0, bytes: 0, skipped: 0, damaged: 0, existing: 0 };
      const owners = await mayChown(options.output) ? [] : undefined;
      // Small files are written by a worker on another core while this thread reads the image.
      const target = workerFs();
      const writerOptions: TreeWriterOptions = {
        root: options.output,
        fs: target,
        // A folder that is not there yet is built under a temporary name and renamed into
        // place at the end: its files need one directory change each instead of three.
        stageFolders: true,
        force: options.force ?? false,
        ...outputNames(
          options.output,
          (name) => name,
          options.skipExisting
            ? (rel) => {
              summary.existing++;
              options.onExisting?.(rel);
            }
            : undefined,
        ),
        onFileDone: (file, size) => {
          summary.files++;
          summary.bytes += size;
          reporter.fileDone?.(file, size);
        },
      };
      try {
        await writeTree(
          writerOptions,
          (write, target) => walkTree(fs, starts, reporter, summary, write, owners, target),
          options.signal,
        );
        // Best effort, like modes and times: lchown never follows a symlink.
        if (owners !== undefined) {
          await target.chown(
            owners.map(({ rel, uid, gid }) => ({ path: `${options.output}/${rel}`, uid, gid })),
          );
        }
      } finally {
        target.close();
      }
      return summary;
    } finally {
      close();
    }
  });
}

/**
 * Writes the file at `path` inside the image to `write`, holes as zeros. The bytes handed to
 * `write` are reused once its promise resolves: keep a copy to keep them.
 *
 * @throws {UsageError} When the path is not there or is not a regular file.
 */
export async function catFile(
  image: string,
  path: string,
  write: (bytes: Uint8Array) => Promise<void>,
  options: FilesOptions = {},
): Promise<number> {
  return await withImage(image, async () => {
    const { fs, close } = await openFileSystem(image, options.partition);
    try {
      warnJournal(fs, image, options.reporter ?? silentReporter);
      const inode = await find(fs, image, path);
      if (inode.kind !== "file") {
        throw new UsageError({
          reason: "usage",
          action: `print "${displayPath(path)}" from`,
          subject: { kind: "file", name: image },
          detail: `it is a ${kindWord(inode.kind)}`,
        });
      }
      await fs.check(inode);
      const zeros = new Uint8Array(1 << 20);
      let at = 0;
      const fill = async (to: number) => {
        while (at < to) {
          const n = Math.min(zeros.length, to - at);
          await write(zeros.subarray(0, n));
          at += n;
        }
      };
      for await (const piece of fs.chunks(inode, true)) {
        await fill(piece.offset);
        await write(piece.bytes);
        at += piece.bytes.length;
      }
      await fill(inode.size);
      return inode.size;
    } finally {
      close();
    }
  });
}

/**
 * The events `files get` hands to {@link TreeWriter} for the trees at `starts`, without writing
 * anything (the fuzzer drives the reader through this). Damaged entries are reported through
 * `reporter` and counted in `summary`. The bytes of a data event are read into one reused
 * buffer: they are valid until the next event is asked for (the writer is done with them
 * when its write resolves).
 */
export function walkTree(
  fs: ExtFileSystem,
  starts: Array<{ inode: Inode; out: string; shown: string }>,
  reporter: Reporter,
  summary: GetSummary,
  write: (event: TarEvent) => Promise<void>,
  owners?: Owner[],
  target?: DataTarget,
): Promise<void> {
  return new TreeWalker(fs, reporter, summary, owners, target).walk(starts, write);
}

/** Who owns an entry written at output-relative path `rel`. */
interface Owner {
  rel: string;
  uid: number;
  gid: number;
}

/**
 * Whether this process may give files away (it runs as root): a probe file in `output` is
 * given to root; an ordinary user gets EPERM. Ownership is only restored then.
 */
async function mayChown(output: string): Promise<boolean> {
  let probe: string | undefined;
  try {
    await Deno.mkdir(output, { recursive: true });
    probe = await Deno.makeTempFile({ dir: output, prefix: ".qubes-recover-probe-" });
    await Deno.chown(probe, 0, 0);
    return true;
  } catch {
    return false;
  } finally {
    if (probe !== undefined) await Deno.remove(probe).catch(() => {});
  }
}

/** Walks trees of the image and turns them into the events {@link TreeWriter} writes. */
class TreeWalker {
  readonly #fs: ExtFileSystem;
  readonly #reporter: Reporter;
  readonly #summary: GetSummary;
  /** Inode number -> output path of files with several links already emitted. */
  readonly #linked = new Map<number, string>();
  /**
   * Files with one link already emitted: met again, the image is damaged. Copying such a file
   * once keeps the work bounded by the image's size.
   */
  readonly #single = new Set<number>();
  /** Directories already emitted: a second visit is a cycle (or a hard-linked directory). */
  readonly #directories = new Set<number>();

  /** When restoring ownership (root): every entry emitted, with its owner. */
  readonly #owners: Owner[] | undefined;
  /** Where the writer keeps the current file's bytes, to read them there directly. */
  readonly #target: DataTarget | undefined;

  constructor(
    fs: ExtFileSystem,
    reporter: Reporter,
    summary: GetSummary,
    owners?: Owner[],
    target?: DataTarget,
  ) {
    this.#fs = fs;
    this.#reporter = reporter;
    this.#summary = summary;
    this.#owners = owners;
    this.#target = target;
  }

  #own(rel: string, inode: Inode): void {
    this.#owners?.push({ rel, uid: inode.uid, gid: inode.gid });
  }

  /** Hands the events of the trees at `starts` to `write`, awaiting each. */
  async walk(
    starts: Array<{ inode: Inode; out: string; shown: string }>,
    write: (event: TarEvent) => Promise<void>,
  ): Promise<void> {
    const stack = [...starts].reverse().map((s) => ({ ...s, inode: s.inode as Inode | number }));
    while (stack.length > 0) {
      const { inode: which, out, shown } = stack.pop()!;
      let inode: Inode;
      try {
        inode = typeof which === "number" ? await this.#fs.inode(which) : which;
        if (inode.mode === 0 || (inode.links === 0 && inode.dtime !== 0)) {
          throw new ImageDamage({
            reason: "damaged",
            detail: `its entry points to a deleted inode (${inode.number})`,
          });
        }
      } catch (error) {
        this.#damaged(shown, error);
        continue;
      }
      if (inode.kind === "directory") {
        if (this.#directories.has(inode.number)) {
          this.#damaged(
            shown,
            new ImageDamage({
              reason: "damaged",
              detail: "this directory was already copied (a cycle)",
            }),
          );
          continue;
        }
        this.#directories.add(inode.number);
        if (out !== "") {
          await write(entryEvent(out, "directory", inode));
          await write(END);
          this.#own(out, inode);
        }
        let children: Array<{ inode: number; out: string; shown: string }>;
        try {
          children = await this.#children(inode, out, shown);
        } catch (error) {
          this.#damaged(shown, error);
          continue;
        }
        for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
        continue;
      }
      if (out === "") {
        this.#damaged(
          shown,
          new ImageDamage({ reason: "damaged", detail: "the root is not a directory" }),
        );
        continue;
      }
      try {
        await this.#nonDirectory(inode, out, shown, write);
      } catch (error) {
        this.#damaged(shown, error);
      }
    }
  }

  async #children(
    inode: Inode,
    out: string,
    shown: string,
  ): Promise<Array<{ inode: number; out: string; shown: string }>> {
    const children: Array<{ inode: number; out: string; shown: string }> = [];
    const names = new Set<string>();
    for await (const entry of this.#fs.entries(inode)) {
      if (isDotName(entry.name)) continue;
      const name = decodeName(entry.name);
      const childShown = joinShown(shown, name);
      if (entry.name.includes(0x2f) || entry.name.includes(0)) {
        this.#damaged(
          childShown,
          new ImageDamage({ reason: "unsafe-name", detail: 'its name contains "/" or NUL' }),
        );
        continue;
      }
      if (!isUtf8(entry.name)) {
        this.#reporter.warn(
          `"${childShown}": its name is not UTF-8; written with U+FFFD in its place`,
        );
      }
      if (names.has(name)) {
        this.#damaged(
          childShown,
          new ImageDamage({
            reason: "duplicate",
            detail: "a second entry of that name in its directory",
          }),
        );
        continue;
      }
      names.add(name);
      children.push({
        inode: entry.inode,
        out: out === "" ? name : `${out}/${name}`,
        shown: childShown,
      });
    }
    return children;
  }

  /** Events for a file, symlink or special file; throws before the first event when damaged. */
  async #nonDirectory(
    inode: Inode,
    out: string,
    shown: string,
    write: (event: TarEvent) => Promise<void>,
  ): Promise<void> {
    switch (inode.kind) {
      case "file": {
        const first = this.#linked.get(inode.number);
        if (first !== undefined) {
          await write(entryEvent(out, "hardlink", inode, first));
          await write(END);
          return;
        }
        if (this.#single.has(inode.number)) {
          throw new ImageDamage({
            reason: "duplicate",
            detail: `its inode ${inode.number} (one link) was already copied under another name`,
          });
        }
        await this.#fs.check(inode);
        await write(entryEvent(out, "file", inode));
        // One reused buffer, or the writer's own (target): the writer is done with a piece's
        // bytes when its write resolves.
        await this.#fs.eachChunk(
          inode,
          (offset, bytes) => write({ type: "data", offset, bytes }),
          this.#target,
        );
        await write(END);
        this.#own(out, inode);
        if (inode.links > 1) this.#linked.set(inode.number, out);
        else this.#single.add(inode.number);
        return;
      }
      case "symlink": {
        const target = await this.#fs.symlinkTarget(inode);
        if (target.includes(0) || target.length === 0) {
          throw new ImageDamage({
            reason: "damaged",
            detail: "its symlink target is empty or contains NUL",
          });
        }
        const linkname = UTF8.decode(target);
        await write(entryEvent(out, "symlink", inode, linkname));
        await write(END);
        this.#own(out, inode);
        return;
      }
      default:
        this.#summary.skipped++;
        this.#reporter.warn(
          `Skipped "${shown}": it is a ${
            kindWord(inode.kind)
          } (devices, FIFOs and sockets are not copied)`,
        );
    }
  }

  #damaged(shown: string, error: unknown): void {
    if (!(error instanceof ImageDamage) && !(error instanceof ImageUnsupported)) throw error;
    this.#summary.skipped++;
    this.#summary.damaged++;
    this.#reporter.warn(`Skipped "${shown}": ${error.message}`);
  }
}

/** The end of a member: one object, as the writer only reads its type. */
const END: TarEvent = Object.freeze({ type: "end" });

function entryEvent(
  name: string,
  kind: "file" | "directory" | "hardlink" | "symlink",
  inode: Inode,
  linkname = "",
): TarEvent {
  return {
    type: "entry",
    entry: {
      name,
      kind,
      typeflag: "",
      mode: inode.mode & 0o7777,
      mtime: inode.mtime,
      linkname,
      size: inode.kind === "file" ? inode.size : 0,
      sparse: true,
    },
  };
}

/** Finds `path` or throws a one-line UsageError with a hint listing the top level. */
async function find(fs: ExtFileSystem, image: string, path: string): Promise<Inode> {
  const found = await fs.lookup(path);
  if ("inode" in found) return found.inode;
  const shown = displayPath(path);
  if (found.symlink !== undefined) {
    throw new UsageError({
      reason: "not-found",
      action: `find "${shown}" in`,
      subject: { kind: "file", name: image },
      detail:
        `"${found.parent}" is a symbolic link to "${found.symlink}" (links are not followed; give the path it points to)`,
    });
  }
  if (found.notDirectory) {
    throw new UsageError({
      reason: "not-found",
      action: `find "${shown}" in`,
      subject: { kind: "file", name: image },
      detail: `"${found.parent}" is not a directory`,
    });
  }
  const top: string[] = [];
  try {
    for await (const entry of fs.entries(await fs.root())) {
      if (!isDotName(entry.name)) top.push(decodeName(entry.name));
      if (top.length > 20) break;
    }
  } catch {
    // The hint is a courtesy; the missing path is the message.
  }
  top.sort();
  throw new UsageError({
    reason: "not-found",
    action: `find "${shown}" in`,
    subject: { kind: "file", name: image },
    detail: `"${found.parent}" has no "${found.missing}" (the image's top level holds: ${
      top.join(", ") || "nothing"
    }; ${PRIVATE_IMG_HINT})`,
  });
}

async function listEntry(fs: ExtFileSystem, name: string, inode: Inode): Promise<ListEntry> {
  const entry: ListEntry = {
    name,
    inode: inode.number,
    kind: inode.kind,
    mode: inode.mode & 0o7777,
    links: inode.links,
    uid: inode.uid,
    gid: inode.gid,
    size: inode.size,
    mtime: inode.mtime,
  };
  if (inode.kind === "symlink") {
    entry.target = new TextDecoder().decode(await fs.symlinkTarget(inode));
  }
  return entry;
}

function warnJournal(fs: ExtFileSystem, image: string, reporter: Reporter): void {
  const journal = fs.journal;
  if (journal.kind === "replayed") {
    reporter.info(
      `"${image}" was not cleanly unmounted: applied ${journal.transactions} committed journal transactions (${journal.blocks} blocks) in memory; the image is not changed`,
    );
  } else if (journal.kind === "unreadable") {
    reporter.warn(
      `"${image}" was not cleanly unmounted and its journal cannot be applied (${journal.reason}): the most recent changes may be missing`,
    );
  }
}

/** Runs `body`, giving image errors the image's name and file errors a one-line message. */
async function withImage<T>(image: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof ImageDamage) {
      throw new DamagedError({
        reason: error.reason,
        action: "read",
        subject: { kind: "file", name: image },
        detail: error.message,
      }, { cause: error });
    }
    if (error instanceof ImageUnsupported) {
      throw new ImageUnsupported({
        reason: error.reason,
        action: "read",
        subject: { kind: "file", name: image },
        detail: error.message,
      }, { cause: error });
    }
    if (error instanceof RecoverError) throw error;
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
      throw new UsageError({
        reason: "cannot-open",
        action: "open",
        subject: { kind: "file", name: image },
        detail: describeFsError(error),
      }, { cause: error });
    }
    throw error;
  }
}

/** "/home/user" for "home/user/", "/" for "" — how a path inside the image is shown. */
export function displayPath(path: string): string {
  const parts = path.split("/").filter((part) => part !== "" && part !== ".");
  return `/${parts.join("/")}`;
}

function joinShown(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/** Decoders made once: a tree has thousands of names. */
const UTF8 = new TextDecoder();
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Whether `bytes` are valid UTF-8. */
function isUtf8(bytes: Uint8Array): boolean {
  try {
    STRICT_UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** A name's bytes as text (invalid UTF-8 becomes U+FFFD). */
function decodeName(bytes: Uint8Array): string {
  return UTF8.decode(bytes);
}

function kindWord(kind: InodeKind): string {
  return {
    file: "regular file",
    directory: "directory",
    symlink: "symbolic link",
    char: "character device",
    block: "block device",
    fifo: "FIFO",
    socket: "socket",
    unknown: "file of unknown type",
  }[kind];
}
