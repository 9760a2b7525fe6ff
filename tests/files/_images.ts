/**
 * Test images for the ext reader, made with the real e2fsprogs (`mke2fs -d`), and ways to
 * compare what `files get` writes with what `debugfs rdump` writes.
 *
 * @module
 */

import { join } from "node:path";
import { run, runText } from "../support/_run.ts";
import { sha256File } from "../support/ext4.ts";
import { makeVmTree, seededBytes, setTreeTimes, writeSparseFile } from "../support/vm_tree.ts";

const GiB = 1024 ** 3;
/** The sparse file bigger than 4 GiB in every rich tree: `/big/sparse-5g.bin`. */
export const HUGE_SPARSE = {
  size: 5 * GiB + 123,
  runs: [[0, 4096], [4.5 * GiB, 8192], [5 * GiB, 123]],
};
/** A symlink target too long for the inode (a "slow" symlink). */
export const SLOW_TARGET = `../${"very-long-directory-name/".repeat(8)}target.txt`;

/**
 * The tree every variant image is made from: `home/user` is {@link makeVmTree} plus a slow
 * and a dangling symlink, a FIFO, odd modes and a 3 MB file; `big/sparse-5g.bin` is sparse,
 * larger than 4 GiB, with data at 0, 4.5 GiB and its last 123 bytes; `usrlocal`, `config` and
 * an empty directory are there as in a Qubes private.img.
 */
export async function makeRichTree(dir: string): Promise<void> {
  const home = join(dir, "home", "user");
  await makeVmTree(home, 7);
  await Deno.mkdir(join(dir, "usrlocal", "bin"), { recursive: true });
  await Deno.mkdir(join(dir, "config"), { recursive: true });
  await Deno.mkdir(join(dir, "empty-dir"), { recursive: true });
  await Deno.writeTextFile(join(dir, "config", "rc.local"), "#!/bin/sh\n");
  await Deno.chmod(join(dir, "config", "rc.local"), 0o750);
  await Deno.writeTextFile(join(home, "secret.txt"), "only mine\n");
  await Deno.chmod(join(home, "secret.txt"), 0o600);
  await Deno.writeFile(join(home, "data", "three-mb.bin"), seededBytes(3_000_000, 99));
  await Deno.symlink(SLOW_TARGET, join(home, "slow-link"));
  await Deno.symlink("does/not/exist", join(home, "dangling"));
  await Deno.mkdir(join(home, "private-dir"), { mode: 0o700 });
  await Deno.writeTextFile(join(home, "private-dir", "x.txt"), "x\n");
  await run("mkfifo", [join(home, "a-fifo")]);
  await Deno.mkdir(join(dir, "big"));
  const runs: Array<[number, Uint8Array]> = HUGE_SPARSE.runs.map(([at, n], i) => [
    at!,
    seededBytes(n!, 500 + i),
  ]);
  await writeSparseFile(join(dir, "big", "sparse-5g.bin"), HUGE_SPARSE.size, runs);
  await setTreeTimes(dir);
  // A few entries with times of their own (after setTreeTimes, which sets one time for all).
  await Deno.utime(join(home, "secret.txt"), 1_000_000_000, 1_000_000_000);
  await Deno.utime(join(dir, "usrlocal"), 1_234_567_890, 1_234_567_890);
}

/** A directory `many` holding `count` small files `f00000` ... (their names as content). */
export async function makeBigDirectoryTree(dir: string, count: number): Promise<void> {
  await Deno.mkdir(join(dir, "many"), { recursive: true });
  for (let i = 0; i < count; i++) {
    const name = `f${String(i).padStart(5, "0")}`;
    await Deno.writeTextFile(join(dir, "many", name), `${name}\n`);
  }
}

/** mke2fs options of the image variants the reader is tested on. */
export const VARIANTS: Record<string, string[]> = {
  "ext4": ["-t", "ext4"],
  "ext4 -b 1024": ["-t", "ext4", "-b", "1024"],
  "ext2": ["-t", "ext2"],
  "ext3 -b 1024": ["-t", "ext3", "-b", "1024"],
  "ext4 -O ^extent,^64bit -b 1024": ["-t", "ext4", "-O", "^extent,^64bit", "-b", "1024"],
  "ext4 -O ^64bit": ["-t", "ext4", "-O", "^64bit"],
  "ext4 -O inline_data": ["-t", "ext4", "-O", "inline_data"],
  "ext4 -O ^dir_index": ["-t", "ext4", "-O", "^dir_index"],
  "ext4 -O meta_bg": ["-t", "ext4", "-O", "meta_bg,^resize_inode"],
  "ext4 -O sparse_super2 -I 128": ["-t", "ext4", "-O", "sparse_super2", "-I", "128"],
};

