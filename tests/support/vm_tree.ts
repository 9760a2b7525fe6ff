/**
 * Known directory trees to back up: the kinds of files a VM directory or a dom0 home holds, and
 * a way to describe a tree so a restored copy can be compared with its source.
 *
 * @module
 */

import { join } from "node:path";
import { sha256File } from "./ext4.ts";
import { xorshift32 } from "./xorshift.ts";

/** The fixed modification time given to every entry of a made tree (2014-07-01T12:00:00Z). */
export const TREE_MTIME = new Date("2014-07-01T12:00:00Z");

/** Logical size of the sparse file `disk/sparse.img` that {@link makeVmTree} writes. */
export const SPARSE_FILE_SIZE = 24 * 1024 * 1024;

/** A long (120-character) file name used by {@link makeVmTree}. */
export const LONG_NAME = `${"long-name-".repeat(11)}0123456789.txt`;

/**
 * Returns `length` reproducible pseudo-random bytes for `seed` (xorshift32 per 32-bit word).
 *
 * @example
 * ```ts
 * const a = seededBytes(1000, 7); // same bytes on every run
 * ```
 */
export function seededBytes(length: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  const next = xorshift32(seed ^ 0x9e3779b9);
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer, 0, length);
}

async function writeAt(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true });
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
  } finally {
    file.close();
  }
}

/**
 * Writes a sparse file of `size` logical bytes at `path` whose data is `runs` (offset, bytes);
 * everything else is a hole.
 */
export async function writeSparseFile(
  path: string,
  size: number,
  runs: Array<[number, Uint8Array]>,
): Promise<void> {
  await Deno.writeFile(path, new Uint8Array(0));
  for (const [offset, bytes] of runs) await writeAt(path, offset, bytes);
  await Deno.truncate(path, size);
}

/**
 * Fills `dir` (created if missing) with a reproducible tree that exercises the inner tar:
 *
 * - `hello.txt` (text), `empty.txt` (0 bytes), `bin/run.sh` (mode 0755)
 * - `data/random.bin`: 300 000 seeded pseudo-random bytes
 * - `disk/sparse.img`: {@link SPARSE_FILE_SIZE} logical bytes, 40 data runs of 4 KiB..12 KiB
 *   spread over the file (more than fits one GNU sparse header, so extension blocks are
 *   needed), ending in a hole
 * - `ünïcödé/日本語.txt` and `emoji-😀.txt`: non-ASCII names
 * - `link-relative` → `hello.txt`, `data/link-up` → `../hello.txt`, `link-absolute` →
 *   `/usr/share/qubes/icons/green.png` (dangling, like a Qubes icon link)
 * - `hardlink.txt`: a hard link to `hello.txt`
 * - `a/b/c/d/e/deep.txt`: nested folders
 * - `long/<LONG_NAME>`: a name over 100 characters (GNU `L` entry)
 *
 * Every entry gets the modification time {@link TREE_MTIME}. The same `seed` gives the same
 * bytes.
 */
export async function makeVmTree(dir: string, seed = 1): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const p = (...parts: string[]) => join(dir, ...parts);
  for (const sub of ["bin", "data", "disk", "ünïcödé", "a/b/c/d/e", "long"]) {
    await Deno.mkdir(p(sub), { recursive: true });
  }
  const text = new TextEncoder();
  await Deno.writeTextFile(p("hello.txt"), `Hello from a Qubes VM (seed ${seed}).\n`);
  await Deno.writeFile(p("empty.txt"), new Uint8Array(0));
  await Deno.writeTextFile(p("bin/run.sh"), "#!/bin/sh\necho run\n");
  await Deno.chmod(p("bin/run.sh"), 0o755);
  await Deno.writeFile(p("data/random.bin"), seededBytes(300_000, seed));
  const runs: Array<[number, Uint8Array]> = [];
  for (let i = 0; i < 40; i++) {
    const length = 4096 * (1 + (i % 3));
    runs.push([i * 589_824, seededBytes(length, seed * 1000 + i)]);
  }
  await writeSparseFile(p("disk/sparse.img"), SPARSE_FILE_SIZE, runs);
  await Deno.writeFile(p("ünïcödé", "日本語.txt"), text.encode("こんにちは, Qubes\n"));
  await Deno.writeTextFile(p("emoji-😀.txt"), "smile\n");
  await Deno.symlink("hello.txt", p("link-relative"));
  await Deno.symlink("../hello.txt", p("data/link-up"));
  await Deno.symlink("/usr/share/qubes/icons/green.png", p("link-absolute"));
  await Deno.link(p("hello.txt"), p("hardlink.txt"));
  await Deno.writeTextFile(p("a/b/c/d/e/deep.txt"), "deep\n");
  await Deno.writeTextFile(p("long", LONG_NAME), "a long name\n");
  await setTreeTimes(dir);
}

/** Gives every entry below `dir` (and `dir` itself) the modification time {@link TREE_MTIME}. */
export async function setTreeTimes(dir: string): Promise<void> {
  const walk = async (d: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const e of Deno.readDir(d)) {
      const path = join(d, e.name);
      if (e.isDirectory) out.push(...await walk(path));
      out.push(path);
    }
    return out;
  };
  // A directory comes after its entries: creating them changed its time, touching them does not.
  const paths = [...await walk(dir), dir];
  for (let i = 0; i < paths.length; i += 500) {
    const out = await new Deno.Command("touch", {
      args: ["-h", "-d", TREE_MTIME.toISOString(), "--", ...paths.slice(i, i + 500)],
    }).output();
    if (!out.success) throw new Error(`Cannot set the times below "${dir}"`);
  }
}

/**
 * Describes every entry below `dir` by its path relative to `dir` (`/`-separated):
 * `"file <sha256> <size>"`, `"link <target>"`, `"dir"`, or `"other"`. Hard links appear as
 * files under each of their names.
 *
 * @example
 * ```ts
 * assertEquals(await describeTree(restored), await describeTree(source));
 * ```
 */
export async function describeTree(dir: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const walk = async (d: string, rel: string): Promise<void> => {
    const names: string[] = [];
    for await (const e of Deno.readDir(d)) names.push(e.name);
    names.sort();
    for (const name of names) {
      const path = join(d, name);
      const key = rel ? `${rel}/${name}` : name;
      const info = await Deno.lstat(path);
      if (info.isSymlink) result.set(key, `link ${await Deno.readLink(path)}`);
      else if (info.isDirectory) {
        result.set(key, "dir");
        await walk(path, key);
      } else if (info.isFile) result.set(key, `file ${await sha256File(path)} ${info.size}`);
      else result.set(key, "other");
    }
  };
  await walk(dir, "");
  return result;
}
