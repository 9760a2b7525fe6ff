/**
 * A seeded mutation fuzzer for the ext reader: small real images (made by mke2fs -d) with a few
 * bytes changed, read completely through the same walk `files get` uses. Every case must end
 * in a clean {@link RecoverError} or notices, within a time limit; anything else is a bug.
 *
 * @module
 */

import { join } from "node:path";
import { type GetSummary, walkTree } from "../../lib/commands/files.ts";
import { RecoverError } from "../../lib/errors.ts";
import { ExtFileSystem, MemorySource } from "../../lib/ext/mod.ts";
import { seededBytes, writeSparseFile } from "../support/vm_tree.ts";
import { run, runText } from "../support/_run.ts";
import { makeImage } from "./_images.ts";

/** The mke2fs variants fuzzed: extents (depth 1 for the fragmented file), block maps, inline. */
export const FUZZ_VARIANTS: Record<string, string[]> = {
  "ext4": ["-t", "ext4", "-b", "1024"],
  "ext2": ["-t", "ext2", "-b", "1024"],
  "ext4 inline_data": ["-t", "ext4", "-b", "1024", "-O", "inline_data"],
};

/** Builds the small tree the fuzzed images hold and returns the images' bytes by variant. */
export async function fuzzImages(work: string): Promise<Map<string, Uint8Array>> {
  const tree = join(work, "tree");
  const home = join(tree, "home", "user");
  await Deno.mkdir(join(home, "sub", "deeper"), { recursive: true });
  await Deno.writeTextFile(join(home, "hello.txt"), "hello\n");
  await Deno.writeFile(join(home, "sub", "twenty-k.bin"), seededBytes(20_000, 3));
  await Deno.writeFile(join(home, "sub", "deeper", "tiny"), seededBytes(40, 4));
  await Deno.link(join(home, "hello.txt"), join(home, "sub", "hard.txt"));
  await Deno.symlink("hello.txt", join(home, "fast-link"));
  await Deno.symlink(`${"x/".repeat(40)}target`, join(home, "slow-link"));
  const islands: Array<[number, Uint8Array]> = [];
  for (let i = 0; i < 8; i++) islands.push([i * 8192, seededBytes(1024, 10 + i)]);
  await writeSparseFile(join(home, "fragmented.bin"), 70_000, islands);
  const images = new Map<string, Uint8Array>();
  for (const [name, options] of Object.entries(FUZZ_VARIANTS)) {
    const path = join(work, "fuzz.img");
    await makeImage(path, tree, 1024 * 1024, options);
    images.set(name, await Deno.readFile(path));
  }
  // A journal that needs recovery: one committed transaction rewriting hello.txt's block.
  const path = join(work, "journal.img");
  await makeImage(path, tree, 3 * 1024 * 1024, ["-t", "ext4", "-b", "1024", "-J", "size=1"]);
  const block = (await runText("debugfs", ["-R", "blocks /home/user/hello.txt", path])).trim();
  await Deno.writeFile(join(work, "new"), new Uint8Array(1024).fill(0x41));
  await Deno.writeTextFile(join(work, "cmds"), `jo\njw -b ${block} ${join(work, "new")}\njc\n`);
  await run("debugfs", ["-w", "-f", join(work, "cmds"), path]);
  images.set("ext4 journal needing recovery", await Deno.readFile(path));
  return images;
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0, 1, 2, 11, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 0xf30a];

/**
 * A copy of `image` with 1-6 mutations chosen by `seed`: mostly inside the non-zero (metadata
 * and data) 16-byte pieces, as random bytes, bit flips or interesting 16/32-bit values.
 */
