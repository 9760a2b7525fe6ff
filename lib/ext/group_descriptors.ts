/**
 * Block group descriptors: where each group's inode table lies. Only their location depends on
 * meta_bg (and, through the superblock backups, on sparse_super/sparse_super2); flex_bg only
 * moves the tables they point to.
 *
 * @module
 */

import { ImageDamage } from "./damage.ts";
import type { ByteSource } from "./image.ts";
import { groupHasSuper, Incompat, type Superblock } from "./superblock.ts";

/** Reads group descriptors on demand, keeping the descriptor blocks it has read. */
export class GroupDescriptors {
  readonly #source: ByteSource;
  readonly #sb: Superblock;
  readonly #perBlock: number;
  /** Descriptor blocks read so far, by descriptor-block index. At most groupCount/perBlock. */
  readonly #blocks = new Map<number, Uint8Array>();

  constructor(source: ByteSource, sb: Superblock) {
    this.#source = source;
    this.#sb = sb;
    this.#perBlock = sb.blockSize / sb.descSize;
  }

  /** The block number of descriptor block `index` (libext2fs's ext2fs_descriptor_block_loc2). */
  #descriptorBlock(index: number): number {
    const sb = this.#sb;
    // With 1 KiB blocks the superblock is block 1; with bigger ones it lives inside block 0.
    const groupZero = sb.firstDataBlock;
    if ((sb.incompat & Incompat.MetaBg) === 0 || index < sb.firstMetaBg) {
      return groupZero + 1 + index;
    }
    const group = index * this.#perBlock;
    return groupZero + group * sb.blocksPerGroup + (groupHasSuper(sb, group) ? 1 : 0);
  }

  /**
   * The first block of the inode table of `group`.
   *
   * @throws {ImageDamage} When the descriptor points outside the file system.
   */
  async inodeTable(group: number): Promise<number> {
    const sb = this.#sb;
    if (group < 0 || group >= sb.groupCount) {
      throw new ImageDamage({ reason: "damaged", detail: `no block group ${group}` });
    }
    const index = Math.floor(group / this.#perBlock);
    let block = this.#blocks.get(index);
    if (block === undefined) {
      const at = this.#descriptorBlock(index);
      if (at >= sb.blocksCount) {
        throw new ImageDamage({
          reason: "damaged",
          detail: `the descriptor of block group ${group} lies outside the file system`,
        });
      }
      block = await this.#source.readAt(at * sb.blockSize, sb.blockSize);
      this.#blocks.set(index, block);
    }
    const offset = (group % this.#perBlock) * sb.descSize;
    const view = new DataView(block.buffer, block.byteOffset + offset, sb.descSize);
    const lo = view.getUint32(0x8, true);
    const hi = sb.descSize >= 64 ? view.getUint32(0x28, true) : 0;
    const table = lo + hi * 2 ** 32;
    const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
    if (table === 0 || table + tableBlocks > sb.blocksCount) {
      throw new ImageDamage({
        reason: "damaged",
        detail: `the inode table of block group ${group} lies outside the file system`,
      });
    }
    return table;
  }
}
