/**
 * The command line from arguments to exit code: the command word first, then its options
 * checked against the command's list, help and version, the command run, a closing summary,
 * and every error turned into one line and its exit code.
 *
 * @module
 */

import { problemLine, problemsOf } from "../commands/mod.ts";
import { ExitCode, RecoverError } from "../errors.ts";
import type { Reporter } from "../reporter.ts";
import { versionLines } from "../version.ts";
import {
  commandHelp,
  COMMANDS,
  type CommandSpec,
  findCommand,
  mainHelp,
  usageLines,
} from "./commands.ts";
import { Console, type Sink } from "./console.ts";
import { messageWithHint } from "./hints.ts";
import type { CommandContext } from "./context.ts";
import { CommandLineError, type ParsedLine, parseLine, quote } from "./options.ts";
import { passphraseGetter } from "./passphrase.ts";
import { ProgressLine, type ProgressMode, type ProgressTerminal } from "./progress.ts";

/** What the command line runs with. */
export interface AppOptions {
  /** Aborted on Ctrl-C, SIGTERM, SIGHUP. */
  signal: AbortSignal;
  /** After the signal: the exit code and the word for it ("Interrupted"). */
  interruption?: () => { code: number; word: string } | undefined;
  /** Where progress draws (standard error by default). */
  terminal?: ProgressTerminal;
  stdout?: Sink;
  stderr?: Sink;
  /** Told the progress line, so a signal handler can clear it. */
  onProgress?: (progress: ProgressLine) => void;
}

/** Options every command accepts besides its own. */
const GLOBAL_OPTIONS = new Set(["version"]);

/**
 * Runs the command line `args` and returns the exit code. Never throws.
 */
export async function runApp(args: readonly string[], options: AppOptions): Promise<number> {
  const plain = new Console({
    json: false,
    quiet: false,
    progress: new ProgressLine(options.terminal ?? Deno.stderr, "off"),
    ...(options.stdout ? { stdout: options.stdout } : {}),
    ...(options.stderr ? { stderr: options.stderr } : {}),
  });
  const raw = findCommand(args[0] ?? "");
  if (raw?.runRaw !== undefined && !args.includes("--version") && !args.includes("-V")) {
    return await runRawCommand(raw, args.slice(1), options, plain);
  }
  let line: ParsedLine;
  let command: CommandSpec | undefined;
  try {
    line = parseLine(args);
    command = checkLine(line);
  } catch (error) {
    return usageFailure(plain, error, args);
  }
  if (line.values.version === true || command?.name === "version") {
    plain.print(versionLines().join("\n"));
    return ExitCode.Ok;
  }
  if (command === undefined) {
    plain.print(mainHelp());
    return ExitCode.Ok;
  }
  if (line.values.help === true) {
    plain.print(commandHelp(command));
    return ExitCode.Ok;
  }
  if (command.name === "help") {
    const topic = line.positionals[1];
    plain.print(topic === undefined ? mainHelp() : commandHelp(findCommand(topic)!));
    return ExitCode.Ok;
  }
  return await runCommand(command, line, options);
}

/**
 * Checks the command word, the arguments and which options apply; returns the command, or
 * `undefined` for a bare `--help`.
 *
 * @throws {CommandLineError} When the line is wrong.
 */
function checkLine(line: ParsedLine): CommandSpec | undefined {
  const [word, ...rest] = line.positionals;
  if (word === undefined) {
    if (line.values.help === true || line.values.version === true) return undefined;
    throw new CommandLineError("No command given");
  }
  const command = findCommand(word);
  if (command === undefined) {
    throw new CommandLineError(
      `Unknown command ${quote(word)} (commands: ${COMMANDS.map((c) => c.name).join(", ")})`,
    );
  }
  for (const { name, typed } of line.given) {
    if (!command.options.includes(name) && !GLOBAL_OPTIONS.has(name)) {
      throw new CommandLineError(
        `Option ${quote(typed)} does not apply to "${command.name}"`,
        command.name,
      );
    }
  }
  if (line.values.help === true || line.values.version === true) return command;
  if (command.name === "help") {
    if (rest.length > 1) {
      throw new CommandLineError(`Unexpected argument ${quote(rest[1]!)}`, "help");
    }
    if (rest[0] !== undefined && findCommand(rest[0]) === undefined) {
      throw new CommandLineError(
        `Unknown command ${quote(rest[0])} (commands: ${COMMANDS.map((c) => c.name).join(", ")})`,
        "help",
      );
    }
    return command;
  }
  const allowed = command.takesBackup ? 1 : 0;
  if (command.takesBackup && rest.length === 0) {
    throw new CommandLineError(`"${command.name}" needs a BACKUP argument`, command.name);
  }
  if (rest.length > allowed) {
    throw new CommandLineError(`Unexpected argument ${quote(rest[allowed]!)}`, command.name);
  }
  return command;
}

