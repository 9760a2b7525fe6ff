/**
 * Where the passphrase comes from: `--passphrase-file FILE` (`-` for standard input), the
 * environment variable `QUBES_BACKUP_PASSPHRASE`, or a prompt on the terminal without echo.
 * Never from a command-line value. When standard input carries the backup, the prompt reads
 * the terminal device instead, as git does (Deno opens `/dev/tty` only with `--allow-all`, which
 * the release has); without a terminal, that case asks for the file or the variable instead.
 *
 * @module
 */

import { InterruptedError, UsageError } from "../errors.ts";
import { concat } from "../streams/mod.ts";
import { describeFsError } from "../fs_errors.ts";

/** The environment variable read for the passphrase. */
export const PASSPHRASE_ENV = "QUBES_BACKUP_PASSPHRASE";

/** Where to look for the passphrase. */
export interface PassphraseSources {
  /** `--passphrase-file` value; `-` is standard input. */
  file?: string | undefined;
  /** Whether standard input carries the backup (then it cannot carry the passphrase). */
  stdinIsBackup: boolean;
}

/** Strips one trailing newline (`\n` or `\r\n`), as a passphrase file written by `echo` has. */
export function stripOneNewline(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) {
    end--;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
  }
  return bytes.subarray(0, end);
}

async function readAll(
  reader: { read(p: Uint8Array): Promise<number | null> },
): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buffer = new Uint8Array(4096);
    const n = await reader.read(buffer);
    if (n === null) break;
    pieces.push(buffer.subarray(0, n));
    total += n;
    if (total > 1024 * 1024) {
      throw new UsageError({
        reason: "usage",
        action: "read the passphrase",
        detail: "input is over 1 MiB",
      });
    }
  }
  return concat(pieces, total);
}

function envPassphrase(): string | undefined {
  try {
    return Deno.env.get(PASSPHRASE_ENV);
  } catch {
    // Without --allow-env the variable is simply not consulted.
    return undefined;
  }
}

/** How many times a passphrase is asked at the prompt before a wrong one ends the command. */
export const PROMPT_TRIES = 3;

/** Obtains the passphrase once, when first needed; may ask again after a wrong one. */
export interface PassphraseGetter {
  /**
   * The passphrase.
   *
   * @throws {UsageError} When no source is usable (no file, no variable, no terminal).
   */
  (): Promise<Uint8Array>;
  /**
   * After a wrong passphrase: whether to ask again. True only when it was typed at the prompt
   * and fewer than {@link PROMPT_TRIES} tries were made; the next call then asks again. A
   * passphrase from a file or the environment is never retried.
   */
  retry(): boolean;
  /** Tries left at the prompt. */
  readonly triesLeft: number;
}

/** Returns a function that obtains the passphrase once, when first needed. */
export function passphraseGetter(
  sources: PassphraseSources,
  prompt: (stdinIsBackup: boolean) => Promise<Uint8Array> = promptOnTerminal,
): PassphraseGetter {
  let cached: Promise<Uint8Array> | undefined;
  let prompted = false;
  let tries = 0;
  const get = () =>
    cached ??= obtain(sources, (stdinIsBackup) => {
      prompted = true;
      tries++;
      return prompt(stdinIsBackup);
    });
  const getter = Object.assign(get, {
    retry() {
      if (!prompted || tries >= PROMPT_TRIES) return false;
      cached = undefined;
      return true;
    },
  });
  // A getter: Object.assign would copy its value once.
  Object.defineProperty(getter, "triesLeft", {
    get: () => prompted ? PROMPT_TRIES - tries : 0,
  });
  return getter as PassphraseGetter;
}

async function obtain(
  sources: PassphraseSources,
  prompt: (stdinIsBackup: boolean) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  if (sources.file !== undefined) {
    if (sources.file === "-") {
      if (sources.stdinIsBackup) {
        throw new UsageError({
          reason: "usage",
          detail: "Cannot read both the backup and the passphrase from standard input",
        });
      }
      return stripOneNewline(await readAll(Deno.stdin));
    }
    try {
      return stripOneNewline(await Deno.readFile(sources.file));
    } catch (error) {
      throw new UsageError({
        reason: "cannot-open",
        action: "read passphrase file",
        subject: { kind: "file", name: sources.file },
        detail: describeFsError(error),
      }, { cause: error });
    }
  }
  const fromEnv = envPassphrase();
  if (fromEnv !== undefined) return new TextEncoder().encode(fromEnv);
  return await prompt(sources.stdinIsBackup);
}

async function promptOnTerminal(stdinIsBackup: boolean): Promise<Uint8Array> {
  if (!stdinIsBackup && Deno.stdin.isTerminal()) {
    return await readHidden(Deno.stdin, Deno.stderr, "Backup passphrase: ");
  }
  let tty: Deno.FsFile;
  try {
    tty = await Deno.open("/dev/tty", { read: true, write: true });
  } catch {
    throw new UsageError({
      reason: "usage",
      action: "ask for the passphrase",
      detail: `${
        stdinIsBackup
          ? "standard input carries the backup and /dev/tty cannot be opened"
          : "no terminal"
      } (use --passphrase-file FILE or ${PASSPHRASE_ENV})`,
    });
  }
  try {
    return await readHidden(tty, tty, "Backup passphrase: ");
  } finally {
    tty.close();
  }
}

/** A terminal: readable, writable, switchable to raw mode. */
export interface Terminal {
  read(p: Uint8Array): Promise<number | null>;
  setRaw(mode: boolean): void;
}

/**
 * Prompts and reads one line with echo off. Backspace deletes a character, Ctrl-U the line,
 * Ctrl-C or Ctrl-D on an empty line interrupts.
 *
 * @throws {InterruptedError} On Ctrl-C or end of input before Enter.
 */
export async function readHidden(
  input: Terminal,
  output: { writeSync(p: Uint8Array): number },
  prompt: string,
): Promise<Uint8Array> {
  const encoder = new TextEncoder();
  // Echo off before the prompt shows: keys typed as soon as it shows (a quick typist, a
  // password manager, tmux in the tests) are then never echoed.
  input.setRaw(true);
  const bytes: number[] = [];
  try {
    output.writeSync(encoder.encode(prompt));
    const buffer = new Uint8Array(64);
    for (;;) {
      const n = await input.read(buffer);
      if (n === null) {
        throw new InterruptedError({
          reason: "interrupted",
          detail: "Interrupted while reading the passphrase",
        });
      }
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 0x0d || byte === 0x0a) return new Uint8Array(bytes);
        if (byte === 0x03 || (byte === 0x04 && bytes.length === 0)) {
          throw new InterruptedError({
            reason: "interrupted",
            detail: "Interrupted while reading the passphrase",
          });
        }
        if (byte === 0x7f || byte === 0x08) {
          // Remove one whole UTF-8 character.
          while (bytes.length > 0 && ((bytes.pop()! & 0xc0) === 0x80));
        } else if (byte === 0x15) {
          bytes.length = 0;
        } else {
          bytes.push(byte);
        }
      }
    }
  } finally {
    input.setRaw(false);
    output.writeSync(encoder.encode("\n"));
  }
}
