/**
 * The problems a run over every item met: each damaged, missing or undecodable chunk stops
 * only the item it belongs to, is recorded here, and the run goes on. At the end the run fails
 * with the worst of them (see {@linkcode worstProblem}), carrying the whole list.
 *
 * @module
 */

import { DamagedError, ExitCode, IncompleteError, oneLine, type RecoverError } from "../errors.ts";

/** One problem: what it concerns and the error that tells it. */
export interface Problem {
  /** The item it stopped (`vm5/private.img`), or undefined for one of the whole backup. */
  item: string | undefined;
  /** The VM the item belongs to (`dom0` for the dom0 home), when known. */
  vm: string | undefined;
  /** The damaged or missing chunk it names, when it names one. */
  chunk: string | undefined;
  /** The error; its reason says why (`hmac-mismatch`, `missing`, `truncated` ...). */
  error: DamagedError | IncompleteError;
}

/** Whether `error` stops only the item it is met in (damaged or missing data). */
export function isItemProblem(error: unknown): error is DamagedError | IncompleteError {
  return error instanceof DamagedError || error instanceof IncompleteError;
}

/** The chunk an error names: its own subject or that of the error it puts into context. */
export function chunkOf(error: RecoverError): string | undefined {
  for (let at: unknown = error; at !== undefined;) {
    if (!(at instanceof Error)) return undefined;
    const subject = (at as RecoverError).subject;
    if (subject?.kind === "chunk") return subject.name;
    at = (at as RecoverError).inner ?? at.cause;
  }
  return undefined;
}

/** A problem record for `error` met in `item`. */
export function problemOf(
  error: DamagedError | IncompleteError,
  item: { name: string; vm: string | undefined } | undefined,
): Problem {
  return { item: item?.name, vm: item?.vm, chunk: chunkOf(error), error };
}

/**
 * The worst problem: damaged data (exit code 4: it fails a check, so it may have been
 * tampered with) before missing data (exit code 5); the first one met among equals.
 */
export function worstProblem(problems: readonly Problem[]): Problem | undefined {
  return problems.find((p) => p.error.exitCode === ExitCode.Damaged) ?? problems[0];
}

const LISTS = new WeakMap<Error, readonly Problem[]>();

/** The problems an error that ended a run stands for (undefined for any other error). */
export function problemsOf(error: unknown): readonly Problem[] | undefined {
  return error instanceof Error ? LISTS.get(error) : undefined;
}

/**
 * The error that ends a run that met `problems` (at least one): the problem itself when it is
 * the only one; otherwise an error of the worst one's class and reason that counts them. Either
 * way {@linkcode problemsOf} gives the whole list.
 *
 * @param items How many items were tried.
 */
export function problemsError(problems: readonly Problem[], items: number): RecoverError {
  const worst = worstProblem(problems)!;
  if (problems.length === 1) {
    LISTS.set(worst.error, problems);
    return worst.error;
  }
  const failed = new Set(problems.map((p) => p.item).filter((name) => name !== undefined)).size;
  const detail = `${problems.length} problems in the backup (${failed} of ${items} ${
    items === 1 ? "item" : "items"
  } not complete; each is listed above); the worst: ${worst.error.message}`;
  const error = worst.error instanceof DamagedError
    ? new DamagedError({ reason: worst.error.reason, detail })
    : new IncompleteError({ reason: (worst.error as IncompleteError).reason, detail });
  LISTS.set(error, problems);
  return error;
}

/** One line telling a problem, for the summary at the end. */
export function problemLine(problem: Problem): string {
  const where = problem.item === undefined ? "the backup" : `item "${problem.item}"`;
  const chunk = problem.chunk === undefined ? "" : `, chunk "${problem.chunk}"`;
  return oneLine(`${where}${chunk}: ${problem.error.reason}: ${problem.error.message}`);
}

/** The `--json` record of a problem (docs/json.md). */
export function problemEvent(problem: Problem): { type: "problem" } & Record<string, unknown> {
  return {
    type: "problem",
    item: problem.item ?? null,
    vm: problem.vm ?? null,
    chunk: problem.chunk ?? null,
    reason: problem.error.reason,
    exitCode: problem.error.exitCode,
    message: problem.error.message,
  };
}
