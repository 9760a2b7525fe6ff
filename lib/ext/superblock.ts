/**
 * The ext2/3/4 superblock: the 1024 bytes at byte 1024 of the file system that say how
 * everything else is laid out.
 *
 * @module
 */

import { ImageDamage, ImageUnsupported } from "./damage.ts";
import type { ByteSource } from "./image.ts";

/** Byte offset of the superblock inside the file system. */
export const SUPERBLOCK_OFFSET = 1024;
/** `s_magic`. */
export const EXT_MAGIC = 0xef53;

/** `s_feature_compat` bits this reader looks at. */
export const Compat = { HasJournal: 0x4, DirIndex: 0x20, SparseSuper2: 0x200 } as const;
/** `s_feature_incompat` bits. */
export const Incompat = {
  Compression: 0x1,
  Filetype: 0x2,
  Recover: 0x4,
  JournalDev: 0x8,
  MetaBg: 0x10,
  Extents: 0x40,
  Bit64: 0x80,
  Mmp: 0x100,
  FlexBg: 0x200,
  EaInode: 0x400,
  DirData: 0x1000,
  CsumSeed: 0x2000,
  LargeDir: 0x4000,
  InlineData: 0x8000,
  Encrypt: 0x10000,
  Casefold: 0x20000,
} as const;
/** `s_feature_ro_compat` bits. */
export const RoCompat = { SparseSuper: 0x1, HugeFile: 0x8, Bigalloc: 0x200 } as const;

/** Incompatible features whose presence does not stop a read-only reader. */
const READABLE_INCOMPAT = Incompat.Filetype | Incompat.Recover | Incompat.MetaBg |
  Incompat.Extents | Incompat.Bit64 | Incompat.Mmp | Incompat.FlexBg | Incompat.EaInode |
  Incompat.CsumSeed | Incompat.LargeDir | Incompat.InlineData | Incompat.Encrypt |
  Incompat.Casefold;

/** What the reader needs from the superblock, checked for consistency. */
export interface Superblock {
  inodesCount: number;
  blocksCount: number;
  firstDataBlock: number;
  blockSize: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  groupCount: number;
  inodeSize: number;
  firstInode: number;
  /** Size of one group descriptor: 32, or `s_desc_size` with 64bit. */
  descSize: number;
  firstMetaBg: number;
  compat: number;
  incompat: number;
  roCompat: number;
  journalInode: number;
  /** `s_backup_bgs` (sparse_super2): the groups that hold backup superblocks. */
  backupGroups: [number, number];
  volumeName: string;
  /** 2 = ext2 (no journal), 3 = journal, 4 = extents or other ext4 features. */
  generation: 2 | 3 | 4;
}

/** Whether the bytes at 1024 of `source` carry the ext magic number. */
export async function hasExtMagic(source: ByteSource): Promise<boolean> {
  if (source.size < SUPERBLOCK_OFFSET + 1024) return false;
  const bytes = await source.readAt(SUPERBLOCK_OFFSET + 0x38, 2);
  return (bytes[0]! | (bytes[1]! << 8)) === EXT_MAGIC;
}

/**
 * Reads and checks the superblock.
 *
 * @throws {ImageDamage} When it is not an ext file system or its numbers contradict each other.
 * @throws {ImageUnsupported} When it needs a feature this reader does not implement.
 */
