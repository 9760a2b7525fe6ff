/**
 * Whether a VM or user name from a backup can become a folder name.
 *
 * @module
 */

const MAX_NAME_BYTES = 255;
// deno-lint-ignore no-control-regex -- control characters are what is refused
const UNSAFE_CHARACTER = /[/\x00-\x1F\x7F]/;

/**
 * Whether `name` is usable as one path component of the output: not empty, not `.` or `..`,
 * no `/`, no NUL or other control character (they would also garble a terminal), and at most
 * 255 bytes of UTF-8 (the usual file-name limit).
 *
 * Names like `a..b` are accepted: without a `/`, `..` can only escape as the whole name.
 *
 * @example
 * ```ts
 * isSafeName("work"); // true
 * isSafeName("../../etc"); // false
 * ```
 */
export function isSafeName(name: string): boolean {
  if (name === "" || name === "." || name === "..") return false;
  if (UNSAFE_CHARACTER.test(name)) return false;
  return name.length * 3 <= MAX_NAME_BYTES ||
    new TextEncoder().encode(name).length <= MAX_NAME_BYTES;
}
