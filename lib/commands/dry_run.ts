/**
 * `restore --dry-run`: a stream that records what a restore would write (the checks are made by
 * restore's writer on a file system in memory), and the free space of the output folder's
 * file system.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { safeRelativePath } from "../output/mod.ts";
import type { TarEvent } from "../tar/mod.ts";

/** A file or link a restore would write. */
export interface PlannedFile {
  /** Path relative to the output folder. */
  path: string;
  /** A regular file, or a link (symbolic or hard: no data of its own). */
  kind: "file" | "link";
  /** Apparent size in bytes (0 for a link). */
  size: number;
  /** Disk space it needs: its data rounded up to 4 KiB blocks (holes take none; links 0). */
  space: number;
  /** Something exists at that path already. */
  exists: boolean;
}

const BLOCK = 4096;

function roundUp(bytes: number): number {
  return Math.ceil(bytes / BLOCK) * BLOCK;
}

/**
 * Whether something exists at `path`. Unlike `existsSync` of lib/fs_errors.ts, a path that
 * cannot be looked at (no permission) counts as absent: a dry run estimates, and the restore
 * itself meets that error with its own message.
 */
function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A `TransformStream<TarEvent, TarEvent>` that passes every event on unchanged and, for each
 * regular file and link member the restore would write (`mapName` gives its output path, or
 * undefined for a member left out), reports the output path (through the same path checks as
 * a restore), the size, the space its data needs, and whether the path exists already. The
 * dry run pipes its output into restore's writer on a file system in memory that reads
 * through to the output folder, so every check restore makes is made.
 */
export class DryRunPlanner extends TransformStream<TarEvent, TarEvent> {
  /**
   * @param root The output folder (it need not exist).
   * @param mapName Member name to output path, as the restore maps it.
   * @param onFile Told each file or link once its data has been read.
   */
  constructor(
    root: string,
    mapName: (member: string) => string | undefined,
    onFile: (file: PlannedFile) => void,
  ) {
    let current: PlannedFile | undefined;
    super({
      transform(event, controller) {
        if (event.type === "entry") {
          const entry = event.entry;
          current = undefined;
          const kind = entry.kind === "file"
            ? "file"
            : entry.kind === "symlink" || entry.kind === "hardlink"
            ? "link"
            : undefined;
          const mapped = kind === undefined ? undefined : mapName(entry.name);
          if (kind !== undefined && mapped !== undefined) {
            const path = safeRelativePath(mapped).join("/");
            current = {
              path,
              kind,
              size: kind === "file" ? entry.size : 0,
              space: 0,
              exists: existsSync(`${root}/${path}`),
            };
          }
        } else if (event.type === "data") {
          if (current !== undefined) current.space += roundUp(event.bytes.length);
        } else if (current !== undefined) {
          onFile(current);
          current = undefined;
        }
        controller.enqueue(event);
      },
    });
  }
}

/**
 * Bytes available to an unprivileged user in the file system that holds `path` (or its
 * nearest existing parent); `undefined` when that cannot be found out (Deno's `statfs` needs
 * `--allow-sys=statfs`).
 */
export async function freeSpace(path: string): Promise<number | undefined> {
  let at = path;
  for (let i = 0; i < 64; i++) {
    try {
      const stats = await statfs(at);
      return Number(stats.bavail) * Number(stats.bsize);
    } catch (error) {
      if (
        !(error instanceof Deno.errors.NotFound) && (error as { code?: string }).code !== "ENOENT"
      ) {
        return undefined;
      }
    }
    if (at === "/" || at === ".") return undefined;
    const trimmed = at.replace(/\/+$/, "");
    const slash = trimmed.lastIndexOf("/");
    at = slash === -1 ? "." : slash === 0 ? "/" : trimmed.slice(0, slash);
  }
  return undefined;
}
