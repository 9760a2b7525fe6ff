/**
 * Parses a salvaged item's inner tar stream into the salvage writer, event by event, and
 * resynchronises after a break of unknown length (`gap.ts`): the member being written loses
 * the rest of its data, and the bytes after the break (what a compressed stream decoded after
 * a restart, `compressed.ts`) are searched for the next valid tar header. From there a new
 * parser reads on: a member whose header is found again is placed exactly (its data follows
 * its header), whatever was lost before it.
 *
 * A header is taken only when it is certain to be a member header of the item: checksum and
 * `ustar` magic valid, and either a GNU long-name or pax header (`L`, `K`, `x`; the member it
 * names is checked when it comes) or a member of a known kind whose name is whole (not the
 * first 100 bytes of a longer name), lies inside the item and is not the stand-in name of a
 * pax sparse member (`GNUSparseFile.`), whose map is in the pax header before it. What the
 * parser then refuses (a member outside the item, a bad header) is a new break.
 *
 * Format 2 marks where the next header lies for certain after a lost volume (a resume marker,
 * `gap.ts`), with its place in the stream: a header found from there is parsed with the volume
 * starts, so the `M` headers of the volumes after it are checked as before the break; an
 * end-of-archive block right there ends the item. In format 2 nothing is placed where the place
 * in the stream is not known (after a parser error past a resume marker, until the next one):
 * the volume starts could not be checked there.
 *
 * @module
 */

import { DamagedError, InterruptedError, RecoverError } from "../errors.ts";
import { memberInItem, normaliseName } from "../format/mod.ts";
import {
  BLOCK_SIZE,
  hasValidChecksum,
  isZeroBlock,
  parseHeader,
  type VolumeStarts,
} from "../tar/mod.ts";
import { type TarEvent, TarParser } from "../tar/mod.ts";
import { gapCause, gapMember, resumeAt } from "./gap.ts";
import type { LostCause } from "./lost.ts";
import type { SalvageWriter } from "./writer.ts";

/** Typeflags of members a header found after a break may start. */
const MEMBER_TYPES = new Set(["0", "\0", "1", "2", "3", "4", "5", "6", "7", "S"]);
/** Typeflags of the headers that carry the next member's name or map. */
const META_TYPES = new Set(["L", "K", "x"]);
const USTAR = [0x75, 0x73, 0x74, 0x61, 0x72]; // "ustar" at offset 257

/**
 * Told each break in the item's data (for the folder list), and the member known by name to be
 * lost in it (format 2: the member its next volume continues, whose header was lost).
 */
export type OnGap = (cause: LostCause, member?: string) => void;

/** Reads one item's salvaged tar stream (see the module text). */
export class SalvageParse {
  readonly #item: string;
  #parser: TarParser | undefined;
  /** The parser was started on a header found after a break. */
  #resynced = false;
  #events: TarEvent[] = [];
  /** Bytes after a break not yet searched through (the last 511 of what was). */
  #scan = new Uint8Array(0);
  /** The item is one file (its first member is the item itself): nothing follows a break. */
  #singleFile = false;
  #first = true;
  readonly #starts: VolumeStarts | undefined;
  /** Format 2 (a resume marker was seen): data is placed only where its stream place is known. */
  #multi = false;
  /** While searching (format 2): where the next byte lies in the stream, when known. */
  #streamAt: number | undefined;
  /** The next byte is where a resume marker said a header lies. */
  #atResume = false;

  constructor(item: string, starts?: VolumeStarts) {
    this.#item = item;
    this.#starts = starts;
    this.#parser = new TarParser((event) => this.#events.push(event), starts);
  }

  /** The member whose data is being read, and its stored bytes to come (see `TarParser`). */
  get dataLeft(): { name: string; left: number; lenient: boolean } | undefined {
    return this.#parser?.dataLeft;
  }

