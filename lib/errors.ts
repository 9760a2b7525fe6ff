/**
 * Errors that end a command. Each carries what happened as data: a reason code (which alone
 * decides the exit code), what could not be done, what it concerns (a file, item, chunk or
 * member) and why in words. The message is rendered from that data in one place
 * ({@linkcode renderMessage}), in one shape: what could not be done, a colon, then the reason,
 * with names quoted: `Cannot verify chunk "vm5/private.img.003": HMAC does not match`.
 *
 * Library code throws these; only the CLI (`lib/cli`, `main.ts`) turns them into an exit code
 * and a one-line message, and adds the hints that name options (`use --force`).
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

/**
 * Why a command failed, as a closed set of codes. The exit code follows from the reason alone
 * ({@linkcode exitCodeOf}); each error class accepts only the reasons of its exit code.
 */
export const REASONS = {
  /** The command line is wrong. */
  usage: ExitCode.Usage,
  /** A path named on the command line cannot be opened. */
  "cannot-open": ExitCode.Usage,
  /** Something named on the command line (a VM, a path in an image, a partition) is not there. */
  "not-found": ExitCode.Usage,
  /** The passphrase does not open the backup (or the header it protects is damaged). */
  "wrong-passphrase": ExitCode.Passphrase,
  /** Data is damaged: it cannot be decoded or fails a check not named below. */
  damaged: ExitCode.Damaged,
  /** An HMAC (chunk, header, scrypt file) does not match. */
  "hmac-mismatch": ExitCode.Damaged,
  /** Decryption ends without valid padding (`bad decrypt`). */
  "bad-padding": ExitCode.Damaged,
  /** Something is larger than its format allows. */
  "too-large": ExitCode.Damaged,
  /** A chunk or member is out of place: swapped, renamed, from another backup, outside its item. */
  "out-of-place": ExitCode.Damaged,
  /** A name or key that must be unique appears twice (a member, a directory entry, a header key). */
  duplicate: ExitCode.Damaged,
  /** A name that would be written outside the output folder (`..`, an absolute path, NUL). */
  "unsafe-name": ExitCode.Damaged,
  /** A file of a backup folder changed (grew or shrank) while it was being read. */
  changed: ExitCode.Damaged,
  /** Something that must be there is missing (a chunk, an `.hmac`, a header, a volume). */
  missing: ExitCode.Incomplete,
  /** Data ends early. */
  truncated: ExitCode.Incomplete,
  /** A format, variant, cipher, digest or compression this tool does not read. */
  unsupported: ExitCode.Unsupported,
  /** The input is not a Qubes backup at all (another file, a folder of restored files). */
  "not-a-backup": ExitCode.Unsupported,
  /** A cost (scrypt memory, work) beyond what this tool ever computes: no option raises it. */
  "too-costly": ExitCode.Unsupported,
  /** A cost (scrypt memory, work) beyond the bounds the user can raise (`--max-scrypt-memory`). */
  "beyond-limit": ExitCode.Unsupported,
  /** The output cannot be written for a reason not named below. */
  "write-failed": ExitCode.Output,
  /** The output exists (and is not to be replaced). */
  exists: ExitCode.Output,
  /** Something in the output folder is in the way and is never replaced (a link, a file for a folder). */
  "in-the-way": ExitCode.Output,
  /** The disk or quota is full. */
  "no-space": ExitCode.Output,
  /** Permission denied, or a read-only file system. */
  "no-permission": ExitCode.Output,
  /** The user interrupted the command. */
  interrupted: ExitCode.Interrupted,
} as const;

/** Why a command failed (see {@linkcode REASONS}). */
export type Reason = keyof typeof REASONS;

/** The reasons whose exit code is `code`. */
export type ReasonOf<Code extends number> = {
  [R in Reason]: (typeof REASONS)[R] extends Code ? R : never;
}[Reason];

/**
 * What an error is about: a file, a VM, an item, one of its chunks, a member of its inner tar,
 * or an entry of the outer archive.
 */
