/**
 * The command line: {@link runApp} parses the arguments, runs a command and maps what ended
 * it to an exit code and a one-line message; {@link guardExit} keeps a process from ending
 * silently with work unsettled.
 *
 * @module
 */

export { type AppOptions, runApp } from "./app.ts";
export { guardExit } from "./exit_guard.ts";
export type { ProgressLine } from "./progress.ts";
