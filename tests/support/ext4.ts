/**
 * ext4 disk images for fixtures, made and read with e2fsprogs without root: `mkfs.ext4 -d`
 * fills an image from a directory, `debugfs rdump` copies it back out.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { run } from "./_run.ts";

/** Fixed UUID and hash seed so the same source gives the same image bytes. */
const FIXED_UUID = "6f2b5a3c-1d2e-4f50-8a9b-0c1d2e3f4a5b";
/** Fixed creation time (2014-07-01T12:00:00Z) for the same reason. */
const FIXED_TIME = "1404216000";

/**
 * Makes an ext4 image at `imagePath`: a sparse file of `sizeBytes` formatted with
 * `mkfs.ext4 -q -F -d <sourceDir> -b 4096` (plus a fixed UUID, hash seed and time, so the image
 * is reproducible). Images under about 4 MiB get no journal.
 *
 * @throws {Error} when mkfs.ext4 fails (e.g. the files do not fit).
 */
export async function makeExt4Image(
  imagePath: string,
  sourceDir: string,
  sizeBytes: number,
): Promise<void> {
  await Deno.writeFile(imagePath, new Uint8Array(0));
  await Deno.truncate(imagePath, sizeBytes);
  await run("mkfs.ext4", [
    "-q",
    "-F",
    "-d",
    sourceDir,
    "-b",
    "4096",
    "-U",
    FIXED_UUID,
    "-E",
    `hash_seed=${FIXED_UUID}`,
    imagePath,
  ], { env: { E2FSPROGS_FAKE_TIME: FIXED_TIME } });
}

/**
 * Reads every regular file inside the ext4 image at `imagePath` (with
 * `debugfs -R 'rdump / <tmp>'`, no mount) and returns its path relative to the image root
 * (`home/user/README.txt`) mapped to its sha256 in lower-case hex.
 */
export async function ext4FileHashes(imagePath: string): Promise<Map<string, string>> {
  const out = await Deno.makeTempDir({ prefix: "ext4-rdump-" });
  try {
    await run("debugfs", ["-R", `rdump / ${out}`, imagePath]);
    const result = new Map<string, string>();
    const walk = async (dir: string, rel: string): Promise<void> => {
      const names: string[] = [];
      for await (const e of Deno.readDir(dir)) names.push(e.name);
      names.sort();
      for (const name of names) {
        const path = join(dir, name);
        const key = rel ? `${rel}/${name}` : name;
        const info = await Deno.lstat(path);
        if (info.isDirectory) await walk(path, key);
        else if (info.isFile) result.set(key, await sha256File(path));
      }
    };
    await walk(out, "");
    return result;
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

/** Returns the sha256 of the file at `path` in lower-case hex, read in 1 MiB pieces. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path);
  try {
    const buffer = new Uint8Array(1 << 20);
    for (;;) {
      const n = await file.read(buffer);
      if (n === null) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    file.close();
  }
  return hash.digest("hex");
}

/** Returns the sha256 of `bytes` in lower-case hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
