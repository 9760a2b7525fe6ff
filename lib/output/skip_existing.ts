/**
 * `--skip-existing` (`restore`, `files get`): members whose output path holds something
 * already are left alone, so that a stopped run can be resumed without copying everything
 * again.
 *
 * @module
 */

import type { TreeWriterOptions } from "./tree_writer.ts";

/** How members are named in the output (`TreeWriterOptions.mapName` and `kept`). */
export type OutputNames = Pick<TreeWriterOptions, "mapName" | "kept">;

/**
 * Wraps a member-name mapping so that members whose output path exists already (anything but
 * a folder) are left alone: mapped to `undefined` (their data still read and checked) and told
 * to `skipped`; `kept` then gives their path, for a hard link to them. A decision is made once
 * per member, so a hard link to a restored file still finds it.
 *
 * @param root The output folder.
 * @param map Member name to output-relative path.
 * @param skipped Told each output path left alone.
 */
function skipExisting(
  root: string,
  map: (member: string) => string,
  skipped: (rel: string) => void,
): OutputNames {
  const decided = new Map<string, string | undefined>();
  const kept = new Map<string, string>();
  return {
    mapName: (member) => {
      if (decided.has(member)) return decided.get(member);
      const rel = map(member);
      let exists = false;
      try {
        // Synchronous: TreeWriter asks for the name synchronously. One lstat per member.
        exists = !Deno.lstatSync(`${root}/${rel}`).isDirectory;
      } catch {
        exists = false;
      }
      const result = exists ? undefined : rel;
      decided.set(member, result);
      if (exists) {
        kept.set(member, rel);
        skipped(rel);
      }
      return result;
    },
    kept: (member) => kept.get(member),
  };
}

/**
 * Output paths of members, `map` of each; with `skipped` (`--skip-existing`), members whose
 * path holds something already are left out and told to it (see {@linkcode skipExisting}).
 */
export function outputNames(
  root: string,
  map: (member: string) => string,
  skipped: ((rel: string) => void) | undefined,
): OutputNames {
  return skipped === undefined ? { mapName: map } : skipExisting(root, map, skipped);
}
