/**
 * The outer archive: the backup's files one after another (name, size, bytes), read from the
 * backup file or stream, or from a directory the user already untarred.
 *
 * ```ts
 * for await (const entry of readOuterArchive(file)) console.log(entry.name, entry.size);
 * ```
 *
 * @module
 */

export { DEFAULT_MAX_ENTRY_SIZE, readFull, readOuterArchive } from "./tar_reader.ts";
export type { ByteReader, OuterArchiveOptions, OuterEntry } from "./tar_reader.ts";
export { orderBackupFiles, readBackupDirectory } from "./directory.ts";
export {
  type ChunkEntryName,
  chunkEntryName,
  type ChunkName,
  parseChunkEntry,
  parseChunkName,
} from "./chunk_name.ts";
