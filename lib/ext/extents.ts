/**
 * Extent trees (ext4 `EXTENTS_FL`): a header and up to four entries in `i_block`, index nodes
 * and leaves of any depth below. Uninitialised extents read as zeros, so they are holes here.
 *
 * @module
 */

import { ImageDamage } from "./damage.ts";
import { type Run, RunBuilder, type RunContext } from "./runs.ts";

/** `eh_magic`. */
export const EXTENT_MAGIC = 0xf30a;
/** The kernel never builds deeper trees (EXT4_MAX_EXTENT_DEPTH). */
const MAX_DEPTH = 5;
/** `ee_len` above this marks an uninitialised extent. */
const INIT_MAX_LEN = 32768;

/**
 * The data runs of a file whose `i_block` holds an extent tree root, in logical order.
 *
 * Hostile trees are refused: a node visited twice (a loop), a child of the wrong depth,
 * extents out of order or overlapping, blocks outside the file system.
 *
 * @throws {ImageDamage} Naming the inode and what is wrong.
 */
export async function* extentRuns(root: Uint8Array, ctx: RunContext): AsyncGenerator<Run> {
  const visited = new Set<number>();
  const builder = new RunBuilder();
  let next = 0;
  const damage = (what: string) => new ImageDamage(`inode ${ctx.inode}: ${what}`);

  async function* walk(node: Uint8Array, depth: number | undefined): AsyncGenerator<Run> {
    const view = new DataView(node.buffer, node.byteOffset, node.byteLength);
    if (view.getUint16(0, true) !== EXTENT_MAGIC) throw damage("extent node has no magic number");
    const entries = view.getUint16(2, true);
    const max = view.getUint16(4, true);
    const nodeDepth = view.getUint16(6, true);
    if (entries > max || 12 + max * 12 > node.length) throw damage("extent node is overfull");
    if (nodeDepth > MAX_DEPTH || (depth !== undefined && nodeDepth !== depth)) {
      throw damage(`extent node has depth ${nodeDepth}, expected ${depth ?? `<= ${MAX_DEPTH}`}`);
    }
    for (let i = 0; i < entries; i++) {
      const at = 12 + i * 12;
      const logical = view.getUint32(at, true);
      if (logical >= ctx.limit) return;
      if (nodeDepth === 0) {
        let length = view.getUint16(at + 4, true);
        const uninit = length > INIT_MAX_LEN;
        if (uninit) length -= INIT_MAX_LEN;
        const physical = view.getUint16(at + 6, true) * 2 ** 32 + view.getUint32(at + 8, true);
        if (logical < next) throw damage(`extents overlap or are out of order at block ${logical}`);
        if (length === 0) continue;
        next = logical + length;
        if (uninit) continue;
        if (physical === 0 || physical + length > ctx.blocksCount) {
          throw damage(`extent at block ${logical} points outside the file system`);
        }
        const clipped = Math.min(length, ctx.limit - logical);
        const done = builder.add(logical, physical, clipped);
        if (done !== undefined) yield done;
      } else {
        const child = view.getUint16(at + 8, true) * 2 ** 32 + view.getUint32(at + 4, true);
        if (child === 0 || child >= ctx.blocksCount) {
          throw damage(`extent index points outside the file system (block ${child})`);
        }
        if (visited.has(child)) throw damage(`extent tree loops at block ${child}`);
        visited.add(child);
        yield* walk(await ctx.readBlock(child), nodeDepth - 1);
      }
    }
  }

  yield* walk(root, undefined);
  const last = builder.finish();
  if (last !== undefined) yield last;
}
