/**
 * Where the command line's words go: human text on standard error (none with `--quiet` but
 * warnings and errors), the `info` listing on standard output, and with `--json` one JSON
 * object per line on standard output (schema: docs/json.md). The progress line is cleared
 * before anything else is written.
 *
 * @module
 */

import type { ProgressLine } from "./progress.ts";

/** A writable like `Deno.stdout`. */
export interface Sink {
  writeSync(p: Uint8Array): number;
}

/** One JSON Lines record; `type` says which. */
export type JsonEvent = { type: string } & Record<string, unknown>;

/** Options of {@link Console}. */
export interface ConsoleOptions {
  json: boolean;
  quiet: boolean;
  progress: ProgressLine;
  stdout?: Sink;
  stderr?: Sink;
}

/** The command line's output channels. */
export class Console {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly progress: ProgressLine;
  readonly #stdout: Sink;
  readonly #stderr: Sink;
  readonly #encoder = new TextEncoder();

  constructor(options: ConsoleOptions) {
    this.json = options.json;
    this.quiet = options.quiet;
    this.progress = options.progress;
    this.#stdout = options.stdout ?? Deno.stdout;
    this.#stderr = options.stderr ?? Deno.stderr;
  }

  /** A line of human text on standard error, unless `--quiet`. */
  say(line: string): void {
    if (!this.quiet) this.#err(line);
  }

  /** A warning on standard error (also with `--quiet`), and a `notice` event. */
  warn(message: string): void {
    this.#err(`warning: ${message}`);
    this.event({ type: "notice", level: "warning", message });
  }

  /** A fact on standard error unless `--quiet`, and a `notice` event. */
  info(message: string): void {
    this.say(message);
    this.event({ type: "notice", level: "info", message });
  }

  /** The error that ends the command: always on standard error. */
  error(line: string): void {
    this.#err(line);
  }

  /** Text for standard output (the `info` listing, help, version). */
  print(text: string): void {
    this.progress.clear();
    write(this.#stdout, this.#encoder.encode(text.endsWith("\n") ? text : `${text}\n`));
  }

  /** One JSON Lines record on standard output, only with `--json`. */
  event(event: JsonEvent): void {
    if (!this.json) return;
    this.progress.clear();
    write(this.#stdout, this.#encoder.encode(`${JSON.stringify(event)}\n`));
  }

  #err(line: string): void {
    this.progress.clear();
    write(this.#stderr, this.#encoder.encode(`${line}\n`));
  }
}

function write(sink: Sink, bytes: Uint8Array): void {
  try {
    let done = 0;
    while (done < bytes.length) done += sink.writeSync(bytes.subarray(done));
  } catch {
    // A closed pipe or a terminal that is gone (SIGHUP): nothing more can be said.
  }
}
