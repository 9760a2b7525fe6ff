/**
 * Classic block maps (ext2/ext3, ext4 without extents): 12 direct pointers, then single,
 * double and triple indirect blocks. A zero pointer is a hole.
 *
 * @module
 */

import { ImageDamage } from "./damage.ts";
import { type Run, RunBuilder, type RunContext } from "./runs.ts";

/** How many blocks a block map can address with `blockSize` (the largest possible file). */
export function blockMapCapacity(blockSize: number): number {
  const p = blockSize / 4;
  return 12 + p + p * p + p * p * p;
}

/**
 * The data runs of a block-mapped file, in logical order.
 *
 * An indirect block met twice (a loop or a shared subtree) and pointers outside the file
 * system are refused; work is bounded by the distinct indirect blocks.
 *
 * @throws {ImageDamage} Naming the inode and what is wrong.
 */
export async function* blockMapRuns(iBlock: Uint8Array, ctx: RunContext): AsyncGenerator<Run> {
  const p = ctx.blockSize / 4;
  const visited = new Set<number>();
  const builder = new RunBuilder();
  const damage = (what: string) =>
    new ImageDamage({ reason: "damaged", detail: `inode ${ctx.inode}: ${what}` });
  const top = new DataView(iBlock.buffer, iBlock.byteOffset, 60);

  /** Walks the subtree under `pointer` at `level` (0 = data block) starting at `logical`. */
  async function* walk(pointer: number, level: number, logical: number): AsyncGenerator<Run> {
    if (pointer === 0 || logical >= ctx.limit) return;
    if (pointer >= ctx.blocksCount) {
      throw damage(`block pointer ${pointer} at block ${logical} lies outside the file system`);
    }
    if (level === 0) {
      const done = builder.add(logical, pointer, 1);
      if (done !== undefined) yield done;
      return;
    }
    if (visited.has(pointer)) throw damage(`indirect block ${pointer} is used twice`);
    visited.add(pointer);
    const block = await ctx.readBlock(pointer);
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    const span = p ** (level - 1);
    for (let i = 0; i < p; i++) {
      const at = logical + i * span;
      if (at >= ctx.limit) return;
      const child = view.getUint32(i * 4, true);
      if (child === 0) continue;
      if (level === 1) {
        if (child >= ctx.blocksCount) {
          throw damage(`block pointer ${child} at block ${at} lies outside the file system`);
        }
        const done = builder.add(at, child, 1);
        if (done !== undefined) yield done;
      } else {
        yield* walk(child, level - 1, at);
      }
    }
  }

  for (let i = 0; i < 12; i++) yield* walk(top.getUint32(i * 4, true), 0, i);
  yield* walk(top.getUint32(48, true), 1, 12);
  yield* walk(top.getUint32(52, true), 2, 12 + p);
  yield* walk(top.getUint32(56, true), 3, 12 + p + p * p);
  const last = builder.finish();
  if (last !== undefined) yield last;
}
