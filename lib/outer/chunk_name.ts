/**
 * Names of chunks in the outer archive: `<subdir><basename>.<NNN>` (formats 2, 3) or
 * `<subdir><basename>.<NNN>.enc` (format 4), and their `.hmac` companions (spec 2.3).
 *
 * @module
 */

/** A chunk name split into the item it belongs to and its index. */
export interface ChunkName {
  /** The item: `vm5/private.img`, `vm3/.` (a whole template directory), `qubes.xml`. */
  item: string;
  /** Chunk number: 0, 1, ... 999, 1000, ... */
  index: number;
}

/**
 * Splits a chunk name at its last dot (never an extension helper: `vm3/..000` is item `vm3/.`).
 *
 * @param name Outer entry name without `.hmac`; format 4 names end in `.enc`.
 * @param encSuffix Whether the name must end in `.enc` (format 4).
 * @returns The item and index, or undefined when the name is not a chunk name.
 *
 * @example
 * ```ts
 * parseChunkName("vm3/..1000", false); // { item: "vm3/.", index: 1000 }
 * ```
 */
export function parseChunkName(name: string, encSuffix: boolean): ChunkName | undefined {
  let base = name;
  if (encSuffix) {
    if (!base.endsWith(".enc")) return undefined;
    base = base.slice(0, -4);
  }
  const dot = base.lastIndexOf(".");
  if (dot <= 0) return undefined;
  const digits = base.slice(dot + 1);
  if (!/^[0-9]{3,9}$/.test(digits)) return undefined;
  const index = Number(digits);
  // Qubes wrote "%03d": 4+ digits never have a leading zero.
  if (digits.length > 3 && digits.startsWith("0")) return undefined;
  return { item: base.slice(0, dot), index };
}

/** An outer entry name read as a chunk of an item or (formats 2 and 3) as a chunk's `.hmac`. */
export interface ChunkEntryName extends ChunkName {
  /** Whether the entry is the chunk's `.hmac` rather than the chunk. */
  hmac: boolean;
}

/**
 * Reads an outer entry name as a chunk or, in formats 2 and 3, its `.hmac` companion.
 *
 * @param name Outer entry name.
 * @param encSuffix Whether chunk names end in `.enc` (format 4, where there is no `.hmac`).
 * @returns The item, index and which of the two the entry is; undefined for any other name.
 *
 * @example
 * ```ts
 * parseChunkEntry("vm5/private.img.003.hmac", false); // { item: "vm5/private.img", index: 3, hmac: true }
 * ```
 */
export function parseChunkEntry(name: string, encSuffix: boolean): ChunkEntryName | undefined {
  const hmac = !encSuffix && name.endsWith(".hmac");
  const parsed = parseChunkName(hmac ? name.slice(0, -5) : name, encSuffix);
  return parsed && { ...parsed, hmac };
}

/**
 * The outer entry name of an item's chunk, as Qubes wrote it (`%03d`).
 *
 * @example
 * ```ts
 * chunkEntryName("vm5/private.img", 7, false); // "vm5/private.img.007"
 * ```
 */
export function chunkEntryName(item: string, index: number, encSuffix: boolean): string {
  return `${item}.${String(index).padStart(3, "0")}${encSuffix ? ".enc" : ""}`;
}
