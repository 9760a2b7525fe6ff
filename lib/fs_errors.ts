/**
 * File-system errors in one place: {@linkcode describeFsError} words what cannot be read (a
 * backup, a passphrase file, an image), {@linkcode toOutputError} and {@linkcode writeReasonOf}
 * what cannot be written (with a reason code), {@linkcode exists} turns "not found" into `false`.
 *
 * @module
 */

import { OutputError } from "./errors.ts";

/** Words for the `errno` codes a restore can meet, phrased for the end of an error message. */
const REASONS: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  EIO: "input/output error",
  ENAMETOOLONG: "name too long",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EMLINK: "too many links",
  ENOTDIR: "a parent is not a directory",
  EISDIR: "it is a directory",
  EEXIST: "it exists",
  ENOENT: "a parent directory is missing",
  ELOOP: "too many levels of symbolic links",
  EXDEV: "crosses file systems",
  ENOTSUP: "not supported by the file system",
  EOPNOTSUPP: "not supported by the file system",
  EINVAL: "the file system refused the size or offset",
};

/** The `errno` code of an operating-system error (`"ENOSPC"`), or `undefined` for anything else. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  if ("code" in error && typeof error.code === "string") return error.code;
  // Some Deno errors carry only the number: "File too large (os error 27)".
  const number = error instanceof Error ? /\(os error (\d+)\)/.exec(error.message)?.[1] : undefined;
  return number === undefined ? undefined : LINUX_ERRNO[Number(number)];
}

/** Linux errno numbers of the codes above. */
const LINUX_ERRNO: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  13: "EACCES",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  31: "EMLINK",
  36: "ENAMETOOLONG",
  40: "ELOOP",
  95: "EOPNOTSUPP",
  122: "EDQUOT",
};

/**
 * Wrap an operating-system error as `OutputError('Cannot write "<path>": <reason>')`, keeping it
 * as `cause`; any other value is returned unchanged so bugs stay visible as bugs.
 */
export function toOutputError(error: unknown, path: string): unknown {
  const code = errnoCode(error);
  if (code === undefined) return error;
  const words = REASONS[code] ?? (error instanceof Error ? error.message : code);
  return new OutputError({
    reason: writeReasonOf(error),
    action: "write",
    subject: { kind: "file", name: path },
    detail: words,
  }, { cause: error });
}

/** The reason code of an error met writing: from its `errno` code, `write-failed` by default. */
export function writeReasonOf(error: unknown): "no-space" | "no-permission" | "write-failed" {
  const code = errnoCode(error);
  if (code === "ENOSPC" || code === "EDQUOT") return "no-space";
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") return "no-permission";
  return "write-failed";
}

/**
 * Whether anything (including a dangling symlink) exists at `path`: "not found" is `false`,
 * any other error is thrown.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** {@linkcode exists}, synchronously (for the small-file path that avoids the thread pool). */
export function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** A short reason for a file-system error, without the stack or the OS error number. */
export function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file or directory";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return "not permitted by Deno's permissions";
  if (error instanceof Error) return error.message.replace(/ \(os error \d+\).*$/, "");
  return String(error);
}
