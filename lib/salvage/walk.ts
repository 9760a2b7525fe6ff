/**
 * `restore --salvage` of a format-1 item (a VM's folder or the dom0 home, copied as plain
 * files): the folder walked as `restore` walks it (`lib/format/format1.ts`), except that a
 * member that cannot be read (an I/O error, no permission, a FIFO or device where a file
 * should be, a file that shrinks while read) does not end the walk: it is told as an
 * `unreadable` event and the walk goes on with the next member. A file that fails part way
 * keeps what was read before the failure.
 *
 * @module
 */

import { RecoverError } from "../errors.ts";
import { describeFsError } from "../fs_errors.ts";
import type { TarEntry, TarEvent } from "../tar/mod.ts";

/** A member (or a folder's listing) that could not be read, and why. */
export interface UnreadableEvent {
  type: "unreadable";
  /** The member's backup path. */
  name: string;
  /** The reason code (`damaged`). */
  reason: string;
  /** What went wrong. */
  detail: string;
}

/** What a salvage walk yields. */
export type WalkEvent = TarEvent | UnreadableEvent;

const BLOCK = 1024 * 1024;

function unreadable(name: string, error: unknown): UnreadableEvent {
  return {
    type: "unreadable",
    name,
    reason: error instanceof RecoverError ? error.reason : "damaged",
    detail: error instanceof RecoverError ? error.message : describeFsError(error),
  };
}

/** The members of `root/rel`, as tar events, with the unreadable ones told and passed over. */
export async function* salvageWalk(root: string, rel: string): AsyncGenerator<WalkEvent> {
  const path = `${root}/${rel}`;
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    yield unreadable(rel, error);
    return;
  }
  const base: Omit<TarEntry, "kind" | "typeflag" | "linkname" | "size"> = {
    name: rel,
    mode: (info.mode ?? 0o644) & 0o7777,
    mtime: Math.floor((info.mtime?.getTime() ?? 0) / 1000),
    sparse: false,
  };
  if (info.isSymlink) {
    let linkname: string;
    try {
      linkname = await Deno.readLink(path);
    } catch (error) {
      yield unreadable(rel, error);
      return;
    }
    yield { type: "entry", entry: { ...base, kind: "symlink", typeflag: "2", linkname, size: 0 } };
    yield { type: "end" };
  } else if (info.isDirectory) {
    yield {
      type: "entry",
      entry: { ...base, kind: "directory", typeflag: "5", linkname: "", size: 0 },
    };
    yield { type: "end" };
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(path)) names.push(entry.name);
    } catch (error) {
      yield unreadable(rel, error);
    }
    names.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
    for (const name of names) yield* salvageWalk(root, `${rel}/${name}`);
  } else if (info.isFile) {
    yield {
      type: "entry",
      entry: { ...base, kind: "file", typeflag: "0", linkname: "", size: info.size, sparse: true },
    };
    yield* fileData(path, rel, info.size);
  } else {
    const what = info.isFifo ? "a FIFO" : info.isSocket ? "a socket" : "a device";
    yield {
      type: "unreadable",
      name: rel,
      reason: "damaged",
      detail: `"${path}" is ${what}, not a regular file`,
    };
  }
}

/** A file's data blocks (all-zero blocks left as holes), then its end or why it broke off. */
async function* fileData(path: string, rel: string, size: number): AsyncGenerator<WalkEvent> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    yield unreadable(rel, error);
    return;
  }
  try {
    let offset = 0;
    while (offset < size) {
      const buffer = new Uint8Array(Math.min(BLOCK, size - offset));
      let filled = 0;
      try {
        while (filled < buffer.length) {
          const n = await file.read(buffer.subarray(filled));
          if (n === null) throw new Error("it ended early (it shrank while being read)");
          filled += n;
        }
      } catch (error) {
        if (filled > 0) yield { type: "data", offset, bytes: buffer.subarray(0, filled) };
        yield {
          type: "unreadable",
          name: rel,
          reason: "damaged",
          detail: `Cannot read "${path}" at byte ${offset + filled}: ${describeFsError(error)}`,
        };
        return;
      }
      if (buffer.some((byte) => byte !== 0)) yield { type: "data", offset, bytes: buffer };
      offset += buffer.length;
    }
    yield { type: "end" };
  } finally {
    file.close();
  }
}
