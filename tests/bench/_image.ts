/**
 * The benchmark's source disk image: a sparse file that looks like a used VM volume, about 30%
 * incompressible (random) data, 30% compressible text and 40% holes, laid out in 1 MiB units
 * with the repeating pattern `R T H R T H R T H H` (so three data runs per 10 MiB and a sparse
 * map of about 300 entries per GiB).
 *
 * @module
 */

import { randomFillSync } from "node:crypto";
import { xorshift32 } from "../support/xorshift.ts";

const MIB = 1024 * 1024;
const PATTERN = "RTHRTHRTHH";

/** Words the text units are made of; gzip gets about 3:1 on them, like real text. */
const WORDS = (
  "the of and to in is was that for it with as his on be at by had are but from or have an " +
  "they which one you were her all she there would their we him been has when who will more " +
  "no if out so said what up its about into than them can only other new some could time " +
  "these two may then do first any my now such like our over man me even most made after " +
  "also did many before must through back years where much your way well down should because " +
  "each just those people mr how too little state good very make world still own see men " +
  "work long get here between both life being under never day same another know while last " +
  "kernel volume backup restore qubes private image template network firewall sector block " +
  "filesystem journal inode extent superblock directory permission timestamp checksum"
).split(" ");

/** `bytes` of word text with line breaks (never a zero byte, so never mistaken for a hole). */
function makeText(bytes: number, seed: number): Uint8Array {
  const next = xorshift32(seed);
  const encoder = new TextEncoder();
  const out = new Uint8Array(bytes);
  let at = 0;
  let line = 0;
  while (at < bytes) {
    const word = WORDS[next() % WORDS.length]!;
    const piece = line > 70 ? `${word}.\n` : `${word} `;
    line = line > 70 ? 0 : line + piece.length;
    const written = encoder.encodeInto(piece, out.subarray(at)).written;
    if (written === 0) break;
    at += written;
  }
  out.fill(0x20, at);
  return out;
}

/** What {@link makeSourceImage} wrote. */
export interface SourceImage {
  path: string;
  /** Apparent size in bytes. */
  size: number;
  /** Bytes of data written (random + text); the rest are holes. */
  dataBytes: number;
}

/**
 * Writes a sparse image of `size` bytes (a multiple of 1 MiB) at `path`.
 *
 * @example
 * ```ts
 * const image = await makeSourceImage("/tmp/x/private.img", 1024 ** 3);
 * ```
 */
export async function makeSourceImage(path: string, size: number): Promise<SourceImage> {
  if (size % MIB !== 0) {
    throw new RangeError(`Cannot make an image of ${size} bytes: not whole MiB`);
  }
  // Sixteen distinct MiB of text, cycled: gzip's 32 KiB window cannot see the repetition.
  const texts = Array.from({ length: 16 }, (_, i) => makeText(MIB, 0x9e3779b9 + i));
  const random = new Uint8Array(MIB);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  let dataBytes = 0;
  try {
    await file.truncate(size);
    for (let unit = 0; unit < size / MIB; unit++) {
      const kind = PATTERN[unit % PATTERN.length];
      if (kind === "H") continue;
      const bytes = kind === "R" ? randomFillSync(random) : texts[unit % texts.length]!;
      await file.seek(unit * MIB, Deno.SeekMode.Start);
      for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
      dataBytes += MIB;
    }
  } finally {
    file.close();
  }
  return { path, size, dataBytes };
}
