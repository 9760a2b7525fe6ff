/**
 * The inner tar parser: a plaintext GNU / POSIX tar byte stream in, {@link TarEvent}s out.
 *
 * @module
 */

import { DamagedError, IncompleteError } from "../errors.ts";
import type { TarEntry, TarEvent } from "./events.ts";
import { BLOCK_SIZE, isZeroBlock, paddingAfter, parseHeader } from "./header.ts";
import type { TarHeader } from "./header.ts";
import { escapedName, type VolumeStart, type VolumeStarts } from "./multivolume.ts";
import { parsePaxRecords } from "./pax.ts";
import { applyPaxRecords, kindOf } from "./pending.ts";
import type { Pending } from "./pending.ts";
import {
  fitsImage,
  readOldGnuSparseExtension,
  readOldGnuSparseHeader,
  SparseMapTextParser,
  validateSparseMap,
} from "./sparse.ts";
import type { SparseMap } from "./sparse.ts";

/** Largest pax extended header accepted (GNU sparse 0.1 maps live there). */
const MAX_PAX_SIZE = 64 * 1024 * 1024;
/** Largest GNU long name or long link accepted. */
const MAX_LONG_NAME = 1024 * 1024;

/**
 * Parses a plaintext inner tar byte stream (GNU/old-GNU and POSIX/ustar; as written by GNU tar
 * 1.2x-1.3x and Qubes' python tarwriter) into {@link TarEvent}s.
 *
 * Accepts any piece sizes. For every member it emits `entry`, then `data` events carrying
 * subarray views of the input pieces (never copies, never a reused buffer) at their offset in
 * the member's logical file, then `end`. Sparse members (old-GNU `S`, pax sparse 0.0, 0.1 and
 * 1.0) are resolved: holes are simply not covered by any `data` event. GNU long names (`L`, `K`)
 * and pax `path`, `linkpath`, `size`, `mtime` are applied; `g`, `V` and `D` data is skipped.
 *
 * The archive ends at its first zero block, as GNU tar reads it; whatever follows is ignored,
 * so a member that python's tarwriter left unpadded before the end marker still ends cleanly.
 *
 * Errors: a bad header checksum, malformed number or invalid sparse map is a `DamagedError`;
 * a stream that ends inside a member or before the end-of-archive marker is an
 * `IncompleteError` (`Cannot read tar member "x": the archive ends early (n bytes missing)`).
 *
 * @example
 * ```ts
 * for await (const event of file.readable.pipeThrough(new TarStream())) {
 *   if (event.type === "entry") console.log(event.entry.name, event.entry.size);
 * }
 * ```
 */
export class TarStream extends TransformStream<Uint8Array, TarEvent> {
  /**
   * @param volumes For a format-2 multi-volume stream from `joinVolumes`: where each volume
   *   starts. At each start inside a member's data, the volume must begin with an `M` header
   *   naming that member, with the bytes still to come and the offset reached (GNU tar
   *   `-M`'s "This volume is out of sequence"); once a member's sparse map or a long name has
   *   crossed a volume boundary (the GNU tar bug of Qubes issue 902), only the name is checked
   *   for that member.
   */
  constructor(volumes?: VolumeStarts) {
    let parser: TarParser;
    super({
      start(controller) {
        parser = new TarParser((event) => controller.enqueue(event), volumes);
      },
      transform(piece) {
        parser.push(piece);
      },
      flush() {
        parser.finish();
      },
    });
  }
}

/** What the parser expects next. */
const enum State {
  /** Collecting a 512-byte header block. */
  Header,
  /** Collecting the data of an `x`, `L` or `K` member. */
  Meta,
  /** Collecting an old-GNU sparse extension block. */
  SparseExtension,
  /** Reading the GNU sparse 1.0 map text at the start of the member data. */
  MapText,
  /** Emitting member data. */
  Data,
  /** Skipping member data nobody needs (`g`, `V`, data of links and devices). */
  SkipData,
  /** Skipping the zero padding after member data. */
  Padding,
  /** The end-of-archive marker was seen: everything else is ignored. */
  Done,
}

