/**
 * An ext2/3/4 file system opened read-only: inodes, file data, directories, symlinks, paths.
 *
 * @module
 */

import { blockMapCapacity, blockMapRuns } from "./block_map.ts";
import { ImageDamage, ImageUnsupported } from "./damage.ts";
import { type DirEntry, parseDirectoryBlock, parseInlineDirectory } from "./directory.ts";
import { extentRuns, inodeExtentRuns } from "./extents.ts";
import { GroupDescriptors } from "./group_descriptors.ts";
import type { ByteSource } from "./image.ts";
import { type Inode, InodeFlag, inodeSystemXattr, readInode, ROOT_INODE } from "./inode.ts";
import type { Run, RunContext } from "./runs.ts";
import { Compat, Incompat, readSuperblock, type Superblock } from "./superblock.ts";
import { OverlaySource, readJournal } from "./journal.ts";

/** Bytes per data piece handed out by {@link ExtFileSystem.chunks}. */
const PIECE_BYTES = 4 << 20;
/** Metadata blocks (inode tables, tree nodes) kept in memory: 256 blocks, at most 16 MiB. */
const CACHED_BLOCKS = 256;
/** Longest symlink target Linux creates (PATH_MAX). */
const MAX_SYMLINK = 4096;

/** A piece of a file's data at a logical offset; everything not covered is a hole (zeros). */
export interface DataPiece {
  offset: number;
  bytes: Uint8Array;
}

/** What became of a journal that needed recovery. */
export type JournalState =
  | { kind: "clean" }
  | { kind: "replayed"; transactions: number; blocks: number }
  | { kind: "unreadable"; reason: string };

/** A read-only ext2/3/4 file system over a {@link ByteSource}. */
export class ExtFileSystem {
  readonly source: ByteSource;
  readonly sb: Superblock;
  /** Whether a journal needing recovery was replayed in memory (or could not be). */
  journal: JournalState = { kind: "clean" };
  readonly #groups: GroupDescriptors;
  /** Recently read metadata blocks, oldest first (a Map keeps insertion order). */
  readonly #cache = new Map<number, Uint8Array>();
  /** The runs {@link check} listed last, with their inode, for {@link eachChunk}. */
  #checked: { inode: Inode; runs: Run[] } | undefined;
  /** The buffer `chunks(inode, true)` reads into. */
  #scratch: Uint8Array | undefined;

  private constructor(source: ByteSource, sb: Superblock) {
    this.source = source;
    this.sb = sb;
    this.#groups = new GroupDescriptors(source, sb);
  }

  /**
   * Opens the file system in `source` (reads the superblock).
   *
   * @throws {ImageDamage | ImageUnsupported} When it is not a readable ext2/3/4 file system.
   */
  static async open(source: ByteSource): Promise<ExtFileSystem> {
    const raw = new ExtFileSystem(source, await readSuperblock(source));
    if (!raw.needsRecovery) return raw;
    const sb = raw.sb;
    if ((sb.compat & Compat.HasJournal) === 0 || sb.journalInode === 0) {
      raw.journal = { kind: "unreadable", reason: "the journal is on another device" };
      return raw;
    }
    try {
      const journalInode = await raw.inode(sb.journalInode);
      const runs: Run[] = [];
      for await (const run of raw.runs(journalInode)) runs.push(run);
      const overlay = await readJournal((b) => raw.readBlock(b), runs, sb.blockSize);
      if (overlay === undefined || overlay.blocks.size === 0) return raw;
      const replayed = new OverlaySource(source, overlay, sb.blockSize);
      const fs = new ExtFileSystem(replayed, await readSuperblock(replayed));
      fs.journal = {
        kind: "replayed",
        transactions: overlay.transactions,
        blocks: overlay.blocks.size,
      };
      return fs;
    } catch (error) {
      if (!(error instanceof ImageDamage)) throw error;
      raw.journal = { kind: "unreadable", reason: error.message };
      return raw;
    }
  }

  /** Whether the journal holds changes not yet written to their places (`needs_recovery`). */
  get needsRecovery(): boolean {
    return (this.sb.incompat & Incompat.Recover) !== 0;
  }

