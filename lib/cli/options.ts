/**
 * The command line's options, as a table: each option's names, value, and help line. The
 * parser reads `argv` against this table; which options a command accepts is listed with the
 * command (lib/cli/commands.ts). Adding an option is one entry here and its name there.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/** One option of the command line. */
export interface OptionSpec {
  /** Long name without dashes: `output`. */
  readonly name: string;
  /** One-letter name without the dash: `o`. */
  readonly short?: string;
  /** Placeholder of the value (`DIR`); absent for a flag. */
  readonly value?: string;
  /** May be given more than once; values are collected in order. */
  readonly multiple?: boolean;
  /** `--no-NAME` turns the flag off (`--progress` / `--no-progress`). */
  readonly negatable?: boolean;
  /** One line for `--help`. */
  readonly help: string;
}

/** Every option, by long name. */
export const OPTIONS: Readonly<Record<string, OptionSpec>> = Object.fromEntries(
  ([
    {
      name: "output",
      short: "o",
      value: "DIR",
      help: "where to write: a folder (restore, files get) or the new file (convert)",
    },
    {
      name: "vm",
      value: "NAME",
      multiple: true,
      help: 'only this VM (repeatable); "dom0" is the dom0 home',
    },
    {
      name: "exclude",
      short: "x",
      value: "NAME",
      multiple: true,
      help: "leave out this VM (repeatable)",
    },
    { name: "no-dom0-home", help: "leave out the dom0 home" },
    {
      name: "new-passphrase-file",
      value: "FILE",
      help: "convert: passphrase of the new backup (default: the same)",
    },
    { name: "compress", help: "convert: gzip the new backup (default: as the old one was)" },
    { name: "no-compress", help: "convert: do not compress the new backup" },
    { name: "no-encrypt", help: "convert: leave the new backup unencrypted (HMACs still written)" },
    {
      name: "files",
      value: "PATH",
      multiple: true,
      help: "restore: only PATH from inside the VM's private.img (one --vm; repeatable)",
    },
    { name: "partition", value: "N", help: "files: the partition of a disk image to read" },
    { name: "long", short: "l", help: "files ls: a long listing, like ls -l" },
    {
      name: "max-scrypt-memory",
      value: "SIZE",
      help: "format 4: allow scrypt SIZE (e.g. 4G) per key (docs/security.md)",
    },
    { name: "force", help: "replace what already exists (files in DIR; convert: NEW_BACKUP)" },
    {
      name: "skip-existing",
      help: "keep files that exist in DIR, write the rest (resume)",
    },
    {
      name: "salvage",
      help: "also write what verifies of damaged files as NAME.salvaged (+ .json)",
    },
    {
      name: "dry-run",
      short: "n",
      help: "verify all, write nothing; list files and space needed",
    },
    {
      name: "passphrase-file",
      value: "FILE",
      help: "read the passphrase from FILE (- for standard input)",
    },
    {
      name: "json",
      help: "JSON Lines on standard output (docs/json.md)",
    },
    {
      name: "verbose",
      short: "v",
      help: "list each item verified, each file, link, folder restored",
    },
    { name: "quiet", short: "q", help: "print only warnings and errors" },
    {
      name: "progress",
      negatable: true,
      help: "progress (default: when standard error is a terminal)",
    },
    { name: "help", short: "h", help: "show help (qubes-recover COMMAND --help for one command)" },
    { name: "version", short: "V", help: "print the program version" },
  ] satisfies OptionSpec[]).map((spec) => [spec.name, spec]),
);

/** Option values by long name: a string, a list of strings, or a flag's true/false. */
export type OptionValues = Record<string, string | string[] | boolean>;

/** A command line taken apart. */
export interface ParsedLine {
  /** Arguments that are not options, in order (the command word first). */
  positionals: string[];
  /** Values of the options given. */
  values: OptionValues;
  /** The options given, as typed (`-o`, `--force`), in order, for messages. */
  given: Array<{ name: string; typed: string }>;
}

/**
 * A mistake on the command line; `command` is the command it was meant for, if known. Its
 * reason is always `usage`, given here once rather than at every place that throws it.
 */
export class CommandLineError extends UsageError {
  /** The command the line was for, when it was recognised. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super({ reason: "usage", detail: message });
    this.command = command;
  }
}

const byShort = new Map(
  Object.values(OPTIONS).filter((spec) => spec.short).map((spec) => [spec.short!, spec]),
);

/** Quotes a word from the command line for a message, escaping what would break the line. */
export function quote(word: string): string {
  return JSON.stringify(word);
}

/**
 * Parses `args` against {@link OPTIONS}. `--` ends the options; `-` alone is an argument.
 * Long options take their value as `--output DIR` or `--output=DIR`, short ones as `-o DIR`
 * or `-oDIR`; flags may be grouped (`-qn`).
 *
 * @throws {CommandLineError} For an unknown option, a missing value, a value given to a flag.
 */
export function parseLine(args: readonly string[]): ParsedLine {
  const positionals: string[] = [];
  const values: OptionValues = {};
  const given: ParsedLine["given"] = [];
  const set = (spec: OptionSpec, typed: string, value: string | boolean) => {
    given.push({ name: spec.name, typed });
    if (spec.multiple) {
      const list = (values[spec.name] as string[] | undefined) ?? [];
      list.push(value as string);
      values[spec.name] = list;
    } else {
      values[spec.name] = value;
    }
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const typed = `--${name}`;
      let spec = OPTIONS[name];
      let negated = false;
      if (spec === undefined && name.startsWith("no-") && OPTIONS[name.slice(3)]?.negatable) {
        spec = OPTIONS[name.slice(3)]!;
        negated = true;
      }
      if (spec === undefined) throw new CommandLineError(`Unknown option ${quote(typed)}`);
      if (spec.value === undefined) {
        if (eq !== -1) throw new CommandLineError(`Option ${quote(typed)} takes no value`);
        set(spec, typed, !negated);
      } else if (eq !== -1) {
        set(spec, typed, arg.slice(eq + 1));
      } else {
        if (i + 1 >= args.length) {
          throw new CommandLineError(`Option ${quote(typed)} needs a value (${spec.value})`);
        }
        set(spec, typed, args[++i]!);
      }
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const spec = byShort.get(letter);
        const typed = `-${letter}`;
        if (spec === undefined) throw new CommandLineError(`Unknown option ${quote(typed)}`);
        if (spec.value === undefined) {
          set(spec, typed, true);
          continue;
        }
        const rest = arg.slice(j + 1);
        if (rest !== "") set(spec, typed, rest);
        else if (i + 1 < args.length) set(spec, typed, args[++i]!);
        else throw new CommandLineError(`Option ${quote(typed)} needs a value (${spec.value})`);
        break;
      }
      continue;
    }
    positionals.push(arg);
  }
  return { positionals, values, given };
}

/** The `--help` lines of the given options, aligned. */
export function optionHelp(names: readonly string[]): string[] {
  const rows = names.map((name) => {
    const spec = OPTIONS[name]!;
    const long = spec.negatable ? `--[no-]${spec.name}` : `--${spec.name}`;
    const left = `${spec.short ? `-${spec.short}, ` : "    "}${long}${
      spec.value ? ` ${spec.value}` : ""
    }`;
    return [left, spec.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`);
}