/** The state machine behind {@link TarStream}; header bytes are the only ones it copies. */
export class TarParser {
  readonly #emit: (event: TarEvent) => void;
  #state = State.Header;
  /** Bytes of the stream consumed so far (for messages). */
  #position = 0;
  /** Scratch block for headers and extension blocks; only parsed, never emitted. */
  readonly #block = new Uint8Array(BLOCK_SIZE);
  #blockFill = 0;
  #pending: Pending = {};
  /** The header being handled (member or meta member). */
  #header: TarHeader | undefined;
  /** The `x`/`L`/`K` data being collected. */
  #meta = new Uint8Array(0);
  #metaFill = 0;
  /** Bytes left to skip (SkipData, Padding). */
  #skip = 0;
  /** Padding to skip once the current member's stored bytes are consumed. */
  #padding = 0;
  /** Current member. */
  #entry: TarEntry | undefined;
  #storedSize = 0;
  #map: SparseMap = { offsets: [], sizes: [] };
  #mapParser: SparseMapTextParser | undefined;
  /** Data state: stored bytes left, current run, bytes left in it, its next logical offset. */
  #dataLeft = 0;
  #run = -1;
  #runLeft = 0;
  #logical = 0;
  readonly #volumes: VolumeStarts | undefined;
  #nextVolume = 0;
  /** The current member's header material crossed a volume boundary (Qubes issue 902). */
  #lenientVolumes = false;
  /** The same, for the member whose `L`, `K` or `x` data is being read. */
  #pendingLenient = false;

  /**
   * @param startAt Where in the stream `volumes` counts in the first byte pushed lies (salvage:
   *   a parser started again after lost data; volume starts before it are passed over).
   */
  constructor(emit: (event: TarEvent) => void, volumes?: VolumeStarts, startAt = 0) {
    this.#emit = emit;
    this.#volumes = volumes;
    this.#position = startAt;
  }

