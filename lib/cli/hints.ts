/**
 * The hints that name command-line options, added to an error's message by the CLI: library
 * errors say what happened (`Cannot restore "x": it exists`, reason `exists`); which option is
 * the way out is the command line's business. Chosen from the error's reason, never its text.
 *
 * @module
 */

import { RecoverError } from "../errors.ts";

/** The way out of an `exists` error for commands that replace files with `--force`. */
export const FORCE_HINT = " (use --force to replace it)";
/** The way out of an `exists` error in `restore`, which can also resume. */
export const RESUME_HINT =
  " (use --skip-existing to keep it and restore the rest, or --force to replace it)";
/** The way out of an `exists` error in `files get`, which can also resume. */
export const COPY_RESUME_HINT =
  " (use --skip-existing to keep it and copy the rest, or --force to replace it)";
/** The way out when a dry run finds files of the restore in the output folder already. */
export const RESUME_ALL_HINT = " (use --skip-existing to keep them, or --force to replace them)";
/** The way out of a scrypt cost beyond the bounds (`beyond-limit`). */
export const SCRYPT_HINT = "; allow it with --max-scrypt-memory if you trust this backup";

/** After a restore without `--salvage` that left damaged or incomplete items out. */
export const SALVAGE_HINT =
  "; every other item is restored; add --salvage to also get what verifies of the damaged " +
  "items (as NAME.salvaged, lost bytes as zeros; docs/salvage.md)";

/** The general hint of each reason that has one, with its separator. */
const HINTS: Partial<Record<RecoverError["reason"], string>> = {
  exists: FORCE_HINT,
  "beyond-limit": SCRYPT_HINT,
};

const chosen = new WeakMap<RecoverError, string>();

/** Gives `error` a hint of the command's own (instead of the general one for its reason). */
export function withHint(error: unknown, reason: RecoverError["reason"], hint: string): unknown {
  return error instanceof RecoverError && error.reason === reason
    ? withAnyHint(error, hint)
    : error;
}

/** Gives `error` the hint `hint`, whatever its reason. */
export function withAnyHint(error: unknown, hint: string): unknown {
  if (error instanceof RecoverError) chosen.set(error, hint);
  return error;
}

/** The hint for an error, or undefined. */
export function hintFor(error: RecoverError): string | undefined {
  return chosen.get(error) ?? HINTS[error.reason];
}

/** The error's message with its hint, as the user sees it. */
export function messageWithHint(error: RecoverError): string {
  const hint = hintFor(error);
  return hint === undefined ? error.message : `${error.message}${hint}`;
}
