/**
 * Writes what can be recovered of a damaged item (`restore --salvage`): each file member as
 * `NAME.salvaged`, where every byte that was not verified is zero (lost data is never written,
 * so it reads as a hole), and `NAME.salvaged.json` listing the lost byte ranges and why:
 * `{"file": "work/private.img", "size": N, "lost": [{"offset", "length", "reason", "chunk"}]}`.
 * Bytes outside the listed ranges are exactly the original's. Verified bytes whose place is
 * not authenticated are written and listed apart, under `unchecked` (same shape).
 *
 * Only regular files are salvaged; folders are made as needed, links and other members are not
 * made. A file is written under a temporary name and renamed when done; nothing is written
 * through a symbolic link, and an existing file is replaced only with `force`.
 *
 * @module
 */

import { OutputError, RecoverError } from "../errors.ts";
import { safeRelativePath } from "../output/mod.ts";
import type { TarEntry, TarEvent } from "../tar/mod.ts";
import { type LostCause, lostCause, uncheckedCause } from "./lost.ts";

/** A lost byte range of a salvaged file. */
export interface LostRange {
  offset: number;
  length: number;
  /** `hmac-mismatch`, `missing`, `truncated`, `damaged`, `out-of-place` ... */
  reason: string;
  /** The chunk that held it, when known. */
  chunk: string | null;
}

/** A salvaged file, as its `.salvaged.json` tells it. */
export interface SalvagedFile {
  /** The file's path relative to the output folder (without `.salvaged`). */
  file: string;
  /** Its size. */
  size: number;
  /** Its lost ranges, in order. */
  lost: LostRange[];
  /**
   * Ranges of verified bytes whose place in the file is not authenticated (reason
   * `order-unchecked`: uncompressed format 3 does not authenticate a chunk's place), in
   * order; absent when there is none. Their bytes are written.
   */
  unchecked?: LostRange[];
}

/** Options of {@link SalvageWriter}. */
export interface SalvageWriterOptions {
  /** Output folder. */
  root: string;
  /** Output path of a member, relative to `root` (without `.salvaged`). */
  mapName: (member: string) => string;
  /** Replace existing `.salvaged` files. */
  force: boolean;
  /** Told each salvaged file once it and its `.json` are written. */
  onSalvaged?: (file: SalvagedFile) => void;
  /** Told each member's header, with its output path (see `folder.ts`). */
  onEntry?: (entry: TarEntry, rel: string) => void;
}

interface Current {
  rel: string;
  path: string;
  temp: string;
  file: Deno.FsFile;
  size: number;
  lost: LostRange[];
  unchecked: LostRange[];
  /** End of the last data event: what lies after it is unknown when the stream breaks. */
  end: number;
}

/**
 * A `.salvaged` file writer for one item's tar events (see the module text). Events are
 * written one by one, in order; a stream that breaks is told with {@linkcode fail} (not a
 * stream abort, which would drop the events still queued before the break).
 */
export class SalvageWriter {
  #options: SalvageWriterOptions;
  #current: Current | undefined;

  constructor(options: SalvageWriterOptions) {
    this.#options = options;
  }

  /** The output path of the file being written (without `.salvaged`), if any. */
  get writing(): string | undefined {
    return this.#current?.rel;
  }

