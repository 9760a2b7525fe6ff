/**
 * Opening an image file: a bare file system, or a disk with a partition table.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { ImageDamage } from "./damage.ts";
import { ExtFileSystem } from "./filesystem.ts";
import { type ByteSource, FileSource, SliceSource } from "./image.ts";
import { type Partition, type PartitionTable, readPartitionTable } from "./partition.ts";
import { hasExtMagic } from "./superblock.ts";

/** A partition of a disk image, and whether it holds an ext file system. */
export interface PartitionInfo extends Partition {
  ext: boolean;
}

/** An opened image: the file system, or (no partition chosen) the partitions to choose from. */
export type OpenedImage =
  | { kind: "fs"; fs: ExtFileSystem; partition?: PartitionInfo; close(): void }
  | {
    kind: "partitions";
    scheme: PartitionTable["scheme"];
    partitions: PartitionInfo[];
    close(): void;
  };

/**
 * Opens `path`: the file system at byte 0, or the one in partition `partition`; with a
 * partition table and no choice, the list of partitions (`kind: "partitions"`).
 *
 * @throws {ImageDamage | ImageUnsupported} When the file system cannot be read.
 * @throws {UsageError} When `partition` does not exist or the image has no partition table.
 */
export async function openImage(path: string, partition?: number): Promise<OpenedImage> {
  const file = await FileSource.open(path);
  const close = () => file.close();
  try {
    // A file system at byte 0 is used as it is, whatever sector 0 still holds (a protective
    // MBR left from an earlier GPT, as `mount` ignores it): its table is not even read.
    const bare = partition === undefined && await hasExtMagic(file);
    const table = bare ? undefined : await readPartitionTable(file);
    if (partition === undefined && table === undefined) {
      return { kind: "fs", fs: await ExtFileSystem.open(file), close };
    }
    if (table === undefined) {
      throw new UsageError({
        reason: "usage",
        action: "use --partition with",
        subject: { kind: "file", name: path },
        detail: "it has no partition table",
      });
    }
    const partitions: PartitionInfo[] = [];
    for (const p of table.partitions) partitions.push({ ...p, ext: await holdsExt(file, p) });
    if (partition === undefined) {
      return { kind: "partitions", scheme: table.scheme, partitions, close };
    }
    const chosen = partitions.find((p) => p.number === partition);
    if (chosen === undefined) {
      throw new UsageError({
        reason: "not-found",
        action: `open partition ${partition} of`,
        subject: { kind: "file", name: path },
        detail: `it has partitions ${partitions.map((p) => p.number).join(", ")}`,
      });
    }
    const fs = await ExtFileSystem.open(new SliceSource(file, chosen.start, chosen.size));
    return { kind: "fs", fs, partition: chosen, close };
  } catch (error) {
    close();
    throw error;
  }
}

/**
 * Opens `path` at its file system: byte 0, the chosen partition, or the only partition that
 * holds an ext file system.
 *
 * @throws {UsageError} When the image has several (or no) ext partitions and none was chosen.
 */
export async function openFileSystem(
  path: string,
  partition?: number,
): Promise<{ fs: ExtFileSystem; partition?: PartitionInfo; close(): void }> {
  const opened = await openImage(path, partition);
  if (opened.kind === "fs") return opened;
  const ext = opened.partitions.filter((p) => p.ext);
  if (ext.length === 1) {
    try {
      return await openFileSystem(path, ext[0]!.number);
    } finally {
      opened.close();
    }
  }
  opened.close();
  throw new UsageError({
    reason: "usage",
    action: "choose a partition of",
    subject: { kind: "file", name: path },
    detail: `${
      ext.length === 0
        ? "none holds an ext2/3/4 file system"
        : `partitions ${
          ext.map((p) => p.number).join(", ")
        } hold ext file systems; pick one with --partition N`
    }`,
  });
}

async function holdsExt(file: ByteSource, p: Partition): Promise<boolean> {
  try {
    return await hasExtMagic(new SliceSource(file, p.start, p.size));
  } catch (error) {
    if (error instanceof ImageDamage) return false;
    throw error;
  }
}
