/**
 * Header blocks of an inner archive as GNU tar 1.2x wrote them for Qubes (spec section 8): the
 * old-GNU flavour (magic `ustar␠␠\0`), GNU long names (`L`, `K` members named
 * `././@LongLink`), old-GNU sparse members (`S`, map in the header and extension blocks),
 * base-256 numbers for values of 8 GiB and more, and the end of the archive padded to a
 * 10240-byte record.
 *
 * @module
 */

/** One tar block. */
export const BLOCK = 512;
/** GNU tar's record: blocking factor 20. */
export const RECORD = 10240;

const encoder = new TextEncoder();

/** A member header to write. */
export interface MemberHeader {
  /** Member name; directories end with `/`. */
  name: string;
  /** `0` file, `2` symlink, `5` directory, `S` sparse file. */
  typeflag: "0" | "2" | "5" | "S";
  /** Permission bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Stored data bytes (for `S`: the sum of the map's sizes). */
  size: number;
  /** Symlink target, else `""`. */
  linkname?: string;
  /** `S` only: the logical file length and the data runs in ascending order. */
  sparse?: { realsize: number; offsets: number[]; sizes: number[] };
}

/** Writes `value` into a numeric field: octal digits and a NUL, or base-256 when too big. */
export function putNumber(block: Uint8Array, offset: number, length: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`bad tar number ${value}`);
  const octal = value.toString(8);
  if (octal.length <= length - 1) {
    block.set(encoder.encode(octal.padStart(length - 1, "0")), offset);
    block[offset + length - 1] = 0;
    return;
  }
  // GNU base-256: first byte 0x80, the value big-endian in the rest.
  let rest = BigInt(value);
  for (let i = length - 1; i >= 1; i--) {
    block[offset + i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  block[offset] = 0x80;
}

function putString(block: Uint8Array, offset: number, length: number, text: string): void {
  const bytes = encoder.encode(text);
  block.set(bytes.subarray(0, length), offset);
}

/** Writes a header's checksum as GNU tar does: six octal digits, NUL, space. */
export function putChecksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  putString(block, 148, 7, sum.toString(8).padStart(6, "0") + "\0");
  block[155] = 0x20;
}

function baseBlock(
  name: string,
  typeflag: string,
  fields: { mode: number; uid: number; gid: number; size: number; mtime: number },
  linkname: string,
): Uint8Array {
  const block = new Uint8Array(BLOCK);
  putString(block, 0, 100, name);
  putNumber(block, 100, 8, fields.mode);
  putNumber(block, 108, 8, fields.uid);
  putNumber(block, 116, 8, fields.gid);
  putNumber(block, 124, 12, fields.size);
  putNumber(block, 136, 12, fields.mtime);
  block[156] = typeflag.charCodeAt(0);
  putString(block, 157, 100, linkname);
  putString(block, 257, 8, "ustar  \0");
  putString(block, 265, 32, fields.uid === 0 ? "root" : "");
  putString(block, 297, 32, fields.gid === 0 ? "root" : "");
  return block;
}

/** A GNU `L`/`K` member carrying a name longer than 100 bytes, then its data blocks. */
function longLink(typeflag: "L" | "K", text: string): Uint8Array[] {
  const bytes = encoder.encode(text);
  const header = baseBlock("././@LongLink", typeflag, {
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: bytes.length + 1,
    mtime: 0,
  }, "");
  putChecksum(header);
  const data = new Uint8Array(Math.ceil((bytes.length + 1) / BLOCK) * BLOCK);
  data.set(bytes);
  return [header, data];
}

/**
 * The blocks that open a member: `L`/`K` members when needed, the header, and for a sparse
 * member its extension blocks. Member data follows, padded with {@link padding}.
 */
export function memberHeader(member: MemberHeader): Uint8Array[] {
  const out: Uint8Array[] = [];
  const linkname = member.linkname ?? "";
  if (encoder.encode(linkname).length > 100) out.push(...longLink("K", linkname));
  if (encoder.encode(member.name).length > 100) out.push(...longLink("L", member.name));
  const header = baseBlock(member.name, member.typeflag, member, linkname);
  const extensions: Uint8Array[] = [];
  if (member.sparse) {
    const { realsize, offsets, sizes } = member.sparse;
    for (let i = 0; i < Math.min(4, offsets.length); i++) {
      putNumber(header, 386 + 24 * i, 12, offsets[i]!);
      putNumber(header, 398 + 24 * i, 12, sizes[i]!);
    }
    putNumber(header, 483, 12, realsize);
    for (let first = 4; first < offsets.length; first += 21) {
      const block = new Uint8Array(BLOCK);
      for (let i = 0; i < 21 && first + i < offsets.length; i++) {
        putNumber(block, 24 * i, 12, offsets[first + i]!);
        putNumber(block, 24 * i + 12, 12, sizes[first + i]!);
      }
      if (first + 21 < offsets.length) block[504] = 1;
      extensions.push(block);
    }
    if (extensions.length > 0) header[482] = 1;
  }
  putChecksum(header);
  out.push(header, ...extensions);
  return out;
}

/** Zero bytes that complete `size` bytes of member data to whole blocks. */
export function padding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - size % BLOCK) % BLOCK);
}

/** The end of an archive of `written` bytes: two zero blocks, then zeros to a whole record. */
export function archiveEnd(written: number): Uint8Array {
  const total = written + 2 * BLOCK;
  return new Uint8Array(2 * BLOCK + (RECORD - total % RECORD) % RECORD);
}
