/**
 * The ext3/ext4 journal (jbd2), read-only: when a file system was not cleanly unmounted
 * (`needs_recovery`), its committed transactions are found and their blocks laid over the
 * image in memory, as `e2fsck` would replay them, without writing anything.
 *
 * Checksums (csum v2/v3) are not verified: a transaction counts as committed when its commit
 * block is there with the right sequence number. Fast-commit areas are not replayed.
 *
 * @module
 */

import { ImageDamage } from "./damage.ts";
import type { ByteSource } from "./image.ts";
import type { Run } from "./runs.ts";

const JBD2_MAGIC = 0xc03b3998;
const BlockType = { Descriptor: 1, Commit: 2, SuperblockV1: 3, SuperblockV2: 4, Revoke: 5 };
const Feature = { Revoke: 0x1, Bit64: 0x2, CsumV2: 0x8, CsumV3: 0x10 };
const TagFlag = { Escape: 0x1, SameUuid: 0x2, LastTag: 0x8 };

/** Where the replayed blocks are: file system block -> journal block (and whether escaped). */
export interface JournalOverlay {
  /** File system block number -> physical block holding its newest committed content. */
  blocks: Map<number, { at: number; escaped: boolean }>;
  transactions: number;
}

/**
 * Finds the committed transactions of the journal whose data runs are `runs`.
 *
 * @param readBlock Reads a file system block (of the image as it is).
 * @returns The overlay, or undefined when the journal is clean (nothing to replay).
 * @throws {ImageDamage} When the journal superblock is damaged.
 */