  /**
   * For salvage: the member whose data the parser is in, the stored bytes of it still to come,
   * and whether its volume boundaries are checked leniently (Qubes issue 902); undefined
   * elsewhere.
   */
  get dataLeft(): { name: string; left: number; lenient: boolean } | undefined {
    if (this.#state !== State.Data) return undefined;
    return { name: this.#entry!.name, left: this.#dataLeft, lenient: this.#lenientVolumes };
  }

  /** Whether the end-of-archive marker was read (salvage: nothing is lost after it). */
  get ended(): boolean {
    return this.#state === State.Done;
  }

  push(piece: Uint8Array): void {
    const starts = this.#volumes?.starts;
    if (starts === undefined) return this.#push(piece);
    let rest = piece;
    for (;;) {
      const next = starts[this.#nextVolume];
      if (next === undefined || next.at >= this.#position + rest.length) break;
      if (next.at < this.#position) {
        // Before this parser's first byte (a parser started again in salvage).
        this.#nextVolume++;
        continue;
      }
      const n = next.at - this.#position;
      if (n > 0) this.#push(rest.subarray(0, n));
      this.#onVolumeStart(next);
      this.#nextVolume++;
      rest = rest.subarray(n);
    }
    this.#push(rest);
  }

  /** Checks that a volume continues the member the previous one stopped in. */
  #onVolumeStart(start: VolumeStart): void {
    const m = start.continuation;
    switch (this.#state) {
      case State.Data: {
        const entry = this.#entry!;
        const where = `volume ${start.volume} (chunk .${
          String(start.volume - 1).padStart(3, "0")
        })`;
        const expected = new TextEncoder().encode(entry.name).subarray(0, 100);
        if (m === undefined || !sameBytes(m.name, expected)) {
          throw new DamagedError({
            reason: "out-of-place",
            action: "read tar member",
            subject: { kind: "member", name: entry.name },
            detail: `${where} does not continue it (${
              m === undefined ? "no continuation header" : `it continues "${escapedName(m.name)}"`
            }); the chunks are out of order or from another backup`,
          });
        }
        if (this.#lenientVolumes) return;
        const offset = (entry.sparse ? entry.size : this.#storedSize) - this.#dataLeft;
        if (m.size !== this.#dataLeft || m.offset !== offset) {
          throw new DamagedError({
            reason: "out-of-place",
            action: "read tar member",
            subject: { kind: "member", name: entry.name },
            detail:
              `${where} continues it at offset ${m.offset} (${m.size} bytes to come), but the volumes before end at offset ${offset} (${this.#dataLeft} bytes to come); the chunks are out of order`,
          });
        }
        return;
      }
      case State.Meta:
        // Header material across volumes: GNU tar writes no or inconsistent M headers then.
        this.#pendingLenient = true;
        return;
      case State.SparseExtension:
      case State.MapText:
        this.#lenientVolumes = true;
        return;
      default:
        // Between members (an M header may announce the next one), or in data nobody reads.
        return;
    }
  }

  #push(piece: Uint8Array): void {
    let pos = 0;
    const length = piece.length;
    while (pos < length) {
      const before = pos;
      switch (this.#state) {
        case State.Header:
        case State.SparseExtension: {
          const n = Math.min(BLOCK_SIZE - this.#blockFill, length - pos);
          this.#block.set(piece.subarray(pos, pos + n), this.#blockFill);
          this.#blockFill += n;
          pos += n;
          if (this.#blockFill === BLOCK_SIZE) {
            this.#blockFill = 0;
            const at = this.#position + n - BLOCK_SIZE;
            if (this.#state === State.Header) this.#onHeader(at);
            else this.#onSparseExtension();
          }
          break;
        }
        case State.Meta: {
          const n = Math.min(this.#meta.length - this.#metaFill, length - pos);
          this.#meta.set(piece.subarray(pos, pos + n), this.#metaFill);
          this.#metaFill += n;
          pos += n;
          if (this.#metaFill === this.#meta.length) this.#onMeta();
          break;
        }
        case State.MapText: {
          const parser = this.#mapParser!;
          pos += parser.push(piece.subarray(pos));
          if (parser.done) this.#startSparseData(parser.map, this.#storedSize - parser.consumed);
          break;
        }
        case State.Data:
          pos = this.#onData(piece, pos);
          break;
        case State.SkipData:
        case State.Padding: {
          const n = Math.min(this.#skip, length - pos);
          this.#skip -= n;
          pos += n;
          if (this.#skip === 0) this.#afterSkip();
          break;
        }
        case State.Done:
          pos = length;
          break;
      }
      this.#position += pos - before;
    }
  }

  finish(): void {
    const entryName = this.#entry?.name ?? this.#header?.name ?? "";
    let missing: number;
    switch (this.#state) {
      case State.Done:
        return;
      case State.Header:
        // A partial zero block: the end marker of an unpadded tarwriter member, cut short.
        if (this.#blockFill > 0 && this.#block.subarray(0, this.#blockFill).every((b) => b === 0)) {
          return;
        }
        throw new IncompleteError({
          reason: "truncated",
          action: "read the archive",
          detail: this.#blockFill > 0
            ? `it ends inside a header at byte ${this.#position}`
            : "it ends before the end-of-archive marker",
        });
      case State.Padding:
        throw new IncompleteError({
          reason: "truncated",
          action: "read the archive",
          detail: "it ends before the end-of-archive marker",
        });
      case State.Meta:
        missing = this.#meta.length - this.#metaFill;
        break;
      case State.SparseExtension:
        missing = BLOCK_SIZE - this.#blockFill + this.#storedSize;
        break;
      case State.MapText:
        missing = this.#storedSize - this.#mapParser!.consumed;
        break;
      case State.Data:
        missing = this.#dataLeft;
        break;
      case State.SkipData:
        missing = this.#skip;
        break;
    }
    throw new IncompleteError({
      reason: "truncated",
      action: "read tar member",
      subject: { kind: "member", name: entryName },
      detail: `the archive ends early (${missing} bytes missing)`,
    });
  }

  #onHeader(at: number): void {
    const block = this.#block;
    if (isZeroBlock(block)) {
      this.#state = State.Done;
      return;
    }
    const header = parseHeader(block, at);
    this.#header = header;
    this.#entry = undefined;
    switch (header.typeflag) {
      case "x":
        this.#collectMeta(header, MAX_PAX_SIZE);
        return;
      case "L":
      case "K":
        this.#collectMeta(header, MAX_LONG_NAME);
        return;
      case "g":
      case "V":
        this.#skipData(header.size);
        return;
    }
    this.#onMember(header);
  }

  #collectMeta(header: TarHeader, limit: number): void {
    if (header.size > limit) {
      throw new DamagedError({
        reason: "too-large",
        action: "read tar member",
        subject: { kind: "member", name: header.name },
        detail: `its size ${header.size} is implausible`,
      });
    }
    this.#meta = new Uint8Array(header.size);
    this.#metaFill = 0;
    this.#state = State.Meta;
    if (header.size === 0) this.#onMeta();
  }

  #onMeta(): void {
    const header = this.#header!;
    const data = this.#meta;
    this.#meta = new Uint8Array(0);
    if (header.typeflag === "x") applyPaxRecords(this.#pending, parsePaxRecords(data, header.name));
    else {
      const nul = data.indexOf(0);
      const text = new TextDecoder().decode(nul < 0 ? data : data.subarray(0, nul));
      if (header.typeflag === "L") this.#pending.longName = text;
      else this.#pending.longLink = text;
    }
    this.#skip = paddingAfter(data.length);
    this.#state = State.Padding;
    if (this.#skip === 0) this.#state = State.Header;
  }

  #onMember(header: TarHeader): void {
    this.#lenientVolumes = this.#pendingLenient;
    this.#pendingLenient = false;
    const p = this.#pending;
    this.#pending = {};
    const kind = kindOf(header.typeflag);
    const entry: TarEntry = {
      name: p.sparseName ?? p.path ?? p.longName ?? header.name,
      kind,
      typeflag: header.typeflag,
      mode: header.mode,
      mtime: p.mtime ?? header.mtime,
      linkname: p.linkpath ?? p.longLink ?? header.linkname,
      size: 0,
      sparse: false,
    };
    this.#entry = entry;
    const stored = p.size ?? header.size;
    this.#storedSize = stored;
    this.#padding = paddingAfter(stored);
    if (header.typeflag === "S") {
      const map: SparseMap = { offsets: [], sizes: [] };
      const sparse = readOldGnuSparseHeader(this.#block, map);
      entry.size = sparse.realsize;
      entry.sparse = true;
      this.#map = map;
      if (sparse.isExtended) this.#state = State.SparseExtension;
      else this.#startSparseData(map, stored);
    } else if (kind === "file" && p.sparseMajor === 1) {
      if (p.sparseRealsize === undefined) {
        throw new DamagedError({
          reason: "damaged",
          action: "read tar member",
          subject: { kind: "member", name: entry.name },
          detail: "its pax header has no GNU.sparse.realsize",
        });
      }
      entry.size = p.sparseRealsize;
      entry.sparse = true;
      this.#mapParser = new SparseMapTextParser(stored, entry.name, entry.size);
      this.#state = State.MapText;
    } else if (kind === "file" && p.sparseMap !== undefined) {
      entry.size = p.sparseRealsize ?? stored;
      entry.sparse = true;
      this.#startSparseData(p.sparseMap, stored);
    } else if (kind === "file") {
      entry.size = stored;
      this.#startData({ offsets: [0], sizes: [stored] }, stored);
    } else {
      this.#emit({ type: "entry", entry });
      this.#emit({ type: "end" });
      this.#skipData(stored);
    }
  }

  #onSparseExtension(): void {
    const more = readOldGnuSparseExtension(this.#block, this.#map);
    if (!fitsImage(this.#map.offsets.length, this.#entry!.size)) {
      throw new DamagedError({
        reason: "too-large",
        action: "read the sparse map of tar member",
        subject: { kind: "member", name: this.#entry!.name },
        detail: `it has more entries than a file of ${this.#entry!.size} bytes can have`,
      });
    }
    if (!more) {
      this.#startSparseData(this.#map, this.#storedSize);
    }
  }

  #startSparseData(map: SparseMap, stored: number): void {
    const entry = this.#entry!;
    validateSparseMap(map, entry.size, stored, entry.name);
    this.#startData(map, stored);
  }

  #startData(map: SparseMap, stored: number): void {
    this.#emit({ type: "entry", entry: this.#entry! });
    this.#map = map;
    this.#mapParser = undefined;
    this.#dataLeft = stored;
    this.#run = -1;
    this.#runLeft = 0;
    this.#state = State.Data;
    if (stored === 0) this.#endData();
  }

  #onData(piece: Uint8Array, start: number): number {
    let pos = start;
    const { offsets, sizes } = this.#map;
    while (pos < piece.length) {
      while (this.#runLeft === 0) {
        this.#run++;
        this.#runLeft = sizes[this.#run]!;
        this.#logical = offsets[this.#run]!;
      }
      const n = Math.min(this.#runLeft, piece.length - pos);
      this.#emit({ type: "data", offset: this.#logical, bytes: piece.subarray(pos, pos + n) });
      pos += n;
      this.#logical += n;
      this.#runLeft -= n;
      this.#dataLeft -= n;
      if (this.#dataLeft === 0) {
        this.#endData();
        break;
      }
    }
    return pos;
  }

  #endData(): void {
    this.#emit({ type: "end" });
    this.#entry = undefined;
    this.#skip = this.#padding;
    this.#state = this.#skip === 0 ? State.Header : State.Padding;
  }

  #skipData(size: number): void {
    this.#skip = size;
    this.#padding = paddingAfter(size);
    this.#state = State.SkipData;
    if (size === 0) this.#afterSkip();
  }

  #afterSkip(): void {
    if (this.#state === State.SkipData && this.#padding !== 0) {
      this.#skip = this.#padding;
      this.#state = State.Padding;
      return;
    }
    this.#state = State.Header;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
