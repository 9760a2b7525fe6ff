/**
 * Format 2 salvage: an item's GNU tar volumes joined as `joinVolumes` joins them (each `M`
 * continuation header dropped and recorded for the tar parser), every volume that does not
 * verify or decode lost. What a run of lost volumes costs is decided when the next verified
 * volume is reached, from its `M` header (member name, stored bytes to come, offset; spec
 * §8.7.2) and from where the parser stood when the run began:
 *
 * - **The member being read continues past the run** (its stored bytes to come exceed what the
 *   lost volumes held: `V - 512` each, as each began with an `M` header): the lost volumes are
 *   zeros marked lost inside it, of that exact length; the next `M` header must name it with
 *   the bytes still to come (and the parser checks its offset), else nothing more is placed.
 * - **Otherwise the run held headers of later members.** The member being read loses the rest
 *   of its data (a known length at known places), and a break follows (`gap.ts`): the members
 *   whose headers were in the run are not known by name. The next volume then starts either
 *   with a header (no `M` header, or an `M` header followed by the header of the member it
 *   names, GNU tar's second case), where the parser starts again; or with the data of the member
 *   its `M` header names, whose header was lost: that member is listed lost by name (its data
 *   cannot be placed: a sparse member's map was in its header, and nothing tells a sparse
 *   member from a plain one), its stored bytes are passed over, and the parser starts again on
 *   the header right after them. Every member after that is read whole.
 * - **The first volume is lost, and the item is one file** (the `M` header names the item
 *   itself): its data after the run is placed only when the `M` offset proves the member plain
 *   (see {@link firstVolumeLost}); else the item is not salvaged, and the reason says why.
 *
 * @module
 */

import { DamagedError, IncompleteError } from "../errors.ts";
import type { EntryQueue } from "../format/entry_queue.ts";
import { chunkEntryName, parseChunkEntry } from "../outer/mod.ts";
import {
  BLOCK_SIZE,
  type ContinuationHeader,
  hasValidChecksum,
  isContinuationHeader,
  paddingAfter,
  parseHeader,
  readContinuationHeader,
  type VolumeStarts,
} from "../tar/mod.ts";
import { gapMarker, resumeMarker } from "./gap.ts";
import { lostBytes, type LostCause } from "./lost.ts";

