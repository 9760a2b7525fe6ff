/**
 * What a command gets to run: its BACKUP argument, the option values, the output channels,
 * the passphrase, and a place for the numbers of the closing summary.
 *
 * @module
 */

import type { Reporter } from "../reporter.ts";
import type { Console } from "./console.ts";
import type { OptionValues } from "./options.ts";
import type { PassphraseGetter } from "./passphrase.ts";

/** Everything a command's run function needs. */
export interface CommandContext {
  /** The BACKUP argument. */
  readonly backup: string;
  /** Option values by long name. */
  readonly values: OptionValues;
  /** Output channels (human text, JSON Lines, progress). */
  readonly console: Console;
  /** Aborted on Ctrl-C, SIGTERM, SIGHUP. */
  readonly signal: AbortSignal;
  /** The passphrase; may ask again after a wrong one typed at the prompt. */
  readonly passphrase: () => Promise<Uint8Array>;
  /** Decides whether a wrong passphrase is asked again (and says so). */
  readonly retryPassphrase: () => boolean;
  /** Notices from the library, printed or turned into JSON events. */
  readonly reporter: Reporter;
  /** Numbers for the closing summary (and the JSON `summary` record), filled as it runs. */
  readonly summary: Record<string, unknown>;
  /** When the command started (`Date.now()`). */
  readonly started: number;
}

/** A string option's value. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

/** A repeatable option's values. */
export function listOption(values: OptionValues, name: string): string[] {
  const value = values[name];
  return Array.isArray(value) ? value : [];
}

/** A flag's value. */
export function flagOption(values: OptionValues, name: string): boolean {
  return values[name] === true;
}

/** A passphrase getter wrapped so the progress line is hidden while the prompt shows. */
export type { PassphraseGetter };
