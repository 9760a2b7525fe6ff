/**
 * The program's version, in one place: `qubes-recover --version` prints {@link versionLines}.
 * A release build may add lines (runtime, source commit) here.
 *
 * @module
 */

/** The version of qubes-recover (semantic versioning). */
export const VERSION = "0.9.0";

/** What `--version` prints, one fact per line; the first line is `qubes-recover VERSION`. */
export function versionLines(): string[] {
  return [`qubes-recover ${VERSION}`];
}
