/**
 * qubes-recover: get data back out of Qubes OS backups (formats 1-4) on any Linux machine.
 *
 * This file only sets up signals and runs the command line (lib/cli/app.ts), which parses the
 * arguments, calls the library and maps its typed errors to exit codes, under a guard that
 * never lets the process end with status 0 before the command finished (lib/cli/exit_guard.ts).
 *
 * @module
 */

import { guardExit, type ProgressLine, runApp } from "./lib/cli/mod.ts";
import { ExitCode } from "./lib/errors.ts";

/** How long cleanup after a signal may take before the process ends anyway. */
const INTERRUPT_GRACE_MS = 3000;

/** The signals that stop a command like Ctrl-C does: exit code and the word for it. */
const SIGNALS = [
  ["SIGINT", ExitCode.Interrupted, "Interrupted"],
  ["SIGTERM", ExitCode.Terminated, "Terminated"],
  ["SIGHUP", ExitCode.Hangup, "Hangup"],
] as const;

if (import.meta.main) {
  const controller = new AbortController();
  let progress: ProgressLine | undefined;
  let interruption: { code: number; word: string } | undefined;
  const encoder = new TextEncoder();
  const say = (text: string) => {
    try {
      Deno.stderr.writeSync(encoder.encode(`${text}\n`));
    } catch {
      // The terminal is gone (SIGHUP): cleaning up matters more than telling.
    }
  };
  const listeners = SIGNALS.map(([signal, code, word]) => {
    const listener = () => {
      progress?.clear();
      if (controller.signal.aborted) Deno.exit(interruption?.code ?? code);
      interruption = { code, word };
      say(`qubes-recover: ${word}: removing unfinished files (Ctrl-C again to quit now)`);
      controller.abort();
      // A read blocked on a pipe does not see the abort; unfinished files are removed by then.
      Deno.unrefTimer(setTimeout(() => Deno.exit(code), INTERRUPT_GRACE_MS));
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  // Not awaited at the top level: if the command never settles, the guard ends the process
  // with exit 1 and one line (a pending top-level await would wait forever here).
  guardExit(() =>
    runApp(Deno.args, {
      signal: controller.signal,
      interruption: () => interruption,
      onProgress: (line) => progress = line,
    }), say).then((code) => {
      for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
      Deno.exit(code);
    });
}
