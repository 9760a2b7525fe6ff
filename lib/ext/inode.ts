/**
 * Inodes: type, mode, size, times, flags, the 60-byte `i_block` area and the in-inode
 * extended attributes (where inline data continues).
 *
 * @module
 */

import { ImageDamage } from "./damage.ts";
import type { GroupDescriptors } from "./group_descriptors.ts";
import type { Superblock } from "./superblock.ts";

/** The inode number of the root directory. */
export const ROOT_INODE = 2;

/** `i_flags` bits the reader acts on. */
export const InodeFlag = {
  Encrypt: 0x800,
  Index: 0x1000,
  HugeFile: 0x40000,
  Extents: 0x80000,
  EaInode: 0x200000,
  InlineData: 0x10000000,
} as const;

/** What an inode is, from the type bits of `i_mode`. */
export type InodeKind =
  | "file"
  | "directory"
  | "symlink"
  | "char"
  | "block"
  | "fifo"
  | "socket"
  | "unknown";

/** One inode, decoded. */
export interface Inode {
  number: number;
  kind: InodeKind;
  /** Full `i_mode` (type and permission bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Size in bytes (`i_size_lo` + `i_size_high`). */
  size: number;
  /** Modification time: whole seconds since the epoch (with the extra epoch bits). */
  mtime: number;
  /** Nanoseconds of the modification time (0 without extra fields). */
  mtimeNs: number;
  atime: number;
  links: number;
  flags: number;
  /** `i_dtime`: non-zero for a deleted inode. */
  dtime: number;
  /** The 60 bytes of `i_block`: block map, extent root, fast symlink or inline data. */
  block: Uint8Array;
  /** The in-inode extended attribute area (after `i_extra_isize`), possibly empty. */
  xattrArea: Uint8Array;
}

const TYPE_BY_BITS: Record<number, InodeKind> = {
  0x1: "fifo",
  0x2: "char",
  0x4: "directory",
  0x6: "block",
  0x8: "file",
  0xa: "symlink",
  0xc: "socket",
};

/**
 * Reads inode `number`.
 *
 * @throws {ImageDamage} When the number is out of range or the inode table is not in the image.
 */
export async function readInode(
  readBlock: (block: number) => Promise<Uint8Array>,
  sb: Superblock,
  groups: GroupDescriptors,
  number: number,
): Promise<Inode> {
  if (!Number.isInteger(number) || number < 1 || number > sb.inodesCount) {
    throw new ImageDamage({
      reason: "damaged",
      detail: `inode number ${number} is out of range (1-${sb.inodesCount})`,
    });
  }
  const group = Math.floor((number - 1) / sb.inodesPerGroup);
  const index = (number - 1) % sb.inodesPerGroup;
  const table = await groups.inodeTable(group);
  // Inode and block sizes are powers of two, inode <= block: an inode never spans two blocks.
  const byte = index * sb.inodeSize;
  const block = await readBlock(table + Math.floor(byte / sb.blockSize));
  const at = byte % sb.blockSize;
  // A view, not a copy: cached blocks are never changed, and the inode only reads them.
  return decodeInode(block.subarray(at, at + sb.inodeSize), number);
}

/** Decodes the raw bytes of inode `number` (`bytes.length` is the inode size, >= 128). */
export function decodeInode(bytes: Uint8Array, number: number): Inode {
  // Plain reads, no helper closures: a tree of thousands of files decodes thousands of inodes.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const mode = view.getUint16(0x0, true);
  let extra = 0;
  if (bytes.length > 128) {
    extra = view.getUint16(0x80, true);
    if (extra < 4 || 128 + extra > bytes.length || (extra & 3) !== 0) extra = 0;
  }
  const xattrStart = extra === 0 ? bytes.length : 128 + extra;
  return {
    number,
    kind: TYPE_BY_BITS[mode >> 12] ?? "unknown",
    mode,
    uid: view.getUint16(0x2, true) | (view.getUint16(0x78, true) << 16),
    gid: view.getUint16(0x18, true) | (view.getUint16(0x7a, true) << 16),
    size: view.getUint32(0x4, true) + view.getUint32(0x6c, true) * 2 ** 32,
    mtime: timeSeconds(view, 0x10, extra, 0x88),
    mtimeNs: timeNs(view, extra, 0x88),
    atime: timeSeconds(view, 0x8, extra, 0x8c),
    links: view.getUint16(0x1a, true),
    flags: view.getUint32(0x20, true),
    dtime: view.getUint32(0x14, true),
    block: bytes.subarray(0x28, 0x28 + 60),
    xattrArea: bytes.subarray(xattrStart),
  };
}

/** Whether the extra inode fields (`extra` bytes of them) reach the 4-byte field at `at`. */
function hasExtra(extra: number, at: number): boolean {
  return extra >= at - 0x80 + 4;
}

/** Seconds of the time at `base`, with the epoch bits of its extra field at `extraAt`. */
function timeSeconds(view: DataView, base: number, extra: number, extraAt: number): number {
  const seconds = view.getInt32(base, true);
  return hasExtra(extra, extraAt)
    ? seconds + (view.getUint32(extraAt, true) & 3) * 2 ** 32
    : seconds;
}

/** Nanoseconds of a time from its extra field at `extraAt` (0 without one). */
function timeNs(view: DataView, extra: number, extraAt: number): number {
  return hasExtra(extra, extraAt) ? Math.min(view.getUint32(extraAt, true) >>> 2, 999_999_999) : 0;
}

/** In-inode extended attribute area magic (`h_magic`). */
const XATTR_MAGIC = 0xea020000;

/**
 * The value of the in-inode extended attribute `system.<name>` (name index 7), or undefined.
 * Only the in-inode area is searched; that is where `system.data` (inline data) lives.
 */
export function inodeSystemXattr(inode: Inode, name: string): Uint8Array | undefined {
  const area = inode.xattrArea;
  if (area.length < 8) return undefined;
  const view = new DataView(area.buffer, area.byteOffset, area.byteLength);
  if (view.getUint32(0, true) !== XATTR_MAGIC) return undefined;
  const entries = 4;
  let at = entries;
  const wanted = new TextEncoder().encode(name);
  while (at + 16 <= area.length) {
    if (view.getUint32(at, true) === 0) break;
    const nameLen = area[at]!;
    const nameIndex = area[at + 1]!;
    const valueOffset = view.getUint16(at + 2, true);
    const valueInode = view.getUint32(at + 4, true);
    const valueSize = view.getUint32(at + 8, true);
    const nameEnd = at + 16 + nameLen;
    if (nameEnd > area.length) break;
    const entryName = area.subarray(at + 16, nameEnd);
    if (
      nameIndex === 7 && valueInode === 0 && entryName.length === wanted.length &&
      entryName.every((byte, i) => byte === wanted[i])
    ) {
      const start = entries + valueOffset;
      if (start + valueSize > area.length) {
        throw new ImageDamage({
          reason: "damaged",
          detail: `inode ${inode.number}: extended attribute "system.${name}" is cut off`,
        });
      }
      return area.subarray(start, start + valueSize);
    }
    at = (nameEnd + 3) & ~3;
  }
  return undefined;
}
