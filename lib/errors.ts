/**
 * Errors that end a command, each carrying the process exit code it maps to.
 *
 * Library code throws these; only `main.ts` turns them into an exit code and a one-line message.
 * Messages follow one shape: what could not be done, a colon, then the reason, with file names
 * quoted: `Cannot verify chunk "vm5/private.img.003": HMAC does not match`.
 *
 * @module
 */

/** Exit codes of the command-line tool, one per kind of failure a user acts on differently. */
export const ExitCode = {
  /** Everything asked for was done. */
  Ok: 0,
  /** An unexpected internal error (a bug): the message is still one line. */
  Internal: 1,
  /** The command line was wrong. */
  Usage: 2,
  /** The passphrase does not open the backup (or the header itself is damaged). */
  Passphrase: 3,
  /** The backup is damaged or was tampered with: an HMAC mismatch, undecodable data. */
  Damaged: 4,
  /** The backup is incomplete: a missing chunk, volume or `.hmac`, a truncated archive. */
  Incomplete: 5,
  /** The backup uses a format or variant this tool does not read. */
  Unsupported: 6,
  /** The output could not be written: it exists, the disk is full, no permission. */
  Output: 7,
  /** The terminal went away (SIGHUP); partial output has been removed. */
  Hangup: 129,
  /** The user interrupted the command (Ctrl-C). */
  Interrupted: 130,
  /** The command was told to stop (SIGTERM); partial output has been removed. */
  Terminated: 143,
} as const;

/**
 * Text made safe for one line of a terminal: control characters (a newline from a `.hmac`
 * file, an escape sequence in a member name), line and paragraph separators and bidirectional
 * overrides are written as escapes (`\n`, `\x1b`, `\u202e`). Every error message passes
 * through it, so whatever a backup puts into a name cannot break the one-line form.
 *
 * @example
 * ```ts
 * oneLine('bad "a\nb"'); // 'bad "a\\nb"'
 * ```
 */
export function oneLine(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      const code = c.charCodeAt(0);
      if (c === "\n") return "\\n";
      if (c === "\r") return "\\r";
      if (c === "\t") return "\\t";
      return code < 0x100
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : `\\u${code.toString(16).padStart(4, "0")}`;
    },
  );
}

/** Base class of every error that a user can act on; carries its exit code. */
export class RecoverError extends Error {
  /** The process exit code this error maps to. */
  readonly exitCode: number;
  /** The message is made one line with {@link oneLine}. */
  constructor(message: string, exitCode: number, options?: ErrorOptions) {
    super(oneLine(message), options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** The command line is wrong: unknown option, missing argument. Exit code 2. */
export class UsageError extends RecoverError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Usage, options);
  }
}

/** The passphrase is wrong, or the header it protects is damaged. Exit code 3. */
export class PassphraseError extends RecoverError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Passphrase, options);
  }
}

/** Data fails verification or cannot be decoded: tampering or corruption. Exit code 4. */
export class DamagedError extends RecoverError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Damaged, options);
  }
}

/** Something the backup must hold is not there: a chunk, an `.hmac`, the rest of a file. Exit code 5. */
export class IncompleteError extends RecoverError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Incomplete, options);
  }
}

/** A format, cipher, digest or compression this tool does not read. Exit code 6. */
export class UnsupportedError extends RecoverError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Unsupported, options);
  }
}

/** Restored data cannot be written: the target exists, disk full, permission denied. Exit code 7. */
export class OutputError extends RecoverError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Output, options);
  }
}

/** The user pressed Ctrl-C; partial output has been removed. Exit code 130. */
export class InterruptedError extends RecoverError {
  constructor(message = "Interrupted", options?: ErrorOptions) {
    super(message, ExitCode.Interrupted, options);
  }
}
