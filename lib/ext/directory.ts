/**
 * Directory entries, read linearly block by block. Hashed (dir_index / htree) directories
 * need no special case: their index blocks look like blocks holding one unused entry, and the
 * root's index hides inside the ".." entry. Inline directories (inline_data) hold the parent's
 * inode number and then entries in `i_block`, continued in the `system.data` attribute.
 *
 * @module
 */

import { ImageDamage } from "./damage.ts";

/** One directory entry, raw. */
export interface DirEntry {
  /** The name's bytes (never empty; may hold anything but NUL and "/" in a sound image). */
  name: Uint8Array;
  inode: number;
  /** `file_type` byte (0 when the file system does not record it). */
  fileType: number;
}

/**
 * Parses the entries of one directory block (or inline area) and returns those in use
 * (inode != 0), "." and ".." included.
 *
 * @param hasFileType Whether the `filetype` feature is on (else the name length is 16 bits).
 * @throws {ImageDamage} When an entry's lengths do not fit the block.
 */
export function parseDirectoryBlock(
  block: Uint8Array,
  hasFileType: boolean,
  where: string,
): DirEntry[] {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const entries: DirEntry[] = [];
  let at = 0;
  while (at + 8 <= block.length) {
    const inode = view.getUint32(at, true);
    let recLen = view.getUint16(at + 4, true);
    if (block.length === 65536 && (recLen === 0 || recLen === 65535)) recLen = 65536;
    const nameLen = hasFileType ? block[at + 6]! : view.getUint16(at + 6, true);
    if (recLen < 8 || (recLen & 3) !== 0 || at + recLen > block.length) {
      throw new ImageDamage({
        reason: "damaged",
        detail: `${where}: directory entry at byte ${at} has a bad length ${recLen}`,
      });
    }
    if (inode !== 0) {
      if (nameLen === 0 || 8 + nameLen > recLen) {
        throw new ImageDamage({
          reason: "damaged",
          detail: `${where}: directory entry at byte ${at} has a bad name length`,
        });
      }
      entries.push({
        inode,
        name: block.slice(at + 8, at + 8 + nameLen),
        fileType: hasFileType ? block[at + 7]! : 0,
      });
    }
    at += recLen;
  }
  return entries;
}

/** Parses an inline directory: `i_block` (parent inode, then entries) and `system.data`. */
export function parseInlineDirectory(
  iBlock: Uint8Array,
  extra: Uint8Array | undefined,
  hasFileType: boolean,
  where: string,
): DirEntry[] {
  const parent = new DataView(iBlock.buffer, iBlock.byteOffset, 4).getUint32(0, true);
  const entries: DirEntry[] = [{ inode: parent, name: new Uint8Array([46, 46]), fileType: 2 }];
  entries.push(...parseDirectoryBlock(iBlock.subarray(4, 60), hasFileType, where));
  if (extra !== undefined && extra.length > 0) {
    entries.push(...parseDirectoryBlock(extra, hasFileType, where));
  }
  return entries;
}

/** Whether a raw name is "." or "..". */
export function isDotName(name: Uint8Array): boolean {
  return name[0] === 46 && (name.length === 1 || (name.length === 2 && name[1] === 46));
}
