/**
 * A read-only ext2/3/4 reader: opens a VM image (or a partition in it) without root and
 * without mounting, and reads directories, files (holes kept), symlinks and metadata.
 * Damaged or hostile images raise {@link ImageDamage}; nothing is ever written to the image.
 *
 * @example
 * ```ts
 * const { fs, close } = await openFileSystem("private.img");
 * const found = await fs.lookup("/home/user/notes.txt");
 * if ("inode" in found) for await (const piece of fs.chunks(found.inode)) console.log(piece.offset);
 * close();
 * ```
 *
 * @module
 */

export { ImageDamage, ImageUnsupported } from "./damage.ts";
export { type DirEntry, isDotName } from "./directory.ts";
export { type DataPiece, ExtFileSystem } from "./filesystem.ts";
export { type ByteSource, FileSource, MemorySource, SliceSource } from "./image.ts";
export { type Inode, type InodeKind, ROOT_INODE } from "./inode.ts";
export { type OpenedImage, openFileSystem, openImage, type PartitionInfo } from "./open.ts";
export { type Partition, readPartitionTable } from "./partition.ts";
export type { Superblock } from "./superblock.ts";