/** What the format-2 salvage reader needs of the tar parser that reads its output. */
export interface SalvageProbe {
  /** Filled with the start of each verified volume after the first (see `joinVolumes`). */
  starts: VolumeStarts;
  /** The member whose data the parser is in, and its stored bytes to come (`TarParser`). */
  dataLeft(): { name: string; left: number; lenient: boolean } | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** The longest `L` (long name) data taken when looking for a header after an `M` header. */
const MAX_LONG_NAME = 64 * 1024;

/**
 * The item's tar stream, as the module text says.
 *
 * @param decode Takes chunk `index` (the next entry) and returns its decoded tar volume.
 * @throws {DamagedError | IncompleteError} When the place of verified data is not certain.
 */
export async function* salvagedVolumes(
  queue: EntryQueue,
  item: string,
  decode: (index: number) => Promise<Uint8Array>,
  probe: SalvageProbe,
): AsyncGenerator<Uint8Array> {
  const uncertain = (detail: string) =>
    new DamagedError({
      reason: "damaged",
      action: "salvage item",
      subject: { kind: "item", name: item },
      detail,
    });
  /** The size of every volume but the last, once a volume followed by another verified. */
  let volumeSize: number | undefined;
  /** The length of the last verified volume (it was not the last, so must be `volumeSize`). */
  let previous: number | undefined;
  /** Bytes handed on so far: where volume starts are counted. */
  let position = 0;
  let index = 0;
  /** The run of lost volumes not accounted for yet, and the index of its first. */
  let run: LostCause[] = [];
  let runStart = 0;
  /** The data of a member whose header was lost, being passed over. */
  let skip: { name: Uint8Array; left: number } | undefined;
  /** A break was told and the parser waits for a header: the next bytes are where it lies. */
  let resume = false;

  const lose = (at: number, cause: LostCause) => {
    if (run.length === 0) runStart = at;
    run.push(cause);
  };

  /** Bytes of the item's stream handed on (after a resume marker when one is due). */
  function* hand(bytes: Uint8Array): Generator<Uint8Array> {
    if (resume) {
      resume = false;
      yield resumeMarker(position);
    }
    position += bytes.length;
    if (bytes.length > 0) yield bytes;
  }

  /** Passes over the data (and padding) of the member being skipped; hands on what follows. */
  function* passOver(body: Uint8Array): Generator<Uint8Array> {
    const left = skip!.left;
    if (left >= body.length) {
      skip!.left -= body.length;
      if (skip!.left > 0) return;
    }
    // Its data ends here: the next header follows its padding.
    const take = left + paddingAfter(left);
    skip = undefined;
    resume = true;
    if (take < body.length) yield* hand(body.subarray(take));
  }

  /** A verified volume after a run of lost ones (see the module text). */
  function* afterRun(
    k: number,
    m: ContinuationHeader | undefined,
    body: Uint8Array,
  ): Generator<Uint8Array> {
    const lost = run;
    const first = runStart;
    run = [];
    const cause = lost[0]!;
    const size = volumeSize;
    // The member whose data the run began in: the one being passed over, or the parser's.
    const parsed = skip === undefined ? probe.dataLeft() : undefined;
    const reading = skip ?? (parsed === undefined ? undefined : {
      name: encoder.encode(parsed.name).subarray(0, 100),
      left: parsed.left,
    });
    const lenient = parsed?.lenient ?? false;
    // Each lost volume inside one member's data began with an `M` header.
    const held = size === undefined ? undefined : lost.length * (size - BLOCK_SIZE);
    if (first > 0 && reading !== undefined && held !== undefined && reading.left > held) {
      const name = reading.name;
      if (m === undefined || !sameBytes(m.name, name)) {
        throw uncertain(
          `volume ${k + 1} (chunk "${chunkEntryName(item, k, false)}") does not continue "${
            decoder.decode(name)
          }", which the lost volumes before it lay inside`,
        );
      }
      if (!lenient && m.size !== reading.left - held) {
        throw uncertain(
          `volume ${k + 1} continues "${decoder.decode(name)}" with ${m.size} bytes to come, but ${
            reading.left - held
          } are left after the lost volumes before it`,
        );
      }
      if (skip !== undefined) {
        skip.left -= held;
        yield* passOver(body);
        return;
      }
      for (const one of lost) {
        position += size! - BLOCK_SIZE;
        yield* lostBytes(size! - BLOCK_SIZE, one);
      }
      yield* volumeBody(k, m, body);
      return;
    }
    if (first === 0 && m !== undefined && sameBytes(m.name, encoder.encode(item))) {
      yield* firstVolumeLost(item, k, m, lost, size);
      position += BLOCK_SIZE + m.offset;
      yield* volumeBody(k, m, body);
      return;
    }
    // The run held headers of later members: the member being read loses the rest of its data.
    if (skip === undefined && reading !== undefined) {
      let left = reading.left;
      for (const one of lost) {
        const n = size === undefined ? left : Math.min(left, size - BLOCK_SIZE);
        position += n;
        yield* lostBytes(n, one);
        left -= n;
        if (left === 0) break;
      }
    }
    skip = undefined;
    if (m === undefined || headerFollows(m, body)) {
      yield gapMarker(cause);
      resume = true;
      yield* hand(body);
      return;
    }
    // The volume continues a member whose header was lost: it is lost, its data passed over.
    const member = decoder.decode(m.name);
    yield gapMarker(cause, m.name.length < 100 ? member : undefined);
    skip = { name: m.name, left: m.size };
    yield* passOver(body);
  }

  /** A verified volume's body handed on; its start recorded for the parser's `M` check. */
  function* volumeBody(
    k: number,
    m: ContinuationHeader | undefined,
    body: Uint8Array,
  ): Generator<Uint8Array> {
    if (k > 0 && !resume) {
      probe.starts.starts.push({ at: position, volume: k + 1, continuation: m });
    }
    yield* hand(body);
  }

  for (;;) {
    const entry = await queue.peek();
    const parsed = entry === undefined ? undefined : parseChunkEntry(entry.name, false);
    if (entry === undefined || parsed?.item !== item) break;
    if (parsed.index < index) {
      // A volume that belongs before (a copy, or moved back): its data has no place here.
      await queue.next();
      await entry.skip();
      continue;
    }
    for (; index < parsed.index; index++) {
      lose(index, { reason: "missing", chunk: chunkEntryName(item, index, false) });
    }
    index = parsed.index + 1;
    if (parsed.hmac) {
      await queue.next();
      await entry.skip();
      lose(parsed.index, { reason: "missing", chunk: chunkEntryName(item, parsed.index, false) });
      continue;
    }
    let volume: Uint8Array;
    try {
      volume = await decode(parsed.index);
    } catch (error) {
      if (!(error instanceof DamagedError || error instanceof IncompleteError)) throw error;
      lose(parsed.index, { reason: error.reason, chunk: entry.name });
      continue;
    }
    const next = await queue.peek();
    const last = next === undefined || parseChunkEntry(next.name, false)?.item !== item;
    if (previous !== undefined && previous !== volumeSize) {
      throw uncertain(`its volumes before "${entry.name}" do not all have one size`);
    }
    if (!last) volumeSize ??= volume.length;
    if (volumeSize !== undefined && volume.length > volumeSize) {
      throw uncertain(`volume "${entry.name}" is larger than the ones before it`);
    }
    previous = volume.length;
    const head = volume.subarray(0, BLOCK_SIZE);
    const m = isContinuationHeader(head) ? readContinuationHeader(head) : undefined;
    if (parsed.index === 0 && m !== undefined) {
      throw uncertain(`its first volume continues a member of an earlier volume`);
    }
    const body = m === undefined ? volume : volume.subarray(BLOCK_SIZE);
    if (run.length > 0) yield* afterRun(parsed.index, m, body);
    else if (skip !== undefined) {
      if (m === undefined || !sameBytes(m.name, skip.name) || m.size !== skip.left) {
        throw uncertain(
          `volume ${parsed.index + 1} does not continue "${
            decoder.decode(skip.name)
          }", whose data the volume before it ended in`,
        );
      }
      yield* passOver(body);
    } else yield* volumeBody(parsed.index, m, body);
  }
  // The item ends. Lost volumes at its end have no known length: the parser tells what is
  // missing. While a member whose header was lost is passed over, the rest is a break.
  if (skip !== undefined) yield gapMarker(run[0] ?? { reason: "truncated", chunk: "" });
}

/**
 * The first volumes of a one-file item are lost (`lost`, volumes `0 .. k - 1`), and volume `k`
 * continues the file (`m`): its stored data from there on is placed at the `M` offset only when
 * that proves the member plain, as a synthetic header for the file, with the lost part of its
 * data as zeros marked lost.
 *
 * The proof: the item's stream starts with the member's header (one 512-byte block: its name is
 * shorter than 99 bytes, so GNU tar wrote no long-name header), so the lost volumes held
 * `k * (V - 512)` of its stored bytes. A plain member's `M` offset is exactly that. A sparse one
 * (old-GNU `S`, spec §8.5) stores `512 * e` fewer bytes there (its `e` extension blocks) and its
 * offset counts from its real size (`realsize - stored bytes to come`), `h` more (the bytes of
 * its holes): its offset equals that only when `h = 512 * e`. With no extension block that
 * means no hole, where every stored byte lies at its own offset, as in a plain member. With `e`
 * blocks the map has more than `4 + 21 * (e - 1)` entries, and GNU tar separates two data
 * entries by a hole of at least 512 bytes, so `h > 512 * e`: never equal.
 *
 * @param size The volume size, when known.
 * @throws {IncompleteError} When the offset does not prove it (a sparse member, an unknown
 *   volume size, a long name): nothing of the item is placed, and the message says why.
 */
function* firstVolumeLost(
  item: string,
  k: number,
  m: ContinuationHeader,
  lost: LostCause[],
  size: number | undefined,
): Generator<Uint8Array> {
  const cause = lost[0]!;
  const refuse = (why: string) =>
    new IncompleteError({
      reason: "missing",
      action: "salvage item",
      subject: { kind: "item", name: item },
      detail: `its first volume ("${cause.chunk}"), which held its tar header, is lost (${
        lost.length === 1 ? "" : `with ${lost.length - 1} more after it, `
      }${cause.reason}) and ${why}: nothing of it is placed`,
    });
  if (encoder.encode(item).length >= 99) {
    throw refuse("its name is too long to tell how long its header was");
  }
  if (size === undefined) {
    throw refuse("no volume before its last one verified, so the volume size is not known");
  }
  const before = k * (size - BLOCK_SIZE);
  if (m.offset > before) {
    throw refuse(
      `it is stored as a sparse file (volume ${
        k + 1
      } continues it at offset ${m.offset}, past the ${before} bytes the lost volumes held), whose map was in the lost header: where its data lies is not known`,
    );
  }
  if (m.offset !== before) {
    throw refuse(
      `volume ${
        k + 1
      } continues it at offset ${m.offset}, not after the ${before} bytes the lost volumes held`,
    );
  }
  yield fileHeader(item, m.offset + m.size);
  for (const one of lost) yield* lostBytes(size - BLOCK_SIZE, one);
}

/**
 * Whether the body of a volume that starts with `m` starts with the header of the member `m`
 * names (GNU tar's second case, spec §8.7.2: a member that ended exactly at the volume's end
 * while the next one was registered), rather than with that member's data: a valid header
 * (checksum and `ustar` magic), after an `L` long-name header or not, whose name starts with
 * the `M` name and whose size is the `M` size.
 */
function headerFollows(m: ContinuationHeader, body: Uint8Array): boolean {
  const block = (at: number) => {
    const b = body.subarray(at, at + BLOCK_SIZE);
    return b.length === BLOCK_SIZE && hasValidChecksum(b) && isUstar(b) ? b : undefined;
  };
  let header = block(0);
  if (header === undefined) return false;
  let name = header.subarray(0, 100);
  if (header[156] === 0x4c /* L */) {
    let size: number;
    try {
      size = parseHeader(header, 0).size;
    } catch {
      return false;
    }
    if (size > MAX_LONG_NAME) return false;
    const data = body.subarray(BLOCK_SIZE, BLOCK_SIZE + size);
    name = data;
    header = block(BLOCK_SIZE + size + paddingAfter(size));
    if (header === undefined) return false;
  }
  const nul = name.indexOf(0);
  const full = name.subarray(0, nul < 0 ? name.length : nul);
  if (!sameBytes(full.subarray(0, 100), m.name)) return false;
  try {
    return parseHeader(header, 0).size === m.size;
  } catch {
    return false;
  }
}

function isUstar(block: Uint8Array): boolean {
  return block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 &&
    block[260] === 0x61 && block[261] === 0x72;
}

/** A GNU tar header of a plain file `name` of `size` bytes (mode 0644, mtime 0). */
function fileHeader(name: string, size: number): Uint8Array {
  const block = new Uint8Array(BLOCK_SIZE);
  const put = (at: number, text: string) => block.set(encoder.encode(text), at);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  if (size < 8 ** 11) put(124, size.toString(8).padStart(11, "0") + "\0");
  else {
    // GNU base-256: the top bit of the first byte set, the number big-endian in the rest.
    block[124] = 0x80;
    for (let i = 135, rest = size; i > 124; i--, rest = Math.floor(rest / 256)) {
      block[i] = rest % 256;
    }
  }
  put(136, "00000000000\0");
  block[156] = 0x30; // "0"
  put(257, "ustar  \0");
  block.fill(0x20, 148, 156);
  const sum = block.reduce((total, byte) => total + byte, 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
