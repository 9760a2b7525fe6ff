/**
 * Format 1 (Qubes R1, R2-beta1/2): a plain directory tree with `qubes.xml`, `appvms/`,
 * `servicevms/`, `vm-templates/` and `dom0-home/` (spec section 12). No crypto: each VM
 * directory is walked and emitted as the same tar events the other formats produce, so the
 * same writers restore it; all-zero blocks become holes.
 *
 * @module
 */

import { catalogForFormat1, ownerOf } from "../catalog/mod.ts";
import { DamagedError } from "../errors.ts";
import type { Reporter } from "../reporter.ts";
import type { TarEntry, TarEvent } from "../tar/mod.ts";
import { type Backup, type BackupItem, MAX_QUBES_XML } from "./backup.ts";
import { describeFsError } from "../fs_errors.ts";
import { salvageWalk } from "../salvage/walk.ts";

const VM_FOLDERS = ["appvms", "servicevms", "vm-templates"];
const BLOCK = 1024 * 1024;

async function listDir(path: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(path)) out.push(entry);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw new DamagedError({
      reason: "damaged",
      action: "read",
      subject: { kind: "file", name: path },
      detail: describeFsError(error),
    }, { cause: error });
  }
  return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Opens a format-1 backup directory.
 *
 * @param dir The backup directory (holds `qubes.xml`).
 */
export async function openFormatOne(dir: string, reporter: Reporter): Promise<Backup> {
  const qubesXml = await readRegularFile(`${dir}/qubes.xml`, MAX_QUBES_XML);
  const present = new Set<string>();
  for (const folder of VM_FOLDERS) {
    for (const entry of await listDir(`${dir}/${folder}`)) {
      if (entry.isDirectory) present.add(`${folder}/${entry.name}`);
    }
  }
  const users = (await listDir(`${dir}/dom0-home`)).filter((e) => e.isDirectory).map((e) => e.name);
  const catalog = catalogForFormat1(qubesXml, present, users);
  reporter.info("Format 1: a plain directory, no encryption");
  const paths = catalog.vms.filter((vm) => vm.included && vm.backupPath).map((vm) =>
    vm.backupPath!
  );
  if (catalog.dom0Home) paths.push(catalog.dom0Home.backupPath);
  return {
    format: 1,
    header: undefined,
    kdf: undefined,
    catalog,
    qubesXml,
    async *items() {
      for (const path of [...new Set(paths)]) {
        const item: BackupItem = {
          name: path,
          owner: ownerOf(catalog, path),
          events: () => ReadableStream.from(walk(dir, path)),
          salvageEvents: () => salvageWalk(dir, path),
          skip: () => Promise.resolve(),
        };
        yield item;
      }
    },
    close: () => Promise.resolve(),
  };
}

/** Emits tar events for `rel` (below `root`) and everything under it, without following links. */
async function* walk(root: string, rel: string): AsyncGenerator<TarEvent> {
  const path = `${root}/${rel}`;
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    throw new DamagedError({
      reason: "damaged",
      action: "read",
      subject: { kind: "file", name: path },
      detail: describeFsError(error),
    }, { cause: error });
  }
  const base: Omit<TarEntry, "kind" | "typeflag" | "linkname" | "size"> = {
    name: rel,
    mode: (info.mode ?? 0o644) & 0o7777,
    mtime: Math.floor((info.mtime?.getTime() ?? 0) / 1000),
    sparse: false,
  };
  if (info.isSymlink) {
    const linkname = await Deno.readLink(path);
    yield { type: "entry", entry: { ...base, kind: "symlink", typeflag: "2", linkname, size: 0 } };
    yield { type: "end" };
  } else if (info.isDirectory) {
    yield {
      type: "entry",
      entry: { ...base, kind: "directory", typeflag: "5", linkname: "", size: 0 },
    };
    yield { type: "end" };
    for (const entry of await listDir(path)) yield* walk(root, `${rel}/${entry.name}`);
  } else if (info.isFile) {
    yield {
      type: "entry",
      entry: { ...base, kind: "file", typeflag: "0", linkname: "", size: info.size, sparse: true },
    };
    yield* fileData(path, info.size);
    yield { type: "end" };
  } else {
    throw notRegular(path, info);
  }
}

/** The error for something a backup folder should not hold: a FIFO, socket or device. */
function notRegular(path: string, info: Deno.FileInfo): DamagedError {
  const what = info.isFifo
    ? "a FIFO"
    : info.isSocket
    ? "a socket"
    : info.isBlockDevice || info.isCharDevice
    ? "a device"
    : info.isSymlink
    ? "a symbolic link"
    : "not a regular file";
  return new DamagedError({
    reason: "damaged",
    action: "read",
    subject: { kind: "file", name: path },
    detail: `it is ${what}, not a regular file (only regular files are read)`,
  });
}

/**
 * Reads a regular file (not a link, FIFO or device) of at most `limit` bytes; the limit is
 * checked while reading too, for a file that grows.
 */
async function readRegularFile(path: string, limit: number): Promise<Uint8Array> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    throw new DamagedError({
      reason: "damaged",
      action: "read",
      subject: { kind: "file", name: path },
      detail: describeFsError(error),
    }, { cause: error });
  }
  if (!info.isFile) throw notRegular(path, info);
  if (info.size > limit) {
    throw new DamagedError({
      reason: "too-large",
      action: "read",
      subject: { kind: "file", name: path },
      detail: `it is ${info.size} bytes, more than ${limit}`,
    });
  }
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(info.size + 1);
  let filled = 0;
  for (;;) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
    if (filled > info.size) {
      throw new DamagedError({
        reason: "changed",
        action: "read",
        subject: { kind: "file", name: path },
        detail: "it grows while being read",
      });
    }
  }
  return buffer.subarray(0, filled);
}

/** The non-zero blocks of a file as data events; zero blocks are left as holes. */
async function* fileData(path: string, size: number): AsyncGenerator<TarEvent> {
  using file = await Deno.open(path, { read: true });
  let offset = 0;
  while (offset < size) {
    const buffer = new Uint8Array(Math.min(BLOCK, size - offset));
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
    if (!isZero(buffer)) yield { type: "data", offset, bytes: buffer };
    offset += buffer.length;
  }
}

function isZero(bytes: Uint8Array): boolean {
  const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 3);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
  for (let i = words.length << 3; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