export function mutate(image: Uint8Array, used: number[], seed: number): Uint8Array {
  const random = prng(seed);
  const bytes = image.slice();
  const view = new DataView(bytes.buffer);
  const count = 1 + Math.floor(random() * 6);
  for (let i = 0; i < count; i++) {
    const at = random() < 0.85
      ? used[Math.floor(random() * used.length)]! + Math.floor(random() * 16)
      : Math.floor(random() * bytes.length);
    const kind = random();
    if (kind < 0.35) bytes[at] = Math.floor(random() * 256);
    else if (kind < 0.6) bytes[at] = bytes[at]! ^ (1 << Math.floor(random() * 8));
    else {
      const value = INTERESTING[Math.floor(random() * INTERESTING.length)]!;
      const aligned = at & ~3;
      if (aligned + 4 > bytes.length) continue;
      if (random() < 0.5) view.setUint16(aligned, value & 0xffff, true);
      else view.setUint32(aligned, value >>> 0, true);
    }
  }
  return bytes;
}

/** Offsets of the 16-byte pieces of `image` that are not all zero. */
export function usedPieces(image: Uint8Array): number[] {
  const used: number[] = [];
  for (let at = 0; at + 16 <= image.length; at += 16) {
    if (image.subarray(at, at + 16).some((b) => b !== 0)) used.push(at);
  }
  return used;
}

/** What one case did. */
export interface CaseResult {
  outcome: "read" | "refused";
  notices: number;
  dataBytes: number;
}

/** Cases read so far: every other one reads through a `DataTarget`. */
let calls = 0;

/**
 * Reads everything in `bytes` the way `files get /` would (plus a lookup), counting data.
 *
 * @throws Anything that is not a RecoverError: that is a bug the fuzzer found.
 */
export async function readEverything(bytes: Uint8Array): Promise<CaseResult> {
  let notices = 0;
  let dataBytes = 0;
  try {
    const fs = await ExtFileSystem.open(new MemorySource(bytes));
    await fs.lookup("/home/user/sub/deeper/tiny");
    const summary: GetSummary = { files: 0, bytes: 0, skipped: 0, damaged: 0, existing: 0 };
    const reporter = { info() {}, warn: () => void notices++ };
    const root = await fs.root();
    // Every other case as for `files get`'s write worker: pieces read straight into the
    // writer's buffer (`DataTarget`); the others through the reader's own buffers.
    const buffer = new Uint8Array(64 * 1024);
    const target = (calls++ & 1) === 0
      ? undefined
      : (_offset: number, length: number) =>
        length <= buffer.length ? buffer.subarray(0, length) : undefined;
    await walkTree(
      fs,
      [{ inode: root, out: "", shown: "/" }],
      reporter,
      summary,
      (event) => {
        if (event.type === "data") dataBytes += event.bytes.length;
        return Promise.resolve();
      },
      undefined,
      target,
    );
    return { outcome: "read", notices, dataBytes };
  } catch (error) {
    if (error instanceof RecoverError) return { outcome: "refused", notices, dataBytes };
    throw error;
  }
}

/**
 * Runs `cases` cases per image from `firstSeed` on; each must finish within `caseMs`.
 *
 * @throws {Error} Naming the variant and seed of the first case that failed.
 */
export async function fuzz(
  images: Map<string, Uint8Array>,
  firstSeed: number,
  cases: number,
  caseMs = 10_000,
): Promise<{ read: number; refused: number; maxDataBytes: number }> {
  const totals = { read: 0, refused: 0, maxDataBytes: 0 };
  for (const [variant, image] of images) {
    const used = usedPieces(image);
    for (let seed = firstSeed; seed < firstSeed + cases; seed++) {
      const mutated = mutate(image, used, seed);
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const result = await Promise.race([
          readEverything(mutated),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`took over ${caseMs} ms`)), caseMs);
          }),
        ]);
        totals[result.outcome]++;
        totals.maxDataBytes = Math.max(totals.maxDataBytes, result.dataBytes);
      } catch (error) {
        throw new Error(
          `fuzz case ${variant} seed ${seed} failed: ${(error as Error).stack ?? error}`,
        );
      } finally {
        clearTimeout(timer);
      }
    }
  }
  return totals;
}
