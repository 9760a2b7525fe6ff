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

/** What walking one tree needs to carry from node to node. */
interface Walk {
  ctx: RunContext;
  builder: RunBuilder;
  /** The logical block the next extent may start at (extents are in order). */
  next: number;
}

function damage(ctx: RunContext, what: string): ImageDamage {
  return new ImageDamage({ reason: "damaged", detail: `inode ${ctx.inode}: ${what}` });
}

/** Checks a node's header; returns its view, entry count and depth. */
function header(
  node: Uint8Array,
  depth: number | undefined,
  ctx: RunContext,
): { view: DataView; entries: number; nodeDepth: number } {
  const view = new DataView(node.buffer, node.byteOffset, node.byteLength);
  if (view.getUint16(0, true) !== EXTENT_MAGIC) {
    throw damage(ctx, "extent node has no magic number");
  }
  const entries = view.getUint16(2, true);
  const max = view.getUint16(4, true);
  const nodeDepth = view.getUint16(6, true);
  if (entries > max || 12 + max * 12 > node.length) throw damage(ctx, "extent node is overfull");
  if (nodeDepth > MAX_DEPTH || (depth !== undefined && nodeDepth !== depth)) {
    throw damage(ctx, `extent node has depth ${nodeDepth}, expected ${depth ?? `<= ${MAX_DEPTH}`}`);
  }
  return { view, entries, nodeDepth };
}

/**
 * Takes leaf entry `i` of a node: returns a finished run, `undefined` when none is finished,
 * or `"end"` when the entry lies past the file's size (the rest of the tree is not needed).
 */
function leafEntry(view: DataView, i: number, walk: Walk): Run | undefined | "end" {
  const { ctx } = walk;
  const at = 12 + i * 12;
  const logical = view.getUint32(at, true);
  if (logical >= ctx.limit) return "end";
  let length = view.getUint16(at + 4, true);
  const uninit = length > INIT_MAX_LEN;
  if (uninit) length -= INIT_MAX_LEN;
  const physical = view.getUint16(at + 6, true) * 2 ** 32 + view.getUint32(at + 8, true);
  if (logical < walk.next) {
    throw damage(ctx, `extents overlap or are out of order at block ${logical}`);
  }
  if (length === 0) return undefined;
  walk.next = logical + length;
  if (uninit) return undefined;
  if (physical === 0 || physical + length > ctx.blocksCount) {
    throw damage(ctx, `extent at block ${logical} points outside the file system`);
  }
  return walk.builder.add(logical, physical, Math.min(length, ctx.limit - logical));
}

/**
 * The runs of a file whose whole extent tree is the root in `i_block` (depth 0, at most four
 * extents: nearly every small file), checked as {@link extentRuns} checks them but without a
 * single await; `undefined` when the tree is deeper.
 *
 * @throws {ImageDamage} As {@link extentRuns}.
 */
export function inodeExtentRuns(root: Uint8Array, ctx: RunContext): Run[] | undefined {
  const { view, entries, nodeDepth } = header(root, undefined, ctx);
  if (nodeDepth !== 0) return undefined;
  const walk: Walk = { ctx, builder: new RunBuilder(), next: 0 };
  const runs: Run[] = [];
  for (let i = 0; i < entries; i++) {
    const done = leafEntry(view, i, walk);
    if (done === "end") break;
    if (done !== undefined) runs.push(done);
  }
  const last = walk.builder.finish();
  if (last !== undefined) runs.push(last);
  return runs;
}

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
  const state: Walk = { ctx, builder: new RunBuilder(), next: 0 };

  async function* walk(node: Uint8Array, depth: number | undefined): AsyncGenerator<Run> {
    const { view, entries, nodeDepth } = header(node, depth, ctx);
    for (let i = 0; i < entries; i++) {
      if (nodeDepth === 0) {
        const done = leafEntry(view, i, state);
        if (done === "end") return;
        if (done !== undefined) yield done;
      } else {
        const at = 12 + i * 12;
        if (view.getUint32(at, true) >= ctx.limit) return;
        const child = view.getUint16(at + 8, true) * 2 ** 32 + view.getUint32(at + 4, true);
        if (child === 0 || child >= ctx.blocksCount) {
          throw damage(ctx, `extent index points outside the file system (block ${child})`);
        }
        if (visited.has(child)) throw damage(ctx, `extent tree loops at block ${child}`);
        visited.add(child);
        yield* walk(await ctx.readBlock(child), nodeDepth - 1);
      }
    }
  }

  yield* walk(root, undefined);
  const last = state.builder.finish();
  if (last !== undefined) yield last;
}
