/**
 * Normalising and vetting the relative paths a backup asks the writer to create.
 *
 * @module
 */

import { DamagedError } from "../errors.ts";

/**
 * Normalise a relative path from the backup into its components.
 *
 * `"."` and empty components are dropped (`vm3/./root.img` -> `["vm3", "root.img"]`, see spec
 * §8.2). Absolute paths, `".."` components, NUL bytes, and paths with nothing left after
 * normalising are refused: member names are the only thing deciding where bytes land, and the
 * outer names of v2/v3 backups are not even authenticated (spec T34).
 *
 * @param raw The path as mapped from the member name, e.g. `"work/private.img"`.
 * @returns The normalised components, never empty.
 * @throws {DamagedError} `Cannot restore "<raw>": unsafe path`.
 *
 * @example
 * ```ts
 * safeRelativePath("dom0-home/alice/./.bashrc"); // ["dom0-home", "alice", ".bashrc"]
 * safeRelativePath("../etc/passwd"); // throws DamagedError
 * ```
 */
export function safeRelativePath(raw: string): string[] {
  if (raw.startsWith("/") || raw.includes("\0")) throw unsafe(raw);
  const parts: string[] = [];
  for (const part of raw.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw unsafe(raw);
    parts.push(part);
  }
  if (parts.length === 0) throw unsafe(raw);
  return parts;
}

function unsafe(raw: string): DamagedError {
  return new DamagedError({
    reason: "unsafe-name",
    action: "restore",
    subject: { kind: "file", name: raw.replaceAll("\0", "\\0") },
    detail: "unsafe path",
  });
}
