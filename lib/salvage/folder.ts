/**
 * The list of a salvaged folder item (a template's folder, the dom0 home, a format-1 VM
 * folder, the `apps` of a standalone VM): `FOLDER.salvaged.json` beside the folder, telling
 * which members were fully recovered and which were not:
 *
 * ```json
 * {
 *   "folder": "tpl",
 *   "recovered": ["tpl", "tpl/root.img"],
 *   "lost": [
 *     { "member": "tpl/private.img", "reason": "hmac-mismatch", "chunk": "vm3/..002",
 *       "salvaged": "tpl/private.img.salvaged" },
 *     { "member": null, "reason": "hmac-mismatch", "chunk": "vm3/..002",
 *       "after": "tpl/private.img", "before": "tpl/volatile.img" }
 *   ],
 *   "notMade": [{ "member": "tpl/icon.png", "kind": "symlink", "target": "/usr/share/..." }]
 * }
 * ```
 *
 * - `recovered`: members complete and exact: each file as `NAME.salvaged` with `"lost": []`
 *   (and its `.json`), each folder made.
 * - `lost`: a member that was not recovered whole (`salvaged` names its `.salvaged` file when
 *   part of it was written, else `null`); or, with `"member": null`, a break in the item's
 *   data where the headers of members were lost, so that members there are not known by name:
 *   they lay in the item after `after` (the last member seen before, or `null`) and before
 *   `before` (the first member found again after it, or `null` when none was).
 * - `notMade`: links and other members that were read whole but that salvage does not make
 *   (with their target, to make them by hand).
 *
 * @module
 */

import { OutputError } from "../errors.ts";
import { describeFsError, writeReasonOf } from "../fs_errors.ts";
import { safeRelativePath } from "../output/mod.ts";
import type { TarEntry } from "../tar/mod.ts";
import type { LostCause } from "./lost.ts";
import { makeFolders, type SalvagedFile } from "./writer.ts";

/** A member (or, with `member: null`, members not known by name) that was not recovered. */
export interface LostMember {
  member: string | null;
  reason: string;
  chunk: string | null;
  /** Its `.salvaged` file, when part of it was written. */
  salvaged?: string | null;
  /** For `member: null`: the last member seen before the break. */
  after?: string | null;
  /** For `member: null`: the first member found again after the break. */
  before?: string | null;
}

/** A member read whole that salvage does not make. */
export interface NotMadeMember {
  member: string;
  kind: string;
  target: string;
}

/** What `FOLDER.salvaged.json` holds. */
export interface SalvagedFolder {
  folder: string;
  recovered: string[];
  lost: LostMember[];
  notMade: NotMadeMember[];
}

/** Collects the list of one folder item while it is salvaged. */
export class FolderRecord {
  readonly #record: SalvagedFolder;
  /** The last member seen. */
  #last: string | null = null;
  /** Breaks still waiting for the first member after them. */
  #open: LostMember[] = [];

  constructor(folder: string) {
    this.#record = { folder, recovered: [], lost: [], notMade: [] };
  }

  /** A member's header, `rel` its output path. */
  entry(entry: TarEntry, rel: string): void {
    for (const gap of this.#open) gap.before = rel;
    this.#open = [];
    this.#last = rel;
    if (entry.kind === "directory") this.#record.recovered.push(rel);
    else if (entry.kind !== "file") {
      this.#record.notMade.push({ member: rel, kind: entry.kind, target: entry.linkname });
    }
  }

  /** A file member was written (complete when it lost nothing). */
  file(file: SalvagedFile): void {
    const first = file.lost[0];
    if (first === undefined) this.#record.recovered.push(file.file);
    else {
      this.#record.lost.push({
        member: file.file,
        reason: first.reason,
        chunk: first.chunk,
        salvaged: `${file.file}.salvaged`,
      });
    }
  }

  /** A member (or a folder's listing) that could not be read at all, `rel` its output path. */
  unreadable(rel: string, reason: string): void {
    for (const gap of this.#open) gap.before = rel;
    this.#open = [];
    this.#last = rel;
    this.#record.lost.push({ member: rel, reason, chunk: null, salvaged: null });
  }

  /**
   * A member known by name whose header was lost in a break (format 2: the member the volume
   * after the break continues), `rel` its output path: nothing of it is written.
   */
  lostMember(rel: string, cause: LostCause): void {
    for (const gap of this.#open) gap.before = rel;
    this.#open = [];
    this.#last = rel;
    const chunk = cause.chunk === "" ? null : cause.chunk;
    this.#record.lost.push({ member: rel, reason: cause.reason, chunk, salvaged: null });
  }

  /** A break: members after it may be lost without being seen. */
  gap(cause: LostCause): void {
    const chunk = cause.chunk === "" ? null : cause.chunk;
    const last = this.#open.at(-1);
    if (last !== undefined && last.reason === cause.reason && last.chunk === chunk) return;
    const gap: LostMember = {
      member: null,
      reason: cause.reason,
      chunk,
      after: this.#last,
      before: null,
    };
    this.#record.lost.push(gap);
    this.#open.push(gap);
  }

  /** The list so far. */
  get record(): SalvagedFolder {
    return this.#record;
  }

  /**
   * Writes `FOLDER.salvaged.json` below `root`.
   *
   * @throws {OutputError} When it exists (and `force` is not given) or cannot be written.
   */
  async write(root: string, force: boolean): Promise<void> {
    const rel = safeRelativePath(this.#record.folder).join("/");
    const path = `${root}/${rel}.salvaged.json`;
    await makeFolders(root, rel);
    try {
      await Deno.writeTextFile(path, JSON.stringify(this.#record) + "\n", {
        createNew: !force,
      });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new OutputError({
          reason: "exists",
          action: "salvage",
          subject: { kind: "file", name: `${rel}.salvaged.json` },
          detail: "it exists",
        });
      }
      throw new OutputError({
        reason: writeReasonOf(error),
        action: "write",
        subject: { kind: "file", name: `${rel}.salvaged.json` },
        detail: describeFsError(error),
      }, { cause: error });
    }
  }
}