  /** Reads inode `number`. @throws {ImageDamage} When it is out of range or unreadable. */
  inode(number: number): Promise<Inode> {
    return readInode((block) => this.#cachedBlock(block), this.sb, this.#groups, number);
  }

  /** The root directory's inode. */
  root(): Promise<Inode> {
    return this.inode(ROOT_INODE);
  }

  /** Reads file system block `block`. */
  readBlock(block: number): Promise<Uint8Array> {
    if (block >= this.sb.blocksCount) {
      throw new ImageDamage({
        reason: "damaged",
        detail: `block ${block} lies outside the file system`,
      });
    }
    return this.source.readAt(block * this.sb.blockSize, this.sb.blockSize);
  }

  /**
   * The data runs of `inode` in logical order, clipped to its size.
   *
   * @throws {ImageDamage} When its size is impossible or its block tree is damaged.
   */
  runs(inode: Inode): AsyncGenerator<Run> {
    const ctx = this.#runContext(inode);
    return boundRuns(
      (inode.flags & InodeFlag.Extents) !== 0
        ? extentRuns(inode.block, ctx)
        : blockMapRuns(inode.block, ctx),
      ctx.blocksCount,
      inode.number,
    );
  }

  /**
   * The runs of `inode`: as a list when its extent tree lies wholly in the inode (most small
   * files; found without an await), else as {@link runs} streams them.
   */
  #runsOf(inode: Inode): Iterable<Run> | AsyncIterable<Run> {
    if ((inode.flags & InodeFlag.Extents) === 0) return this.runs(inode);
    const ctx = this.#runContext(inode);
    const list = inodeExtentRuns(inode.block, ctx);
    if (list === undefined) return this.runs(inode);
    let total = 0;
    for (const run of list) total += run.length;
    if (total > ctx.blocksCount) {
      throw new ImageDamage({
        reason: "damaged",
        detail: `inode ${inode.number} maps more blocks than the file system holds`,
      });
    }
    return list;
  }