export async function readSuperblock(source: ByteSource): Promise<Superblock> {
  if (source.size < SUPERBLOCK_OFFSET + 1024) {
    throw new ImageDamage({
      reason: "damaged",
      detail: "too small to hold an ext2/3/4 file system",
    });
  }
  const bytes = await source.readAt(SUPERBLOCK_OFFSET, 1024);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at: number) => view.getUint32(at, true);
  const u16 = (at: number) => view.getUint16(at, true);
  if (u16(0x38) !== EXT_MAGIC) {
    throw new ImageDamage({
      reason: "damaged",
      detail: "not an ext2/3/4 file system (no ext magic number at byte 1080)",
    });
  }
  const incompat = u32(0x60);
  const unknown = incompat & ~READABLE_INCOMPAT;
  if (unknown & Incompat.Compression) {
    throw new ImageUnsupported({ reason: "unsupported", detail: "compressed ext2 is not read" });
  }
  if (unknown & Incompat.JournalDev) {
    throw new ImageUnsupported({
      reason: "unsupported",
      detail: "it is an external journal device, not a file system",
    });
  }
  if (unknown !== 0) {
    throw new ImageUnsupported({
      reason: "unsupported",
      detail: `it uses incompatible file system features 0x${
        unknown.toString(16)
      } this reader does not know`,
    });
  }
  const logBlockSize = u32(0x18);
  if (logBlockSize > 6) {
    throw new ImageDamage({
      reason: "damaged",
      detail: `impossible block size 2^${10 + logBlockSize}`,
    });
  }
  const blockSize = 1024 << logBlockSize;
  const bit64 = (incompat & Incompat.Bit64) !== 0;
  const blocksCount = u32(0x4) + (bit64 ? u32(0x150) * 2 ** 32 : 0);
  const revLevel = u32(0x4c);
  const inodeSize = revLevel === 0 ? 128 : u16(0x58);
  const firstInode = revLevel === 0 ? 11 : u32(0x54);
  const descSize = bit64 ? u16(0xfe) : 32;
  const sb: Superblock = {
    inodesCount: u32(0x0),
    blocksCount,
    firstDataBlock: u32(0x14),
    blockSize,
    blocksPerGroup: u32(0x20),
    inodesPerGroup: u32(0x28),
    groupCount: 0,
    inodeSize,
    firstInode,
    descSize,
    firstMetaBg: u32(0x104),
    compat: u32(0x5c),
    incompat,
    roCompat: u32(0x64),
    journalInode: u32(0xe0),
    backupGroups: [u32(0x24c), u32(0x250)],
    volumeName: latin(bytes.subarray(0x78, 0x88)),
    generation: 2,
  };
  const problem = (() => {
    if (sb.blocksPerGroup === 0 || sb.blocksPerGroup > blockSize * 8 * 16) {
      return `${sb.blocksPerGroup} blocks per group`;
    }
    if (sb.inodesPerGroup === 0 || sb.inodesPerGroup > blockSize * 8) {
      return `${sb.inodesPerGroup} inodes per group`;
    }
    if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) {
      return `inode size ${inodeSize}`;
    }
    if (descSize < 32 || descSize > 1024 || (descSize & (descSize - 1)) !== 0) {
      return `group descriptor size ${descSize}`;
    }
    if (blocksCount === 0 || sb.firstDataBlock >= blocksCount) {
      return `${blocksCount} blocks, first data block ${sb.firstDataBlock}`;
    }
    return undefined;
  })();
  if (problem !== undefined) {
    throw new ImageDamage({ reason: "damaged", detail: `its superblock is damaged (${problem})` });
  }
  sb.groupCount = Math.ceil((blocksCount - sb.firstDataBlock) / sb.blocksPerGroup);
  if (sb.groupCount * sb.inodesPerGroup < sb.inodesCount) {
    throw new ImageDamage({
      reason: "damaged",
      detail:
        `its superblock is damaged (${sb.inodesCount} inodes do not fit ${sb.groupCount} groups)`,
    });
  }
  sb.inodesCount = Math.min(sb.inodesCount, sb.groupCount * sb.inodesPerGroup);
  const ext4Bits = Incompat.Extents | Incompat.Bit64 | Incompat.FlexBg | Incompat.InlineData |
    Incompat.MetaBg;
  sb.generation = (incompat & ext4Bits) !== 0 ? 4 : (sb.compat & Compat.HasJournal) !== 0 ? 3 : 2;
  return sb;
}

/** Whether group `group` holds a superblock backup (and so its descriptor blocks follow it). */
export function groupHasSuper(sb: Superblock, group: number): boolean {
  if (group === 0) return true;
  if (sb.compat & Compat.SparseSuper2) {
    return group === sb.backupGroups[0] || group === sb.backupGroups[1];
  }
  if (group <= 1 || (sb.roCompat & RoCompat.SparseSuper) === 0) return true;
  if ((group & 1) === 0) return false;
  return isPower(group, 3) || isPower(group, 5) || isPower(group, 7);
}

function isPower(n: number, base: number): boolean {
  let x = base;
  while (x < n) x *= base;
  return x === n;
}

function latin(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}
