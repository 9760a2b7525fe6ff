/**
 * The program's version, in one place: `qubes-recover --version` prints {@link versionLines}.
 * The runtime and the source commit come from lib/build_info.ts (baked in by a release build).
 *
 * @module
 */

import { buildLines } from "./build_info.ts";

/** The version of qubes-recover (semantic versioning). */
export const VERSION = "0.9.0";

/** What `--version` prints, one fact per line; the first line is `qubes-recover VERSION`. */
export function versionLines(): string[] {
  return [`qubes-recover ${VERSION}`, ...buildLines()];
}