  /**
   * Parses `tar` into `writer`. Errors of the stream, and the parser's errors before any
   * break, end the item (thrown as they are); after a break, a parser error is a new break.
   */
  async run(
    tar: AsyncIterable<Uint8Array>,
    writer: SalvageWriter,
    onGap: OnGap,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    for await (let piece of tar) {
      if (signal?.aborted) throw new InterruptedError();
      const cause = gapCause(piece);
      if (cause !== undefined) {
        await this.#break(writer, onGap, cause, gapMember(piece));
        // A one-file item has no member after the break: what follows is not read.
        if (this.#singleFile) return;
        continue;
      }
      const resume = resumeAt(piece);
      if (resume !== undefined) {
        this.#multi = true;
        if (this.#parser === undefined) {
          this.#streamAt = resume;
          this.#atResume = true;
          this.#scan = new Uint8Array(0);
        }
        continue;
      }
      if (this.#parser === undefined) {
        const at = this.#streamAt;
        const atResume = this.#atResume;
        this.#atResume = false;
        // Format 2, where the stream place is lost: nothing until the next resume marker.
        if (this.#multi && at === undefined) continue;
        const emit = (event: TarEvent) => this.#events.push(event);
        if (atResume && piece.length >= BLOCK_SIZE && isZeroBlock(piece.subarray(0, BLOCK_SIZE))) {
          // The end-of-archive marker, where a header certainly lies: the item ends there.
          this.#parser = new TarParser(emit, this.#starts, at);
        } else {
          const found = this.#find(piece);
          if (found === undefined) {
            if (at !== undefined) this.#streamAt = at + piece.length;
            continue;
          }
          // In format 2 the parser knows where it starts, so the volume starts after are checked.
          const start = at === undefined ? undefined : at + piece.length - found.length;
          this.#parser = start === undefined
            ? new TarParser(emit)
            : new TarParser(emit, this.#starts, start);
          piece = found;
        }
        this.#streamAt = undefined;
        this.#resynced = true;
      }
      let failure: unknown;
      try {
        this.#parser.push(piece);
      } catch (error) {
        failure = error;
      }
      failure = (await this.#flush(writer)) ?? failure;
      if (failure !== undefined) await this.#failed(writer, onGap, failure);
    }
    if (this.#parser === undefined) return;
    let failure: unknown;
    try {
      this.#parser.finish();
    } catch (error) {
      failure = error;
    }
    failure = (await this.#flush(writer)) ?? failure;
    if (failure !== undefined) await this.#failed(writer, onGap, failure);
  }

  /** Writes the parser's events; returns the error of a member outside the item. */
  async #flush(writer: SalvageWriter): Promise<unknown> {
    const events = this.#events;
    this.#events = [];
    for (const event of events) {
      if (event.type === "entry" && this.#first) {
        this.#first = false;
        this.#singleFile = event.entry.kind === "file" &&
          normaliseName(event.entry.name) === normaliseName(this.#item);
      }
      if (event.type === "entry" && !memberInItem(this.#item, event.entry.name)) {
        return new DamagedError({
          reason: "out-of-place",
          action: "salvage item",
          subject: { kind: "item", name: this.#item },
          detail: `it holds "${event.entry.name}", which lies outside it`,
        });
      }
      await writer.write(event);
    }
    return undefined;
  }

  /** A parser error: thrown before any break, a new break after one. */
  async #failed(writer: SalvageWriter, onGap: OnGap, error: unknown): Promise<void> {
    if (!this.#resynced || !(error instanceof RecoverError)) throw error;
    await this.#break(writer, onGap, { reason: error.reason, chunk: "" });
  }

  async #break(
    writer: SalvageWriter,
    onGap: OnGap,
    cause: LostCause,
    member?: string,
  ): Promise<void> {
    // After the end-of-archive marker nothing is lost.
    if (this.#parser?.ended) return;
    this.#events = [];
    await writer.gap(cause);
    onGap(cause, member);
    this.#parser = undefined;
    this.#streamAt = undefined;
    this.#scan = new Uint8Array(0);
  }

  /** The input from the next header that certainly starts a member of the item, if any. */
  #find(piece: Uint8Array): Uint8Array | undefined {
    const carry = this.#scan;
    const buffer = new Uint8Array(carry.length + piece.length);
    buffer.set(carry);
    buffer.set(piece, carry.length);
    for (let at = 0; at + BLOCK_SIZE <= buffer.length; at++) {
      if (buffer[at + 257] !== USTAR[0] || !USTAR.every((b, i) => buffer[at + 257 + i] === b)) {
        continue;
      }
      if (this.#isMemberHeader(buffer.subarray(at, at + BLOCK_SIZE))) {
        this.#scan = new Uint8Array(0);
        return buffer.subarray(at);
      }
    }
    this.#scan = buffer.slice(Math.max(0, buffer.length - (BLOCK_SIZE - 1)));
    return undefined;
  }

  #isMemberHeader(block: Uint8Array): boolean {
    if (isZeroBlock(block) || !hasValidChecksum(block)) return false;
    const type = String.fromCharCode(block[156]!);
    if (META_TYPES.has(type)) return true;
    if (!MEMBER_TYPES.has(type)) return false;
    // A full name field may be the first 100 bytes of a long name whose `L` header was lost.
    if (block[99] !== 0) return false;
    let name: string;
    try {
      name = parseHeader(block, 0).name;
    } catch {
      return false;
    }
    return !name.includes("GNUSparseFile.") && memberInItem(this.#item, name);
  }
}
