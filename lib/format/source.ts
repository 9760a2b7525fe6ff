/**
 * Opening what the user named as the backup: a file, standard input (`-`), a directory holding
 * an untarred backup, or a format-1 backup directory.
 *
 * What it is comes from evidence, never from one file's presence: a folder with
 * `backup-header` or `*.000` chunks is an untarred backup of format 2-4 (even with a decrypted
 * `qubes.xml` next to them); format 1 needs `qubes.xml` and its VM folders. A file must start
 * like a tar archive; a compressed or encrypted file is named as such.
 *
 * @module
 */

import { detectCompression } from "../compress/mod.ts";
import {
  IncompleteError,
  type ReasonOf,
  type Subject,
  UnsupportedError,
  UsageError,
} from "../errors.ts";
import { describeFsError } from "../fs_errors.ts";
import { hasValidChecksum, isZeroBlock } from "../tar/mod.ts";
import {
  type ByteReader,
  type OuterEntry,
  readBackupDirectory,
  readOuterArchive,
} from "../outer/mod.ts";

/** An opened backup location. */
export type Source =
  | { kind: "format1"; dir: string }
  | {
    kind: "entries";
    /** Outer entries in archive order. */
    entries: AsyncGenerator<OuterEntry>;
    /** Size of the backup file when known, for progress. */
    totalBytes: number | undefined;
    /** Releases the file. */
    close(): void;
  };

/**
 * Opens a backup location.
 *
 * @param path A file, `-` for standard input, or a directory.
 * @param onRead Told the bytes read so far (and the total when known) after every read.
 * @param openFile Opens a file instead of `Deno.open` (see `OpenOptions.openFile`).
 * @throws {UsageError} When the path cannot be opened.
 */
export async function openSource(
  path: string,
  onRead?: (read: number, total: number | undefined) => void,
  openFile?: (path: string) => Promise<ByteReader & { close(): void }>,
): Promise<Source> {
  if (path === "-") {
    const head = await checkStart(Deno.stdin, "standard input");
    return fromReader(prefixed(head, Deno.stdin), undefined, () => {}, onRead);
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new UsageError({
      reason: "cannot-open",
      action: "open",
      subject: { kind: "file", name: path },
      detail: describeFsError(error),
    }, { cause: error });
  }
  if (info.isDirectory) {
    if (await directoryKind(path) === "format1") return { kind: "format1", dir: path };
    const entries = readBackupDirectory(path);
    return {
      kind: "entries",
      entries,
      totalBytes: undefined,
      close: () => {},
    };
  }
  let file: ByteReader & { close(): void };
  try {
    file = await (openFile ?? ((path) => Deno.open(path, { read: true })))(path);
  } catch (error) {
    throw new UsageError({
      reason: "cannot-open",
      action: "open",
      subject: { kind: "file", name: path },
      detail: describeFsError(error),
    }, { cause: error });
  }
  let head: Uint8Array;
  try {
    head = await checkStart(file, path);
  } catch (error) {
    file.close();
    throw error;
  }
  const total = openFile === undefined ? info.size : undefined; // a growing file: unknown
  return fromReader(prefixed(head, file), total, () => file.close(), onRead);
}

const CHUNK_NAME = /\.\d{3,}(\.hmac|\.enc)?$/;
const FORMAT1_VM_FOLDERS = ["appvms", "servicevms", "vm-templates"];
const FORMAT1_NAMES = new Set(["qubes.xml", ...FORMAT1_VM_FOLDERS, "dom0-home"]);

async function listNames(path: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(path)) out.push(entry);
  } catch {
    // Unreadable: it counts as empty here; reading the backup names the problem.
  }
  return out;
}

async function hasSubfolder(path: string): Promise<boolean> {
  return (await listNames(path)).some((entry) => entry.isDirectory);
}

/**
 * What a folder holds: an untarred backup of format 2-4 (`backup-header`, `*.000` chunks at the
 * top or one level down), or a format-1 backup (`qubes.xml` and VM folders).
 *
 * @throws {UnsupportedError} When it is neither (a folder restored by qubes-recover, say).
 */