  /** @throws {ImageDamage} When the size of `inode` is impossible for its block tree. */
  #runContext(inode: Inode): RunContext {
    const bs = this.sb.blockSize;
    const extents = (inode.flags & InodeFlag.Extents) !== 0;
    const capacity = extents ? 2 ** 32 : blockMapCapacity(bs);
    const limit = Math.ceil(inode.size / bs);
    if (limit > capacity || !Number.isSafeInteger(inode.size)) {
      throw new ImageDamage({
        reason: "damaged",
        detail:
          `inode ${inode.number}: size ${inode.size} bytes is impossible for this file system`,
      });
    }
    return {
      readBlock: (block) => this.#cachedBlock(block),
      blockSize: bs,
      // Blocks past the end of the image file cannot be read either.
      blocksCount: Math.min(this.sb.blocksCount, Math.floor(this.source.size / bs)),
      inode: inode.number,
      limit,
    };
  }

  /**
   * Walks the whole block tree of `inode` once without reading data: afterwards reading it can
   * only fail if the image changes. Returns the number of bytes of data (holes excluded).
   *
   * @throws {ImageDamage | ImageUnsupported} As {@link chunks} would.
   */
  async check(inode: Inode): Promise<number> {
    this.#checkReadable(inode);
    if (inode.flags & InodeFlag.InlineData) return this.#inline(inode).length;
    let bytes = 0;
    const runs = this.#runsOf(inode);
    // A list (most files) is summed without an await per run, and kept for `eachChunk`.
    if (Array.isArray(runs)) {
      for (const run of runs) bytes += run.length * this.sb.blockSize;
      this.#checked = { inode, runs };
    } else {
      for await (const run of runs) bytes += run.length * this.sb.blockSize;
    }
    return Math.min(bytes, inode.size);
  }

  /**
   * As {@link chunks} with `reuse`, without generators: `each(offset, bytes)` gets the pieces in
   * logical order, and is awaited before the next piece is read into the same buffer (or the
   * source's window, see `ByteSource.view`). For trees of thousands of small files, where each
   * step of an async generator costs more than the read. With `into`, a piece is read into the
   * array `into(offset, length)` gives, where the consumer keeps it (`DataTarget`), when it
   * gives one: one copy less.
   *
   * @throws {ImageDamage | ImageUnsupported} As {@link chunks}.
   */
  async eachChunk(
    inode: Inode,
    each: (offset: number, bytes: Uint8Array) => Promise<void> | void,
    into?: (offset: number, length: number) => Uint8Array | undefined,
  ): Promise<void> {
    this.#checkReadable(inode);
    if (inode.flags & InodeFlag.InlineData) {
      const data = this.#inline(inode);
      if (data.length > 0) await each(0, data.slice());
      return;
    }
    // The list `check` just made for this inode, if it did (inodes are never changed).
    const checked = this.#checked;
    this.#checked = undefined;
    const runs = checked?.inode === inode ? checked.runs : this.#runsOf(inode);
    if (Array.isArray(runs)) {
      for (const run of runs) if (!await this.#eachOfRun(inode, run, each, into)) return;
    } else {
      for await (const run of runs) if (!await this.#eachOfRun(inode, run, each, into)) return;
    }
  }

  /** The pieces of one run for {@link eachChunk}; false once the file's size is reached. */
  async #eachOfRun(
    inode: Inode,
    run: Run,
    each: (offset: number, bytes: Uint8Array) => Promise<void> | void,
    into: ((offset: number, length: number) => Uint8Array | undefined) | undefined,
  ): Promise<boolean> {
    const bs = this.sb.blockSize;
    const runBytes = run.length * bs;
    for (let done = 0; done < runBytes;) {
      const offset = run.logical * bs + done;
      const length = Math.min(PIECE_BYTES, runBytes - done, inode.size - offset);
      if (length <= 0) return false;
      const at = run.physical * bs + done;
      // Where the consumer keeps these bytes, read there directly; else a view of the image
      // or the scratch buffer.
      let bytes = into?.(offset, length);
      if (bytes !== undefined) await this.source.readInto(at, bytes);
      else bytes = this.source.view?.(at, length);
      if (bytes === undefined) {
        this.#scratch ??= new Uint8Array(PIECE_BYTES);
        bytes = this.#scratch.subarray(0, length);
        await this.source.readInto(at, bytes);
      }
      await each(offset, bytes);
      done += length;
    }
    return true;
  }

  /**
   * The data of a regular file (or directory, symlink) as pieces in logical order; holes and
   * uninitialised extents are left out, the last piece ends at the file's size.
   *
   * With `reuse`, the pieces are read into one buffer this file system keeps: each is valid
   * only until the next piece (of any file) is read. Reading a tree of small files into one
   * buffer spares a fresh allocation (and its page faults and garbage) per file.
   */
  async *chunks(inode: Inode, reuse = false): AsyncGenerator<DataPiece> {
    this.#checkReadable(inode);
    if (inode.flags & InodeFlag.InlineData) {
      const data = this.#inline(inode);
      if (data.length > 0) yield { offset: 0, bytes: data.slice() };
      return;
    }
    const bs = this.sb.blockSize;
    for await (const run of this.#runsOf(inode)) {
      let done = 0;
      const runBytes = run.length * bs;
      while (done < runBytes) {
        const offset = run.logical * bs + done;
        const length = Math.min(PIECE_BYTES, runBytes - done, inode.size - offset);
        if (length <= 0) return;
        const at = run.physical * bs + done;
        let bytes: Uint8Array;
        if (!reuse) bytes = await this.source.readAt(at, length);
        else {
          this.#scratch ??= new Uint8Array(PIECE_BYTES);
          bytes = this.#scratch.subarray(0, length);
          await this.source.readInto(at, bytes);
        }
        yield { offset, bytes };
        done += length;
      }
    }
  }

  /** The entries of directory `inode` ("." and ".." included), block by block. */
  async *entries(inode: Inode): AsyncGenerator<DirEntry> {
    const hasFileType = (this.sb.incompat & Incompat.Filetype) !== 0;
    const where = `directory inode ${inode.number}`;
    if (inode.flags & InodeFlag.InlineData) {
      const extra = inodeSystemXattr(inode, "data");
      yield* parseInlineDirectory(inode.block, extra, hasFileType, where);
      return;
    }
    const bs = this.sb.blockSize;
    for await (const piece of this.chunks(inode)) {
      for (let at = 0; at + bs <= piece.bytes.length; at += bs) {
        yield* parseDirectoryBlock(piece.bytes.subarray(at, at + bs), hasFileType, where);
      }
    }
  }

  /** The target of symlink `inode`, as raw bytes. */
  async symlinkTarget(inode: Inode): Promise<Uint8Array> {
    if (inode.size > MAX_SYMLINK) {
      throw new ImageDamage({
        reason: "damaged",
        detail: `symlink inode ${inode.number} has an impossible length ${inode.size}`,
      });
    }
    const fast = (inode.flags & (InodeFlag.Extents | InodeFlag.InlineData)) === 0 &&
      inode.size < 60;
    if (fast) return inode.block.slice(0, inode.size);
    const target = new Uint8Array(inode.size);
    for await (const piece of this.chunks(inode)) target.set(piece.bytes, piece.offset);
    return target;
  }

  /**
   * Finds `path` (absolute or relative to the root; "/" is the root). Symlinks on the way are
   * not followed.
   *
   * @returns The inode, or a description of the component that is missing.
   */
  async lookup(
    path: string,
  ): Promise<
    { inode: Inode } | { missing: string; parent: string; notDirectory?: boolean; symlink?: string }
  > {
    let inode = await this.root();
    const walked: string[] = [];
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      if (inode.kind !== "directory") {
        const parent = `/${walked.join("/")}`;
        if (inode.kind === "symlink") {
          const symlink = new TextDecoder().decode(await this.symlinkTarget(inode));
          return { missing: part, parent, notDirectory: true, symlink };
        }
        return { missing: part, parent, notDirectory: true };
      }
      const wanted = new TextEncoder().encode(part);
      let found: number | undefined;
      for await (const entry of this.entries(inode)) {
        if (sameBytes(entry.name, wanted)) {
          found = entry.inode;
          break;
        }
      }
      if (found === undefined) return { missing: part, parent: `/${walked.join("/")}` };
      inode = await this.inode(found);
      if (part === "..") walked.pop();
      else walked.push(part);
    }
    return { inode };
  }

  /** A metadata block through the small cache; callers must not change it. */
  async #cachedBlock(block: number): Promise<Uint8Array> {
    const hit = this.#cache.get(block);
    if (hit !== undefined) {
      this.#cache.delete(block);
      this.#cache.set(block, hit);
      return hit;
    }
    const bytes = await this.readBlock(block);
    this.#cache.set(block, bytes);
    if (this.#cache.size > CACHED_BLOCKS) this.#cache.delete(this.#cache.keys().next().value!);
    return bytes;
  }

  #checkReadable(inode: Inode): void {
    if (inode.flags & InodeFlag.Encrypt) {
      throw new ImageUnsupported({
        reason: "unsupported",
        detail: `inode ${inode.number} is encrypted (fscrypt)`,
      });
    }
  }

  #inline(inode: Inode): Uint8Array {
    const extra = inodeSystemXattr(inode, "data") ?? new Uint8Array(0);
    const all = new Uint8Array(60 + extra.length);
    all.set(inode.block, 0);
    all.set(extra, 60);
    return all.subarray(0, Math.min(inode.size, all.length));
  }
}

/**
 * Passes runs through, refusing a file that maps more blocks than the file system has: ext
 * files share no blocks, so only a damaged (or hostile) tree can, and this bounds the work of
 * reading one file by the size of the image.
 */
async function* boundRuns(
  runs: AsyncGenerator<Run>,
  blocksCount: number,
  inode: number,
): AsyncGenerator<Run> {
  let total = 0;
  for await (const run of runs) {
    total += run.length;
    if (total > blocksCount) {
      throw new ImageDamage({
        reason: "damaged",
        detail: `inode ${inode} maps more blocks than the file system holds`,
      });
    }
    yield run;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