/** Makes an image of `sizeBytes` at `path` from `source` with `mke2fs -d` and `options`. */
export async function makeImage(
  path: string,
  source: string,
  sizeBytes: number,
  options: string[],
): Promise<void> {
  await Deno.writeFile(path, new Uint8Array(0));
  await Deno.truncate(path, sizeBytes);
  await run("mke2fs", ["-q", "-F", ...options, "-d", source, path], {
    env: { E2FSPROGS_FAKE_TIME: "1404216000", MKE2FS_CONFIG: "/etc/mke2fs.conf" },
  });
}

/**
 * A disk image of `diskBytes` with the partition `table` (sfdisk's input) and an ext4 file
 * system of `fsSize` (mke2fs's size, e.g. `20M`) made from `src`, written at sector `extStart`.
 */
export async function makePartitionedDisk(
  path: string,
  table: string,
  extStart: number,
  src: string,
  { diskBytes = 40 * 1024 * 1024, fsSize = "20M" } = {},
): Promise<void> {
  await Deno.writeFile(path, new Uint8Array(0));
  await Deno.truncate(path, diskBytes);
  await run("sfdisk", ["-q", path], { stdinBytes: new TextEncoder().encode(table) });
  await run("mke2fs", [
    "-q",
    "-F",
    "-t",
    "ext4",
    "-d",
    src,
    "-E",
    `offset=${extStart * 512}`,
    path,
    fsSize,
  ]);
}

/** `debugfs -R 'rdump <inside> <out>'` (out must exist). */
export async function debugfsRdump(image: string, inside: string, out: string): Promise<void> {
  await run("debugfs", ["-R", `rdump "${inside}" ${out}`, image]);
}

/** One line of `debugfs -R 'ls -l'`. */
export interface DebugfsLsEntry {
  inode: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  name: string;
}

/** `debugfs -R 'ls -l <dir>'`, parsed, without "." and "..". */
export async function debugfsLs(image: string, dir: string): Promise<DebugfsLsEntry[]> {
  const text = await runText("debugfs", ["-R", `ls -l "${dir}"`, image]);
  const entries: DebugfsLsEntry[] = [];
  for (const line of text.split("\n")) {
    const m = line.match(
      /^\s*(\d+)\s+([0-7]+)\s+\(\d+\)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s(.*)$/,
    );
    if (m === null) continue;
    const name = unescapeDebugfs(m[6]!);
    if (name === "." || name === "..") continue;
    entries.push({
      inode: Number(m[1]),
      mode: parseInt(m[2]!, 8),
      uid: Number(m[3]),
      gid: Number(m[4]),
      size: Number(m[5]),
      name,
    });
  }
  return entries;
}

/**
 * Describes every entry below `dir`: kind, permission bits, modification time (files and
 * directories), size and sha256 of files, symlink targets.
 */
export async function describeFull(
  dir: string,
  only?: string[],
): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const walk = async (d: string, rel: string): Promise<void> => {
    const names: string[] = [];
    for await (const e of Deno.readDir(d)) {
      if (rel === "" && only !== undefined && !only.includes(e.name)) continue;
      names.push(e.name);
    }
    names.sort();
    for (const name of names) {
      const path = join(d, name);
      const key = rel ? `${rel}/${name}` : name;
      const info = await Deno.lstat(path);
      const mode = (info.mode! & 0o777).toString(8);
      const mtime = Math.floor(info.mtime!.getTime() / 1000);
      if (info.isSymlink) result.set(key, `link ${await Deno.readLink(path)}`);
      else if (info.isDirectory) {
        result.set(key, `dir ${mode} ${mtime}`);
        await walk(path, key);
      } else if (info.isFile) {
        result.set(key, `file ${mode} ${mtime} ${info.size} ${await sha256File(path)}`);
      } else result.set(key, "other");
    }
  };
  await walk(dir, "");
  return result;
}

/** debugfs prints bytes outside ASCII as `\xNN`: back to the UTF-8 name. */
function unescapeDebugfs(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const m = text.slice(i).match(/^\\x([0-9a-f]{2})/i);
    if (m !== null) {
      bytes.push(parseInt(m[1]!, 16));
      i += 3;
    } else bytes.push(...new TextEncoder().encode(text[i]!));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * What the copy of `tops` from an image made of `source` must look like: {@link describeFull}
 * of the source below those top-level folders, without FIFOs (which are not copied).
 */
export async function expectedFromSource(
  source: string,
  tops: string[],
): Promise<Map<string, string>> {
  const all = await describeFull(source, tops);
  const result = new Map<string, string>();
  for (const [key, value] of all) {
    if (value === "other") continue;
    if (tops.some((top) => key === top || key.startsWith(`${top}/`))) result.set(key, value);
  }
  return result;
}
