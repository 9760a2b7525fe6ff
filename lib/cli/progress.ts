/**
 * A progress line on standard error, only when it is a terminal: redrawn in place at most ten
 * times a second, the cursor hidden while it shows and always restored by `clear()`.
 *
 * @module
 */

import { formatSize } from "./render.ts";

/** The terminal a progress line draws on. */
export interface ProgressTerminal {
  isTerminal(): boolean;
  writeSync(p: Uint8Array): number;
}

/** One self-redrawing line: `Reading backup: 42% (1.1 GiB of 2.6 GiB)`. */
export class ProgressLine {
  #out: ProgressTerminal;
  #enabled: boolean;
  #drawn = false;
  #last = 0;
  #encoder = new TextEncoder();
  #paused = false;

  constructor(out: ProgressTerminal = Deno.stderr) {
    this.#out = out;
    this.#enabled = out.isTerminal();
  }

  /** Redraws the line for `read` of `total` bytes (throttled). */
  update(read: number, total: number | undefined): void {
    if (!this.#enabled || this.#paused) return;
    const now = Date.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    const text = total
      ? `Reading backup: ${Math.floor((read / total) * 100)}% (${formatSize(read)} of ${
        formatSize(total)
      })`
      : `Reading backup: ${formatSize(read)}`;
    this.#write(`${this.#drawn ? "" : "\x1b[?25l"}\r\x1b[K${text}`);
    this.#drawn = true;
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
      this.#enabled = false;
    }
  }
}
