/**
 * Opening what the user named as the backup: a file, standard input (`-`), a directory holding
 * an untarred backup, or a format-1 backup directory.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
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
 * @throws {UsageError} When the path cannot be opened.
 */
export async function openSource(
  path: string,
  onRead?: (read: number, total: number | undefined) => void,
): Promise<Source> {
  if (path === "-") return fromReader(Deno.stdin, undefined, () => {}, onRead);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new UsageError(`Cannot open "${path}": ${describeFsError(error)}`, { cause: error });
  }
  if (info.isDirectory) {
    if (await exists(`${path}/qubes.xml`)) return { kind: "format1", dir: path };
    const entries = readBackupDirectory(path);
    return {
      kind: "entries",
      entries,
      totalBytes: undefined,
      close: () => {},
    };
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new UsageError(`Cannot open "${path}": ${describeFsError(error)}`, { cause: error });
  }
  return fromReader(file, info.size, () => file.close(), onRead);
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

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** A short reason for a file-system error, without the stack or the OS error number. */
export function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file or directory";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return "not permitted by Deno's permissions";
  if (error instanceof Error) return error.message.replace(/ \(os error \d+\).*$/, "");
  return String(error);
}