  /** Writes one event. */
  async write(event: TarEvent): Promise<void> {
    if (event.type === "entry") {
      await this.#finish();
      const entry = event.entry;
      if (this.#options.onEntry !== undefined) {
        const rel = safeRelativePath(this.#options.mapName(entry.name)).join("/");
        this.#options.onEntry(entry, rel);
        if (entry.kind === "directory") await makeFolders(this.#options.root, rel + "/x");
      }
      if (entry.kind !== "file") return;
      this.#current = await open(this.#options, event.entry.name, event.entry.size);
    } else if (event.type === "data") {
      const current = this.#current;
      if (current === undefined) return;
      const cause = lostCause(event.bytes);
      if (cause !== undefined) addLost(current.lost, event.offset, event.bytes.length, cause);
      else {
        const unchecked = uncheckedCause(event.bytes);
        if (unchecked !== undefined) {
          addLost(current.unchecked, event.offset, event.bytes.length, unchecked);
        }
        await writeAt(current.file, event.offset, event.bytes);
      }
      current.end = Math.max(current.end, event.offset + event.bytes.length);
    } else {
      await this.#finish();
    }
  }

  /** The events ended: finishes the file being written, if any. */
  async close(): Promise<void> {
    await this.#finish();
  }

  /**
   * The stream broke inside a member: what lies after its last data is unknown, so it is
   * listed as lost, and the file is finished.
   */
  async fail(reason: unknown): Promise<void> {
    const current = this.#current;
    if (current !== undefined && current.end < current.size) {
      const why = reason instanceof RecoverError ? reason.reason : "damaged";
      addLost(current.lost, current.end, current.size - current.end, { reason: why, chunk: "" });
    }
    await this.#finish();
  }

  /**
   * A break of unknown length in the item's data (`gap.ts`): the file being written loses
   * everything after its last data, for `cause`, and is finished.
   */
  async gap(cause: LostCause): Promise<void> {
    const current = this.#current;
    if (current !== undefined && current.end < current.size) {
      addLost(current.lost, current.end, current.size - current.end, cause);
    }
    await this.#finish();
  }

  /** Abandons the file being written (an interruption): its temporary file is removed. */
  async discard(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (current === undefined) return;
    current.file.close();
    await Deno.remove(current.temp).catch(() => {});
  }

  async #finish(): Promise<void> {
    const done = this.#current;
    this.#current = undefined;
    if (done === undefined) return;
    await done.file.truncate(done.size);
    done.file.close();
    await Deno.rename(done.temp, done.path);
    const record: SalvagedFile = {
      file: done.rel,
      size: done.size,
      lost: done.lost,
      ...(done.unchecked.length > 0 ? { unchecked: done.unchecked } : {}),
    };
    await Deno.writeTextFile(`${done.path}.json`, JSON.stringify(record) + "\n");
    this.#options.onSalvaged?.(record);
  }
}

/** Opens the temporary file of a salvaged member, its folders made. */
async function open(options: SalvageWriterOptions, member: string, size: number): Promise<Current> {
  const rel = safeRelativePath(options.mapName(member)).join("/");
  const parts = rel.split("/");
  const dir = await makeFolders(options.root, rel);
  const name = `${parts.at(-1)!}.salvaged`;
  const path = `${dir}/${name}`;
  if (!options.force && await Deno.lstat(path).then(() => true, () => false)) {
    throw new OutputError({
      reason: "exists",
      action: "salvage",
      subject: { kind: "file", name: `${rel}.salvaged` },
      detail: "it exists",
    });
  }
  const temp = `${dir}/.${name}.qubes-recover-partial`;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true });
  return { rel, path, temp, file, size, lost: [], unchecked: [], end: 0 };
}

/** Makes the folders of `rel` below `root` (never through a link); returns the innermost. */
export async function makeFolders(root: string, rel: string): Promise<string> {
  let dir = root;
  for (const part of rel.split("/").slice(0, -1)) {
    dir = `${dir}/${part}`;
    const info = await Deno.lstat(dir).catch(() => undefined);
    if (info === undefined) await Deno.mkdir(dir);
    else if (!info.isDirectory) {
      throw new OutputError({
        reason: "in-the-way",
        action: "salvage",
        subject: { kind: "member", name: rel },
        detail: `"${dir}" is not a folder`,
      });
    }
  }
  return dir;
}

/** Writes `bytes` at `offset`. */
async function writeAt(file: Deno.FsFile, offset: number, bytes: Uint8Array): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

/** Adds a lost range, joined with the one before when they touch and have one cause. */
function addLost(lost: LostRange[], offset: number, length: number, cause: LostCause): void {
  const chunk = cause.chunk === "" ? null : cause.chunk;
  const last = lost.at(-1);
  if (
    last !== undefined && last.offset + last.length === offset && last.reason === cause.reason &&
    last.chunk === chunk
  ) {
    last.length += length;
    return;
  }
  lost.push({ offset, length, reason: cause.reason, chunk });
}
