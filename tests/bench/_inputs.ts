/**
 * The benchmark's backups, built with the real tools by the fixture builder the way Qubes
 * built them: format 2 as the emergency page assumes (each 102 400 000-byte tar volume gzipped,
 * then `openssl enc`), format 3 (one `tar | gzip | openssl enc` stream cut in 100 MiB chunks),
 * format 4 (`tar | gzip` cut in 100 MiB chunks, each `scrypt enc` at scrypt's default cost).
 *
 * @module
 */

import { buildBackup, type FixtureSpec } from "../support/backup_builder.ts";
import { makeSourceImage, type SourceImage } from "./_image.ts";

/** The passphrase of every benchmark backup (no spaces: the native v4 script splits lines). */
export const PASSPHRASE = "bench-Passphrase-2013";

/** How big the pieces of a backup are. */
export interface Geometry {
  /** v2 `--tape-length` in KiB (Qubes: 100000). */
  volumeKiB: number;
  /** v3/v4 chunk bytes (Qubes: 100 MiB). */
  chunkBytes: number;
  /** v4 `scrypt enc --logN`; undefined: scrypt's default cost (`-t 5`), as Qubes ran it. */
  scryptLogN: number | undefined;
}

/** Qubes' real sizes and costs. */
export const QUBES_GEOMETRY: Geometry = {
  volumeKiB: 100000,
  chunkBytes: 100 * 1024 * 1024,
  scryptLogN: undefined,
};

/** One benchmark input: a backup of one AppVM whose only file is the source image. */
export interface BenchInput {
  format: 2 | 3 | 4;
  image: SourceImage;
  backup: string;
  backupBytes: number;
  /** The item's path inside the backup, e.g. `vm5/private.img`. */
  item: string;
  /** Outer entries of the item (its chunks). */
  chunks: number;
  buildSeconds: number;
}

const VM = { name: "work", qid: 5, kind: "app" } as const;

/** Writes (once per size) the source image `<root>/src-<size>/private.img`. */
export async function sourceImage(root: string, size: number): Promise<SourceImage> {
  const dir = `${root}/src-${size}`;
  const path = `${dir}/private.img`;
  try {
    const stat = await Deno.stat(path);
    return { path, size: stat.size, dataBytes: Math.round(size * 0.6) };
  } catch {
    await Deno.mkdir(dir, { recursive: true });
    return await makeSourceImage(path, size);
  }
}

/** Builds the backup of `format` holding `image` in a new folder under `root`. */
export async function buildInput(
  root: string,
  format: 2 | 3 | 4,
  image: SourceImage,
  geometry: Geometry,
): Promise<BenchInput> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: `backup-v${format}-` });
  const vmDir = image.path.slice(0, image.path.lastIndexOf("/"));
  const spec: FixtureSpec = {
    format,
    passphrase: PASSPHRASE,
    encrypted: true,
    compressed: true,
    vms: [{ ...VM, dir: vmDir }],
    ...(format === 2 ? { v2Variant: "emergency-doc", volumeKiB: geometry.volumeKiB } : {}),
    ...(format !== 2 ? { chunkBytes: geometry.chunkBytes } : {}),
    ...(format === 4 && geometry.scryptLogN !== undefined
      ? { scryptLogN: geometry.scryptLogN }
      : {}),
  };
  const start = performance.now();
  const built = await buildBackup(spec, dir);
  const buildSeconds = (performance.now() - start) / 1000;
  const item = built.items.find((i) => i.owner === VM.name && i.base === "private.img");
  if (item === undefined) throw new Error(`Cannot find private.img in the v${format} backup`);
  return {
    format,
    image,
    backup: built.path,
    backupBytes: (await Deno.stat(built.path)).size,
    item: `${item.subdir}${item.base}`,
    chunks: item.chunks.length,
    buildSeconds,
  };
}