export async function readJournal(
  readBlock: (block: number) => Promise<Uint8Array>,
  runs: Run[],
  blockSize: number,
): Promise<JournalOverlay | undefined> {
  const physical = (logical: number): number => {
    for (const run of runs) {
      if (logical >= run.logical && logical < run.logical + run.length) {
        return run.physical + logical - run.logical;
      }
    }
    throw new ImageDamage({ reason: "damaged", detail: `the journal has no block ${logical}` });
  };
  const read = async (logical: number) => {
    const bytes = await readBlock(physical(logical));
    return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  };
  const { view: sb } = await read(0);
  if (sb.getUint32(0) !== JBD2_MAGIC) {
    throw new ImageDamage({ reason: "damaged", detail: "the journal has no superblock" });
  }
  const type = sb.getUint32(4);
  if (type !== BlockType.SuperblockV1 && type !== BlockType.SuperblockV2) {
    throw new ImageDamage({
      reason: "damaged",
      detail: "the journal superblock has an unknown type",
    });
  }
  if (sb.getUint32(0xc) !== blockSize) {
    throw new ImageDamage({
      reason: "damaged",
      detail: "the journal's block size differs from the file system's",
    });
  }
  const maxLen = sb.getUint32(0x10);
  const first = sb.getUint32(0x14);
  let sequence = sb.getUint32(0x18);
  const start = sb.getUint32(0x1c);
  if (start === 0) return undefined;
  const incompat = type === BlockType.SuperblockV2 ? sb.getUint32(0x28) : 0;
  if (first < 1 || first >= maxLen || start < first || start >= maxLen) {
    throw new ImageDamage({ reason: "damaged", detail: "the journal superblock is damaged" });
  }
  const bit64 = (incompat & Feature.Bit64) !== 0;
  const csum = (incompat & (Feature.CsumV2 | Feature.CsumV3)) !== 0;
  const tagBytes = incompat & Feature.CsumV3
    ? 16
    : 12 + (incompat & Feature.CsumV2 ? 2 : 0) - (bit64 ? 0 : 4);
  const next = (block: number) => (block + 1 >= maxLen ? first : block + 1);

  /** The tags of a descriptor block: target block and flags. */
  const tags = (bytes: Uint8Array, view: DataView) => {
    const out: Array<{ target: number; escaped: boolean }> = [];
    const end = bytes.length - (csum ? 4 : 0);
    let at = 12;
    while (at + tagBytes <= end) {
      const low = view.getUint32(at);
      const flags = incompat & Feature.CsumV3 ? view.getUint32(at + 4) : view.getUint16(at + 6);
      const high = bit64 ? view.getUint32(at + 8) : 0;
      out.push({ target: high * 2 ** 32 + low, escaped: (flags & TagFlag.Escape) !== 0 });
      at += tagBytes + (flags & TagFlag.SameUuid ? 0 : 16);
      if (flags & TagFlag.LastTag) break;
    }
    return out;
  };

  // One walk collects, per committed transaction, its tagged blocks and its revokes.
  type Pending = {
    writes: Array<{ target: number; at: number; escaped: boolean }>;
    revokes: number[];
  };
  const committed: Array<Pending & { sequence: number }> = [];
  let pending: Pending = { writes: [], revokes: [] };
  let block = start;
  for (let steps = 0; steps < maxLen; steps++) {
    const { bytes, view } = await read(block);
    if (view.getUint32(0) !== JBD2_MAGIC || view.getUint32(8) !== sequence) break;
    const kind = view.getUint32(4);
    if (kind === BlockType.Descriptor) {
      for (const tag of tags(bytes, view)) {
        block = next(block);
        pending.writes.push({ target: tag.target, at: physical(block), escaped: tag.escaped });
      }
    } else if (kind === BlockType.Revoke) {
      const used = Math.min(view.getUint32(12), bytes.length - (csum ? 4 : 0));
      const size = bit64 ? 8 : 4;
      for (let at = 16; at + size <= used; at += size) {
        pending.revokes.push(
          bit64 ? Number(view.getBigUint64(at)) : view.getUint32(at),
        );
      }
    } else if (kind === BlockType.Commit) {
      committed.push({ ...pending, sequence });
      pending = { writes: [], revokes: [] };
      sequence = (sequence + 1) >>> 0;
    } else {
      break;
    }
    block = next(block);
  }
  // A block revoked in transaction N is not replayed from transactions up to N.
  const revokedUpTo = new Map<number, number>();
  committed.forEach((t, index) => {
    for (const target of t.revokes) revokedUpTo.set(target, index);
  });
  const blocks = new Map<number, { at: number; escaped: boolean }>();
  committed.forEach((t, index) => {
    for (const write of t.writes) {
      const revoked = revokedUpTo.get(write.target);
      if (revoked !== undefined && revoked >= index) continue;
      blocks.set(write.target, { at: write.at, escaped: write.escaped });
    }
  });
  return { blocks, transactions: committed.length };
}

/** A {@link ByteSource} that shows the journal's replayed blocks instead of the image's. */
export class OverlaySource implements ByteSource {
  readonly size: number;
  readonly #inner: ByteSource;
  readonly #overlay: JournalOverlay;
  readonly #blockSize: number;

  constructor(inner: ByteSource, overlay: JournalOverlay, blockSize: number) {
    this.#inner = inner;
    this.#overlay = overlay;
    this.#blockSize = blockSize;
    this.size = inner.size;
  }

  async readAt(offset: number, length: number): Promise<Uint8Array> {
    const bytes = await this.#inner.readAt(offset, length);
    const bs = this.#blockSize;
    const firstBlock = Math.floor(offset / bs);
    const lastBlock = Math.floor((offset + length - 1) / bs);
    for (let block = firstBlock; block <= lastBlock && length > 0; block++) {
      const replaced = this.#overlay.blocks.get(block);
      if (replaced === undefined) continue;
      const content = await this.#inner.readAt(replaced.at * bs, bs);
      if (replaced.escaped) new DataView(content.buffer).setUint32(0, JBD2_MAGIC);
      const from = Math.max(offset, block * bs);
      const to = Math.min(offset + length, (block + 1) * bs);
      bytes.set(content.subarray(from - block * bs, to - block * bs), from - offset);
    }
    return bytes;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    target.set(await this.readAt(offset, target.length));
  }
}
