/**
 * Events emitted by {@link TarStream} for each member of an inner tar archive.
 *
 * A member yields one `entry` event, then zero or more `data` events, then one `end` event.
 * Sparse maps are already resolved: a `data` event carries the logical offset inside the
 * member's file, so a writer only seeks and writes; everything not covered is a hole.
 *
 * @module
 */

/** What a member is, reduced to what a restore can create. */
export type TarEntryKind = "file" | "directory" | "symlink" | "hardlink" | "other";

/** One member's header after long names, PAX records and sparse headers are applied. */
export interface TarEntry {
  /** Member name as stored (from `L`, PAX `path`, `GNU.sparse.name` or the header), not normalised. */
  name: string;
  /** What kind of member this is. */
  kind: TarEntryKind;
  /** The raw typeflag character (`"0"`, `"S"`, `"5"`, ...). */
  typeflag: string;
  /** Permission and type bits from the header. */
  mode: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Link target for symlinks and hard links, otherwise `""`. */
  linkname: string;
  /** Logical size of the restored file in bytes (`realsize` for sparse members). */
  size: number;
  /** True when the member was stored sparse (only `data` ranges are non-zero). */
  sparse: boolean;
}

/** A member's header: starts a member. */
export interface TarEntryEvent {
  type: "entry";
  entry: TarEntry;
}

/** Bytes of the current member at `offset` within its logical file. */
export interface TarDataEvent {
  type: "data";
  /** Offset inside the member's logical file. */
  offset: number;
  /** The bytes; owned by the receiver (never reused by the parser). */
  bytes: Uint8Array;
}

/** The current member is complete. */
export interface TarEndEvent {
  type: "end";
}

/** Everything {@link TarStream} emits. */
export type TarEvent = TarEntryEvent | TarDataEvent | TarEndEvent;