function usageFailure(console: Console, error: unknown, args: readonly string[]): number {
  const message = error instanceof Error ? error.message : String(error);
  const command = error instanceof CommandLineError && error.command !== undefined
    ? findCommand(error.command)
    : args.map(findCommand).find((c) => c !== undefined);
  console.error(`qubes-recover: ${oneLine(message)}`);
  for (const usage of usageLines(command)) console.error(usage);
  return ExitCode.Usage;
}

/** One line: whatever came from outside cannot break it. */
function oneLine(message: string): string {
  return message.replace(/[\r\n]+/g, " ");
}

async function runCommand(
  command: CommandSpec,
  line: ParsedLine,
  options: AppOptions,
): Promise<number> {
  const values = line.values;
  const json = values.json === true;
  const quiet = values.quiet === true;
  const mode: ProgressMode = values.progress === true
    ? "on"
    : values.progress === false || quiet
    ? "off"
    : "auto";
  const progress = new ProgressLine(options.terminal ?? Deno.stderr, mode);
  options.onProgress?.(progress);
  const console = new Console({
    json,
    quiet,
    progress,
    ...(options.stdout ? { stdout: options.stdout } : {}),
    ...(options.stderr ? { stderr: options.stderr } : {}),
  });
  const backup = line.positionals[1]!;
  const getter = passphraseGetter({
    file: typeof values["passphrase-file"] === "string" ? values["passphrase-file"] : undefined,
    stdinIsBackup: backup === "-",
  });
  const passphrase = async () => {
    progress.pause();
    try {
      return await getter();
    } finally {
      progress.resume();
    }
  };
  const retryPassphrase = () => {
    if (!getter.retry()) return false;
    console.error(
      `Wrong passphrase, try again (${getter.triesLeft} ${
        getter.triesLeft === 1 ? "try" : "tries"
      } left)`,
    );
    return true;
  };
  const reporter: Reporter = {
    info: (message) => console.info(message),
    warn: (message) => console.warn(message),
    progress: (read, total) => progress.update(read, total),
  };
  const summary: Record<string, unknown> = {};
  const context: CommandContext = {
    backup,
    values,
    console,
    signal: options.signal,
    passphrase,
    retryPassphrase,
    reporter,
    summary,
    started: Date.now(),
  };
  let code: number = ExitCode.Ok;
  try {
    await command.run!(context);
  } catch (error) {
    progress.clear();
    const failure = failureOf(error, options);
    code = failure.code;
    const message = failure.message;
    const problems = problemsOf(error);
    if (problems !== undefined) {
      // Every item was tried: the summary lists each problem met, one line each.
      summary.problems = problems.length;
      console.error(`${problems.length === 1 ? "1 problem" : `${problems.length} problems`}:`);
      for (const problem of problems) console.error(`  ${problemLine(problem)}`);
    }
    console.error(`qubes-recover: ${message}`);
    if (error instanceof CommandLineError) {
      for (const usage of usageLines(command)) console.error(usage);
    }
    console.event({ type: "error", message, exitCode: code });
  } finally {
    progress.clear();
  }
  console.event({
    type: "summary",
    command: command.name,
    ok: code === ExitCode.Ok,
    exitCode: code,
    seconds: Math.round((Date.now() - context.started) / 100) / 10,
    ...summary,
  });
  return code;
}

/** A command with its own parser (`files`): its errors end in one line and an exit code. */
async function runRawCommand(
  command: CommandSpec,
  args: string[],
  options: AppOptions,
  console: Console,
): Promise<number> {
  const stdout = options.stdout ?? Deno.stdout;
  const verbose = args.includes("-v") || args.includes("--verbose");
  try {
    await command.runRaw!(args, {
      signal: options.signal,
      print: (text) => console.print(text),
      writeStdout: (bytes) => {
        for (let done = 0; done < bytes.length;) done += stdout.writeSync(bytes.subarray(done));
        return Promise.resolve();
      },
      reporter: {
        info: (message) => console.say(message),
        warn: (message) => console.warn(message),
        ...(verbose ? { fileDone: (path: string) => console.say(`copied ${path}`) } : {}),
      },
    });
    return ExitCode.Ok;
  } catch (error) {
    const { code, message } = failureOf(error, options);
    console.error(`qubes-recover: ${message}`);
    return code;
  }
}

/** The exit code and the one-line message for what ended a command. */
function failureOf(error: unknown, options: AppOptions): { code: number; message: string } {
  const interruption = options.signal.aborted ? options.interruption?.() : undefined;
  if (interruption !== undefined) {
    return {
      code: interruption.code,
      message: `${interruption.word}: unfinished files were removed`,
    };
  }
  if (error instanceof RecoverError) {
    return { code: error.exitCode, message: oneLine(messageWithHint(error)) };
  }
  const text = error instanceof Error ? error.message : String(error);
  const line = oneLine(text.split("\n")[0] ?? "");
  if (error instanceof Deno.errors.NotCapable) {
    // Run by hand with narrower permissions than the release's (docs/security.md).
    return {
      code: ExitCode.Usage,
      message: `Deno's permissions: ${line}${
        line.includes("--allow-all") ? "" : " (run with --allow-all, as the release does)"
      }`,
    };
  }
  return { code: ExitCode.Internal, message: `internal error: ${line}` };
}