export interface Subject {
  kind: "file" | "vm" | "item" | "chunk" | "member" | "entry";
  /** The name, as the backup or the user spells it. */
  name: string;
  /**
   * The text already names it (`its first volume continues member "x"`, `read pax header "x"`):
   * it is not quoted again after the action.
   */
  inDetail?: true;
}

/**
 * What happened, as data. The message is rendered from it by {@linkcode renderMessage}:
 * `Cannot <action> "<subject>": <detail>`, or just the detail when there is no action.
 */
export interface ErrorFacts<R extends Reason = Reason> {
  reason: R;
  /** What could not be done: `verify chunk`, `read tar member`, `restore`. */
  action?: string;
  /** What it concerns; its name is quoted after the action. */
  subject?: Subject;
  /** Why, in words: `HMAC does not match`. */
  detail: string;
  /** An error of an earlier stage that this one puts into context; rendered as the detail. */
  inner?: RecoverError;
}

/**
 * The exit code of an error: from its reason, which its class constrains. Never reads the
 * message, so rewording a message cannot change an exit code.
 */
export function exitCodeOf(error: { readonly reason: Reason }): number {
  return REASONS[error.reason];
}

/** The one place messages are made: `Cannot <action> "<subject>": <detail>`, one line. */
export function renderMessage(facts: ErrorFacts): string {
  const detail = facts.inner === undefined ? facts.detail : lowerFirst(facts.inner.message);
  if (facts.action === undefined) return oneLine(detail);
  const subject = facts.subject === undefined || facts.subject.inDetail
    ? ""
    : ` "${facts.subject.name}"`;
  return oneLine(`Cannot ${facts.action}${subject}: ${detail}`);
}

/** `Cannot x` as `cannot x` inside another message; an initialism (`HMAC`, `GPT`) stays. */
function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text.slice(0, 1).toLowerCase() + text.slice(1) : text;
}

/** Options of every error class: the usual `cause`, the reason and what the error concerns. */
export interface RecoverErrorOptions<R extends Reason> extends ErrorOptions {
  /** Why (the class's general reason when not given). */
  reason?: R;
  /** What the error concerns, when the message (given as text) names it. */
  subject?: Subject;
}

/**
 * Base class of every error that a user can act on: its facts ({@linkcode ErrorFacts}), its
 * message rendered from them, and the exit code its reason maps to.
 */
export class RecoverError<R extends Reason = Reason> extends Error {
  /** Why: decides the exit code. */
  readonly reason: R;
  /** What could not be done, if the message says it. */
  readonly action: string | undefined;
  /** What the error concerns: the file, item, chunk or member. */
  readonly subject: Subject | undefined;
  /** Why, in words. */
  readonly detail: string;
  /** The error of an earlier stage this one puts into context. */
  readonly inner: RecoverError | undefined;

