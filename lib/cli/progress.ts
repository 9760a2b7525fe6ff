/**
 * Progress on standard error. On a terminal: one line redrawn in place at most ten times a
 * second, the cursor hidden while it shows and always restored by `clear()`. Elsewhere (a log
 * file, a pipe) nothing is animated: by default nothing is shown at all, and with `--progress`
 * a plain line is printed every few seconds.
 *
 * @module
 */

import { formatSize } from "./render.ts";

/** The terminal a progress line draws on. */
export interface ProgressTerminal {
  isTerminal(): boolean;
  writeSync(p: Uint8Array): number;
}

/** `auto`: only on a terminal; `on`: also as plain lines elsewhere; `off`: never. */
export type ProgressMode = "auto" | "on" | "off";

/** How often a plain progress line is printed when standard error is not a terminal. */
const PLAIN_INTERVAL_MS = 10_000;
/** The rate is measured over this much recent time. */
const RATE_WINDOW_MS = 5_000;

/** `95` -> `"1:35"`, `3725` -> `"1:02:05"`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/**
 * One self-redrawing line:
 * `Reading backup: 42% (1.1 GiB of 2.6 GiB), 85.3 MiB/s, 0:19 left, work/private.img`.
 */
export class ProgressLine {
  #out: ProgressTerminal;
  #style: "redraw" | "plain" | "off";
  #drawn = false;
  #last: number | undefined;
  #encoder = new TextEncoder();
  #paused = false;
  #now: () => number;
  #samples: Array<[number, number]> = [];
  #item: string | undefined;
  #read = 0;
  #total: number | undefined;

  constructor(
    out: ProgressTerminal = Deno.stderr,
    mode: ProgressMode = "auto",
    now: () => number = Date.now,
  ) {
    this.#out = out;
    this.#now = now;
    const terminal = mode !== "off" && out.isTerminal();
    this.#style = terminal ? "redraw" : mode === "on" ? "plain" : "off";
  }

  /** The item being read now (`work/private.img`), shown at the end of the line. */
  setItem(name: string | undefined): void {
    this.#item = name;
  }

  /** Redraws the line for `read` of `total` bytes (throttled). */
  update(read: number, total: number | undefined): void {
    if (this.#style === "off" || this.#paused) return;
    const now = this.#now();
    this.#read = read;
    this.#total = total;
    this.#samples.push([now, read]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > RATE_WINDOW_MS) {
      this.#samples.shift();
    }
    if (this.#style === "plain") {
      this.#last ??= now;
      if (now - this.#last < PLAIN_INTERVAL_MS) return;
      this.#last = now;
      this.#write(`${this.text()}\n`);
      return;
    }
    if (this.#last !== undefined && now - this.#last < 100) return;
    this.#last = now;
    this.#write(`${this.#drawn ? "" : "\x1b[?25l"}\r\x1b[K${this.#fit(this.text())}`);
    this.#drawn = true;
  }

  /** The progress text as it would be shown now. */
  text(): string {
    const read = this.#read;
    const total = this.#total;
    const parts = [
      total
        ? `Reading backup: ${Math.floor((read / total) * 100)}% (${formatSize(read)} of ${
          formatSize(total)
        })`
        : `Reading backup: ${formatSize(read)}`,
    ];
    const rate = this.#rate();
    if (rate !== undefined) {
      parts.push(`${formatSize(rate)}/s`);
      if (total && total > read && rate > 0) {
        parts.push(`${formatDuration((total - read) / rate)} left`);
      }
    }
    if (this.#item !== undefined) parts.push(this.#item);
    return parts.join(", ");
  }

  #rate(): number | undefined {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (first === undefined || last === undefined) return undefined;
    const ms = last[0] - first[0];
    if (ms < 500) return undefined;
    return ((last[1] - first[1]) * 1000) / ms;
  }

  /** Cuts the line to the terminal's width, so it never wraps. */
  #fit(text: string): string {
    let columns = 80;
    try {
      columns = Deno.consoleSize().columns;
    } catch {
      // Not a terminal we can ask: assume 80 columns.
    }
    return text.length < columns ? text : text.slice(0, Math.max(0, columns - 1));
  }

  /** Clears the line and draws nothing until `resume()` (while a prompt is on screen). */
  pause(): void {
    this.clear();
    this.#paused = true;
  }

  /** Draws again after `pause()`. */
  resume(): void {
    this.#paused = false;
  }

  /** Removes the line and shows the cursor again; safe to call at any time. */
  clear(): void {
    if (!this.#drawn) return;
    this.#drawn = false;
    this.#write("\r\x1b[K\x1b[?25h");
  }

  #write(text: string): void {
    try {
      this.#out.writeSync(this.#encoder.encode(text));
    } catch {
      this.#style = "off";
    }
  }
}
