/**
 * Test helper: where each member of a GNU tar stream lies, walked from the real tool's bytes.
 *
 * @module
 */

/** Where a member lies in the intact item's joined tar stream. */
export interface Placed {
  name: string;
  /** Its first header block (an `L` header's, when it has one). */
  header: number;
  /** Where its stored data starts, and its stored size. */
  data: number;
  stored: number;
}

/**
 * The members of an intact tar stream written by GNU tar, in parts (format-2 volumes, or the
 * chunks of formats 3 and 4), walked block by block in the stream the parts join to (a format-2
 * volume's leading `M` block dropped, spec §8.7.3), and where each part starts in it. Written
 * here from the spec, apart from the library's parser.
 */
export function walkTar(
  volumes: Uint8Array[],
  multivolume: boolean,
): { members: Placed[]; starts: number[] } {
  const starts: number[] = [];
  const parts: Uint8Array[] = [];
  let length = 0;
  for (const [k, volume] of volumes.entries()) {
    const body = multivolume && k > 0 && volume[156] === 0x4d ? volume.subarray(512) : volume;
    starts.push(length);
    parts.push(body);
    length += body.length;
  }
  starts.push(length);
  const stream = new Uint8Array(length);
  parts.reduce((at, part) => (stream.set(part, at), at + part.length), 0);
  const text = (bytes: Uint8Array) => {
    const nul = bytes.indexOf(0);
    return new TextDecoder().decode(nul < 0 ? bytes : bytes.subarray(0, nul));
  };
  const octal = (at: number) => parseInt(text(stream.subarray(at, at + 12)).trim() || "0", 8);
  const members: Placed[] = [];
  let at = 0;
  let longName: { name: string; header: number } | undefined;
  while (at + 512 <= length && stream.subarray(at, at + 512).some((b) => b !== 0)) {
    const size = octal(at + 124);
    const type = String.fromCharCode(stream[at + 156]!);
    if (type === "L") {
      longName = { name: text(stream.subarray(at + 512, at + 512 + size)), header: at };
      at += 512 + Math.ceil(size / 512) * 512;
      continue;
    }
    const header = longName?.header ?? at;
    const name = (longName?.name ?? text(stream.subarray(at, at + 100))).replace(/\/$/, "");
    longName = undefined;
    let data = at + 512;
    if (type === "S" && stream[at + 482] !== 0) {
      while (stream[data + 504] !== 0) data += 512;
      data += 512;
    }
    const stored = type === "0" || type === "S" ? size : 0;
    members.push({ name, header, data, stored });
    at = data + Math.ceil(stored / 512) * 512;
  }
  return { members, starts };
}