  /**
   * @param facts What happened; a text is a message already rendered (its detail, with no
   *   separate action), with the reason and subject given in `options`.
   * @param fallback The class's general reason.
   */
  constructor(facts: ErrorFacts<R> | string, fallback: R, options?: RecoverErrorOptions<R>) {
    const data: ErrorFacts<R> = typeof facts === "string"
      ? { reason: options?.reason ?? fallback, detail: facts, ...subjectOf(options) }
      : facts;
    super(renderMessage(data), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.reason = data.reason;
    this.action = data.action;
    this.subject = data.subject;
    this.detail = data.detail;
    this.inner = data.inner;
  }

  /** The process exit code this error maps to (from its reason; see {@linkcode exitCodeOf}). */
  get exitCode(): number {
    return exitCodeOf(this);
  }

  /** Whether the error already names `name` or something inside it (a chunk, a member). */
  concerns(name: string): boolean {
    return this.subject !== undefined && this.subject.name.startsWith(name);
  }

  /**
   * The same error (class, reason, detail) told as `Cannot <action> "<subject>": <detail>`: a
   * stage that knows the chunk or file names it in an error from a stage that did not. An error
   * that already names it is returned as it is; one that has an action of its own is put into
   * context instead ({@linkcode RecoverError.within}), so that its action is not lost.
   */
  about(action: string, subject: Subject): RecoverError {
    if (this.concerns(subject.name)) return this;
    if (this.action !== undefined) return this.within(action, subject);
    return this.#same({ reason: this.reason, action, subject, detail: this.detail });
  }

  /**
   * This error put into the context of a stage that knows more: `Cannot <action>
   * "<subject>": <this message>` (same class and reason). An error that already names the
   * subject (or something inside it) is returned as it is.
   */
  within(action: string, subject: Subject): RecoverError {
    if (this.concerns(subject.name)) return this;
    return this.#same({ reason: this.reason, action, subject, detail: this.detail, inner: this });
  }

  #same(facts: ErrorFacts<R>): RecoverError {
    const Class = this.constructor as new (
      facts: ErrorFacts<R>,
      options?: RecoverErrorOptions<R>,
    ) => RecoverError;
    return new Class(facts, { cause: this });
  }
}

function subjectOf<R extends Reason>(options?: RecoverErrorOptions<R>): { subject?: Subject } {
  return options?.subject === undefined ? {} : { subject: options.subject };
}

/** The command line is wrong: unknown option, missing argument. Exit code 2. */
export class UsageError extends RecoverError<ReasonOf<2>> {
  constructor(
    facts: ErrorFacts<ReasonOf<2>> | string,
    options?: RecoverErrorOptions<ReasonOf<2>>,
  ) {
    super(facts, "usage", options);
  }
}

/** The passphrase is wrong, or the header it protects is damaged. Exit code 3. */
export class PassphraseError extends RecoverError<ReasonOf<3>> {
  constructor(
    facts: ErrorFacts<ReasonOf<3>> | string,
    options?: RecoverErrorOptions<ReasonOf<3>>,
  ) {
    super(facts, "wrong-passphrase", options);
  }
}

/** Data fails verification or cannot be decoded: tampering or corruption. Exit code 4. */
export class DamagedError extends RecoverError<ReasonOf<4>> {
  constructor(
    facts: ErrorFacts<ReasonOf<4>> | string,
    options?: RecoverErrorOptions<ReasonOf<4>>,
  ) {
    super(facts, "damaged", options);
  }
}

/** Something the backup must hold is not there: a chunk, an `.hmac`, the rest of a file. Exit code 5. */
export class IncompleteError extends RecoverError<ReasonOf<5>> {
  constructor(
    facts: ErrorFacts<ReasonOf<5>> | string,
    options?: RecoverErrorOptions<ReasonOf<5>>,
  ) {
    super(facts, "missing", options);
  }
}

/** A format, cipher, digest or compression this tool does not read. Exit code 6. */
export class UnsupportedError extends RecoverError<ReasonOf<6>> {
  constructor(
    facts: ErrorFacts<ReasonOf<6>> | string,
    options?: RecoverErrorOptions<ReasonOf<6>>,
  ) {
    super(facts, "unsupported", options);
  }
}

/** Restored data cannot be written: the target exists, disk full, permission denied. Exit code 7. */
export class OutputError extends RecoverError<ReasonOf<7>> {
  constructor(
    facts: ErrorFacts<ReasonOf<7>> | string,
    options?: RecoverErrorOptions<ReasonOf<7>>,
  ) {
    super(facts, "write-failed", options);
  }
}

/** The user pressed Ctrl-C; partial output has been removed. Exit code 130. */
export class InterruptedError extends RecoverError<ReasonOf<130>> {
  constructor(
    facts: ErrorFacts<ReasonOf<130>> | string = "Interrupted",
    options?: RecoverErrorOptions<ReasonOf<130>>,
  ) {
    super(facts, "interrupted", options);
  }
}
