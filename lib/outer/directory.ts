/**
 * A backup that the user already untarred (`tar -xf backup`, step 1 of the manual procedure),
 * read as the same {@link OuterEntry} sequence the outer archive would give.
 *
 * @module
 */

import { parseChunkName } from "./chunk_name.ts";
import { DamagedError, IncompleteError } from "../errors.ts";
import { DEFAULT_MAX_ENTRY_SIZE, newPiece, readFull } from "./tar_reader.ts";
import type { OuterArchiveOptions, OuterEntry } from "./tar_reader.ts";

/** A file found under the directory. */
interface Found {
  /** Name relative to the directory, `/`-separated. */
  name: string;
  size: number;
}

/** A chunk file with its item, index and `.hmac` companion. */
/**
 * The same entries from a directory holding an already untarred backup (the user ran step 1
 * of the manual procedure, `tar -xf backup`): files found recursively, yielded in backup
 * order: backup-header, backup-header.hmac, qubes.xml.000 (+ .hmac or .enc), then every other
 * item in name order with chunks in NUMERIC order (.999 before .1000) each followed by its
 * .hmac; names like "vm3/..000" (template dir items) parse by splitting at the LAST dot.
 * Files that are neither chunks nor hmacs are yielded too, in name order, at the end (the
 * caller decides). Symlinks are not followed.
 *
 * @param dir The directory.
 * @param options Limits (same as {@link readOuterArchive}).
 * @returns The entries; `read()` fails with `IncompleteError` if a file shrank meanwhile.
 * @throws {DamagedError} For a file larger than `options.maxEntrySize`.
 *
 * @example
 * ```ts
 * for await (const entry of readBackupDirectory("/mnt/backup-untarred")) console.log(entry.name);
 * ```
 */
export async function* readBackupDirectory(
  dir: string,
  options: OuterArchiveOptions = {},
): AsyncGenerator<OuterEntry> {
  const maxEntrySize = options.maxEntrySize ?? DEFAULT_MAX_ENTRY_SIZE;
  const files: Found[] = [];
  await collect(dir, "", files);
  for (const file of orderBackupFiles(files)) {
    if (file.size > maxEntrySize) {
      throw new DamagedError({
        reason: "too-large",
        subject: { kind: "entry", name: file.name, inDetail: true },
        action: "read the backup",
        detail: `"${file.name}" is ${file.size} bytes, more than the limit of ${maxEntrySize}`,
      });
    }
    yield fileEntry(`${dir}/${file.name}`, file);
  }
}

/**
 * Puts the files of an untarred backup in the order the outer archive would hold them.
 *
 * @param files Names (relative, `/`-separated) with sizes, in any order.
 * @returns The same files in backup order.
 */
export function orderBackupFiles<T extends { name: string }>(files: T[]): T[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const first: T[] = [];
  for (const name of ["backup-header", "backup-header.hmac"]) {
    const f = byName.get(name);
    if (f) {
      first.push(f);
      byName.delete(name);
    }
  }
  const chunks: { file: T; item: string; index: number; hmac: T | undefined }[] = [];
  for (const file of byName.values()) {
    const parsed = parseChunkName(file.name, file.name.endsWith(".enc"));
    if (!parsed) continue;
    const hmac = byName.get(`${file.name}.hmac`);
    chunks.push({ file, ...parsed, hmac });
  }
  for (const chunk of chunks) {
    byName.delete(chunk.file.name);
    if (chunk.hmac) byName.delete(chunk.hmac.name);
  }
  const rank = (item: string) => item === "qubes.xml" ? 0 : 1;
  chunks.sort((a, b) =>
    rank(a.item) - rank(b.item) || compare(a.item, b.item) || a.index - b.index ||
    compare(a.file.name, b.file.name)
  );
  const rest = [...byName.values()].sort((a, b) => compare(a.name, b.name));
  return [...first, ...chunks.flatMap((c) => c.hmac ? [c.file, c.hmac] : [c.file]), ...rest];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function collect(root: string, relative: string, out: Found[]): Promise<void> {
  const path = relative === "" ? root : `${root}/${relative}`;
  for await (const item of Deno.readDir(path)) {
    const name = relative === "" ? item.name : `${relative}/${item.name}`;
    if (item.isSymlink) continue;
    if (item.isDirectory) await collect(root, name, out);
    else if (item.isFile) out.push({ name, size: (await Deno.lstat(`${root}/${name}`)).size });
  }
}

function fileEntry(path: string, file: Found): OuterEntry {
  const { name, size } = file;
  return {
    name,
    size,
    async read(onPiece?: (piece: Uint8Array) => void): Promise<Uint8Array> {
      const out = new Uint8Array(size);
      using handle = await Deno.open(path);
      const got = await readFull(handle, out, onPiece);
      if (got < size) {
        throw new IncompleteError({
          reason: "truncated",
          subject: { kind: "entry", name, inDetail: true },
          action: "read the backup",
          detail: `it ends inside "${name}" (${got} of ${size} bytes)`,
        });
      }
      return out;
    },
    async readPieces(pieceSize, onPiece, allocate = newPiece): Promise<void> {
      using handle = await Deno.open(path);
      for (let at = 0; at < size;) {
        const length = Math.min(pieceSize, size - at);
        const piece = await allocate(length);
        const got = await readFull(handle, piece);
        if (got < length) {
          throw new IncompleteError({
            reason: "truncated",
            subject: { kind: "entry", name, inDetail: true },
            action: "read the backup",
            detail: `it ends inside "${name}" (${at + got} of ${size} bytes)`,
          });
        }
        at += length;
        await onPiece(piece);
      }
    },
    skip(): Promise<void> {
      return Promise.resolve();
    },
  };
}
