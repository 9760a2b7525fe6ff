/**
 * The last defence against the one failure a recovery tool must never have: a process that ends
 * with status 0 although the command did not finish. Deno ends a process with status 0 when its
 * event loop runs empty, when anything calls `Deno.exit(0)`, and when an error escaping the main
 * module is swallowed by an `unhandledrejection` listener that calls `preventDefault()` (this
 * is how the long fuzz runs once ended silently). A pending promise that nothing will ever
 * settle (a stream pipeline waiting on itself) makes the loop run empty.
 *
 * {@linkcode guardExit} runs the command and, until it settled, refuses every end with status 0:
 * an `unload` listener prints one line and sets exit code 1. An error the command throws (it
 * should never throw) is one line and exit 1 too.
 *
 * @module
 */

import { ExitCode, oneLine } from "../errors.ts";

/** What the guard prints when the process ends before the command settled. */
export const UNSETTLED_MESSAGE =
  "qubes-recover: internal error: the command stopped before it finished (a bug): " +
  "do not rely on anything it did not report as done";

/**
 * Runs `run` (which returns an exit code) so that the process cannot end with status 0 before
 * it settled. `say` prints one line to standard error. Do not await the result at the top level
 * of the main module: a never-settling top-level await keeps the process waiting while signal
 * listeners are registered, where the guard ends it with exit 1 instead.
 *
 * @example
 * ```ts ignore
 * guardExit(() => runApp(Deno.args, options), say).then((code) => Deno.exit(code));
 * ```
 */
export function guardExit(
  run: () => Promise<number>,
  say: (line: string) => void,
): Promise<number> {
  let settled = false;
  const onUnload = () => {
    if (settled || (Deno.exitCode ?? 0) !== 0) return;
    say(UNSETTLED_MESSAGE);
    Deno.exitCode = ExitCode.Internal;
  };
  globalThis.addEventListener("unload", onUnload);
  let result: Promise<number>;
  try {
    result = run();
  } catch (error) {
    result = Promise.reject(error);
  }
  return result.catch((error) => {
    const text = error instanceof Error ? error.message : String(error);
    say(`qubes-recover: internal error: ${oneLine(text.split("\n")[0] ?? "")}`);
    return ExitCode.Internal;
  }).finally(() => {
    settled = true;
  });
}
