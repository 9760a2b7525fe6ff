/**
 * A folder tree of a format-1 backup written as one inner GNU tar stream, the way
 * `tar -Pc --sparse -C <dir> --xform 's:^<base>:<subdir>\0:' <base>` wrote a format-3 item
 * (spec section 8.1): directories with a trailing `/`, symlinks as symlinks, files with holes
 * as old-GNU sparse (`S`) members. Each file is read twice: once to find its zero blocks, once
 * for the data, so only one piece of it is in memory at a time.
 *
 * @module
 */

import { DamagedError } from "../errors.ts";
import type { Reporter } from "../reporter.ts";
import { describeFsError } from "../fs_errors.ts";
import { archiveEnd, type MemberHeader, memberHeader, padding } from "./tar_writer.ts";

/** Hole granularity: a 4096-byte block of zeros is left out of sparse members. */
const HOLE_BLOCK = 4096;
/** Bytes read at a time. */
const PIECE = 1024 * 1024;

/** The data runs of a file: where its non-zero blocks are. */
export interface DataMap {
  offsets: number[];
  sizes: number[];
}

function fsError(path: string, error: unknown): DamagedError {
  return new DamagedError({
    reason: "damaged",
    action: "read",
    subject: { kind: "file", name: path },
    detail: describeFsError(error),
  }, { cause: error });
}

async function readFull(file: Deno.FsFile, buffer: Uint8Array, path: string): Promise<void> {
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) {
      throw new DamagedError({
        reason: "changed",
        action: "read",
        subject: { kind: "file", name: path },
        detail: "it ended early (it shrank while being read)",
      });
    }
    filled += n;
  }
}

function isZero(bytes: Uint8Array): boolean {
  const whole = bytes.length & ~7;
  if (bytes.byteOffset % 8 === 0) {
    const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, whole >>> 3);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
  } else {
    for (let i = 0; i < whole; i++) if (bytes[i] !== 0) return false;
  }
  for (let i = whole; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Finds the runs of non-zero {@link HOLE_BLOCK}-byte blocks of a file.
 *
 * @returns The runs in ascending order; a file without zero blocks has one run `(0, size)`.
 */
export async function scanDataMap(path: string, size: number): Promise<DataMap> {
  const map: DataMap = { offsets: [], sizes: [] };
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw fsError(path, error);
  }
  try {
    const buffer = new Uint8Array(PIECE);
    let runStart = -1;
    for (let offset = 0; offset < size;) {
      const piece = buffer.subarray(0, Math.min(PIECE, size - offset));
      await readFull(file, piece, path);
      for (let at = 0; at < piece.length; at += HOLE_BLOCK) {
        const block = piece.subarray(at, Math.min(at + HOLE_BLOCK, piece.length));
        if (isZero(block)) {
          if (runStart >= 0) {
            map.offsets.push(runStart);
            map.sizes.push(offset + at - runStart);
            runStart = -1;
          }
        } else if (runStart < 0) {
          runStart = offset + at;
        }
      }
      offset += piece.length;
    }
    if (runStart >= 0) {
      map.offsets.push(runStart);
      map.sizes.push(size - runStart);
    }
  } finally {
    file.close();
  }
  return map;
}

/** Options of {@link treeTar}. */
export interface TreeTarOptions {
  /** Receives a warning for files that cannot be archived (devices, FIFOs, sockets). */
  reporter: Reporter;
}

/**
 * The inner tar stream of `path` and everything below it, its members named `member`,
 * `member/...`.
 *
 * @param path The file or folder to archive.
 * @param member The name of its member (`appvms/work/private.img`, `vm-templates/t/.`).
 */
export function treeTar(
  path: string,
  member: string,
  options: TreeTarOptions,
): ReadableStream<Uint8Array> {
  async function* all(): AsyncGenerator<Uint8Array> {
    let written = 0;
    for await (const piece of walk(path, member, options)) {
      written += piece.length;
      yield piece;
    }
    yield archiveEnd(written);
  }
  return ReadableStream.from(all());
}

async function* walk(
  path: string,
  member: string,
  options: TreeTarOptions,
): AsyncGenerator<Uint8Array> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    throw fsError(path, error);
  }
  const base = {
    mode: (info.mode ?? 0o644) & 0o7777,
    uid: info.uid ?? 0,
    gid: info.gid ?? 0,
    mtime: Math.floor((info.mtime?.getTime() ?? 0) / 1000),
  };
  if (info.isSymlink) {
    let linkname: string;
    try {
      linkname = await Deno.readLink(path);
    } catch (error) {
      throw fsError(path, error);
    }
    yield* memberHeader({ ...base, name: member, typeflag: "2", size: 0, linkname });
  } else if (info.isDirectory) {
    yield* memberHeader({ ...base, name: `${member}/`, typeflag: "5", size: 0 });
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(path)) names.push(entry.name);
    } catch (error) {
      throw fsError(path, error);
    }
    names.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
    for (const name of names) yield* walk(`${path}/${name}`, `${member}/${name}`, options);
  } else if (info.isFile) {
    yield* fileMember(path, member, info.size, base);
  } else {
    options.reporter.warn(`Skipping "${path}": not a file, folder or symlink`);
  }
}

async function* fileMember(
  path: string,
  member: string,
  size: number,
  base: Pick<MemberHeader, "mode" | "uid" | "gid" | "mtime">,
): AsyncGenerator<Uint8Array> {
  const map = size === 0 ? { offsets: [0], sizes: [0] } : await scanDataMap(path, size);
  const dense = map.offsets.length === 1 && map.offsets[0] === 0 && map.sizes[0] === size;
  const stored = map.sizes.reduce((sum, n) => sum + n, 0);
  if (dense) {
    yield* memberHeader({ ...base, name: member, typeflag: "0", size });
  } else {
    const offsets = [...map.offsets];
    const sizes = [...map.sizes];
    const last = offsets.length - 1;
    // GNU tar ends the map of a file that ends in a hole with an entry (realsize, 0).
    if (last < 0 || offsets[last]! + sizes[last]! < size) {
      offsets.push(size);
      sizes.push(0);
    }
    yield* memberHeader({
      ...base,
      name: member,
      typeflag: "S",
      size: stored,
      sparse: { realsize: size, offsets, sizes },
    });
  }
  if (stored === 0) return;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw fsError(path, error);
  }
  try {
    for (let i = 0; i < map.offsets.length; i++) {
      await file.seek(map.offsets[i]!, Deno.SeekMode.Start);
      for (let left = map.sizes[i]!; left > 0;) {
        const piece = new Uint8Array(Math.min(PIECE, left));
        await readFull(file, piece, path);
        left -= piece.length;
        yield piece;
      }
    }
  } finally {
    file.close();
  }
  const pad = padding(stored);
  if (pad.length > 0) yield pad;
}