async function directoryKind(path: string): Promise<"format1" | "untarred"> {
  let top: Deno.DirEntry[];
  try {
    top = [];
    for await (const entry of Deno.readDir(path)) top.push(entry);
  } catch (error) {
    throw new UsageError({
      reason: "cannot-open",
      action: "open",
      subject: { kind: "file", name: path },
      detail: describeFsError(error),
    }, { cause: error });
  }
  const isChunk = (entry: Deno.DirEntry) =>
    entry.isFile && (entry.name.startsWith("backup-header") || CHUNK_NAME.test(entry.name));
  if (top.some(isChunk)) return "untarred";
  const folders = top.filter((entry) => entry.isDirectory);
  for (const folder of folders.slice(0, 256)) {
    if ((await listNames(`${path}/${folder.name}`)).some(isChunk)) return "untarred";
  }
  if (top.some((entry) => entry.name === "qubes.xml")) {
    for (const name of FORMAT1_VM_FOLDERS) {
      if (folders.some((f) => f.name === name) && await hasSubfolder(`${path}/${name}`)) {
        return "format1";
      }
    }
    const onlyFormat1 = top.every((entry) => FORMAT1_NAMES.has(entry.name));
    if (onlyFormat1 && await hasSubfolder(`${path}/dom0-home`)) return "format1";
    throw new UnsupportedError({
      reason: "not-a-backup",
      action: "read",
      subject: { kind: "file", name: path },
      detail:
        `it is not a Qubes backup: it holds qubes.xml, but no appvms/ or vm-templates/ (format 1) and no backup chunks (like a folder written by "qubes-recover restore")`,
    });
  }
  throw new UnsupportedError({
    reason: "not-a-backup",
    action: "read",
    subject: { kind: "file", name: path },
    detail: "it is not a Qubes backup: it holds no backup-header, no *.000 chunks and no qubes.xml",
  });
}

/** What a file is, from its first bytes, when it is not a tar archive. */
function notTar(head: Uint8Array, name: string): { reason: ReasonOf<6>; detail: string } {
  const compression = detectCompression(head);
  if (compression !== undefined && compression !== "zlib" && compression !== "lzma") {
    const tool = { gzip: "gzip", bzip2: "bzip2", xz: "xz", zstd: "zstd" }[compression];
    const shown = name === "standard input" ? "FILE" : name;
    return {
      reason: "unsupported",
      detail:
        `it is ${compression}-compressed (Qubes never compresses a whole backup): read it through "${tool} -dc ${shown} | qubes-recover COMMAND - ...", or run "${tool} -dk ${shown}" first`,
    };
  }
  if (new TextDecoder().decode(head.subarray(0, 8)) === "Salted__") {
    return {
      reason: "not-a-backup",
      detail:
        `it is not a Qubes backup but a file encrypted with "openssl enc" (one piece of a backup?); give the whole backup file, or the folder it was untarred into`,
    };
  }
  return { reason: "not-a-backup", detail: "it is not a Qubes backup (not a tar archive)" };
}

/** `Cannot read "<name>"` as facts; standard input is named without quotes. */
function reading(name: string): { action: string; subject?: Subject } {
  return name === "standard input"
    ? { action: "read standard input" }
    : { action: "read", subject: { kind: "file", name } };
}

/**
 * Reads the first tar block of a backup and checks that it starts like a tar archive.
 *
 * @returns The bytes read, to be read again.
 * @throws {IncompleteError} For an empty file.
 * @throws {UnsupportedError} For anything that is not a tar archive, naming what it is.
 */
async function checkStart(reader: ByteReader, name: string): Promise<Uint8Array> {
  const head = new Uint8Array(512);
  let filled = 0;
  while (filled < head.length) {
    const n = await reader.read(head.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  const got = head.subarray(0, filled);
  if (filled === 0) {
    throw new IncompleteError({ reason: "truncated", ...reading(name), detail: "it is empty" });
  }
  if (filled < head.length || (!isZeroBlock(head) && !hasValidChecksum(head))) {
    const what = notTar(got, name);
    throw new UnsupportedError({ reason: what.reason, ...reading(name), detail: what.detail });
  }
  return got;
}

/** `reader` with `head` read again before the rest. */
function prefixed(head: Uint8Array, reader: ByteReader): ByteReader {
  let rest = head;
  return {
    read(p) {
      if (rest.length === 0) return reader.read(p);
      const n = Math.min(p.length, rest.length);
      p.set(rest.subarray(0, n));
      rest = rest.subarray(n);
      return Promise.resolve(n);
    },
  };
}

function fromReader(
  reader: ByteReader,
  totalBytes: number | undefined,
  close: () => void,
  onRead: ((read: number, total: number | undefined) => void) | undefined,
): Source {
  let count = 0;
  const counting: ByteReader = onRead === undefined ? reader : {
    async read(p) {
      const n = await reader.read(p);
      if (n !== null) count += n;
      onRead(count, totalBytes);
      return n;
    },
  };
  let closed = false;
  return {
    kind: "entries",
    entries: readOuterArchive(counting),
    totalBytes,
    close() {
      if (closed) return;
      closed = true;
      close();
    },
  };
}
