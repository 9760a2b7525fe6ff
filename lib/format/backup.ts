/**
 * The contract every backup format implements: what `openBackup` hands out ({@linkcode Backup},
 * {@linkcode BackupItem}) and what a format module of the outer-archive kind (formats 2, 3, 4)
 * provides to the shared archive driver ({@linkcode FormatReader}).
 *
 * To add a format (or a variant), write one module that implements {@linkcode FormatReader}
 * (see `format2.ts`, `format3.ts`, `format4.ts`; format 1 is a directory and implements
 * {@linkcode Backup} directly in `format1.ts`) and dispatch to it in `open.ts`.
 *
 * @module
 */

import type { Catalog, VmRecord } from "../catalog/mod.ts";
import { DEFAULT_MAX_XML_LENGTH } from "../catalog/mod.ts";
import type { KdfDigest } from "../crypto/mod.ts";
import type { DamagedError, IncompleteError, RecoverError } from "../errors.ts";
import type { SalvageProbe } from "../salvage/chunks.ts";
import type { WalkEvent } from "../salvage/walk.ts";
import type { Reporter } from "../reporter.ts";
import type { TarEvent, VolumeStarts } from "../tar/mod.ts";
import type { ByteReader } from "../outer/mod.ts";
import type { WrittenChunks } from "../verify/mod.ts";
import type { BackupHeader } from "./header.ts";

/** How to open a backup. */
export interface OpenOptions {
  /** Asked only when the backup needs it (format 1 does not). */
  passphrase: () => Promise<Uint8Array>;
  /** Receives notices (format found, key derivation used, skipped entries). */
  reporter?: Reporter;
  /**
   * Format 4: scrypt memory per key derivation the user allows beyond the built-in bounds, in
   * bytes (`--max-scrypt-memory`; see `scrypt_cost.ts`).
   */
  maxScryptMemory?: number;
  /**
   * Damaged metadata does not end the opening (formats 2-4), the damage is in
   * `Backup.problems` and a warning tells it: a damaged or missing `backup-header` is replaced
   * by its authenticated copy (format 4) or the format's defaults, once a chunk proves the
   * passphrase; a damaged qubes.xml leaves the catalogue empty (items keep their backup
   * paths). For `restore` and `verify`, which try every item.
   */
  tolerateDamagedMetadata?: boolean;
  /**
   * Opens a backup FILE instead of `Deno.open` (`convert` reads its new file back while it is
   * still being written: the reader waits for bytes the writer has not written yet).
   */
  openFile?: (path: string) => Promise<ByteReader & { close(): void }>;
  /**
   * Chunks of this file that its writer hashed and holds (`convert`'s read-back, formats 2
   * and 3): each is compared byte for byte with the bytes hashed, and its `.hmac` entry checked
   * against that digest, instead of being hashed again.
   */
  writtenChunks?: WrittenChunks;
}

/** An opened backup: what it is, what it holds, and its items in backup order. */
export interface Backup {
  /** Format version, 1-4. */
  readonly format: 1 | 2 | 3 | 4;
  /** The verified header; undefined for format 1 and R2-beta3 backups. */
  readonly header: BackupHeader | undefined;
  /** The key derivation that decrypted it (formats 2, 3), once the first chunk settled it. */
  readonly kdf: KdfDigest | undefined;
  /** The VMs in qubes.xml. */
  readonly catalog: Catalog;
  /** The raw qubes.xml bytes (empty when it could not be read, see `problems`). */
  readonly qubesXml: Uint8Array;
  /**
   * Damage met while opening that did not end it (`OpenOptions.tolerateDamagedMetadata`: a
   * damaged or missing `backup-header`, a damaged qubes.xml), each with the item it concerns
   * (`backup-header`, `qubes.xml`); the run tells them as problems.
   */
  readonly problems?: readonly { item: string; error: DamagedError | IncompleteError }[];
  /** The items after qubes.xml, in backup order; each must be consumed or skipped before the next. */
  items(): AsyncGenerator<BackupItem>;
  /** Releases files. */
  close(): Promise<void>;
}

/**
 * One backed-up item: a file (`vm5/private.img`), a directory (`vm3/.`), a dom0 home. Exactly
 * one of `events()`, `plainTar()` and `skip()` may be called, once.
 */
export interface BackupItem {
  /** Item name as in the chunk names. */
  readonly name: string;
  /** The VM the item belongs to, and the rest of the name after the VM's backup path. */
  readonly owner: { vm: VmRecord; rest: string } | undefined;
  /**
   * The item's inner tar members, verified and decoded. `volumes`: where the format-2 volumes
   * this item was joined from start (`convert` reading its result back), checked as format 2
   * checks them.
   */
  events(volumes?: VolumeStarts): ReadableStream<TarEvent>;
  /** Passes over the item without verifying it. */
  skip(): Promise<void>;
  /**
   * The item's inner tar stream as bytes: chunks verified and decoded, format-2 volumes joined,
   * nothing parsed (formats 2-4; `convert` passes it on). Read it instead of `events()`.
   */
  plainTar?(): ReadableStream<Uint8Array>;
  /**
   * Format 2 (`convert`): the item's volumes, chunks verified and decrypted, not decompressed
   * or joined; `gzip` tells a gzip member from a tar volume. Read it instead of `events()`.
   */
  volumes?(): AsyncIterable<{ gzip: boolean; stream: ReadableStream<Uint8Array> }>;
  /**
   * After `events()` or `plainTar()` failed: stops reading the item and passes over the rest
   * of it, so that the next item can be read (on a file by skipping, on standard input by
   * reading past). With `onProblem`, every remaining chunk is checked on its own first and
   * each damaged or missing one is told (`verify`). Absent: the item holds no outer entries
   * (format 1), nothing to pass over.
   */
  drain?(onProblem?: (error: RecoverError) => void): Promise<void>;
  /**
   * `restore --salvage`: the item's inner tar stream with every byte that did not verify as
   * zeros marked lost (see `lib/salvage/lost.ts`), instead of `events()`; undefined (and the
   * item not used) where the format does not tell lost ranges exactly.
   */
  salvageTar?(probe?: SalvageProbe): ReadableStream<Uint8Array> | undefined;
  /**
   * `restore --salvage` of a format-1 item: its members, with each one that cannot be read
   * told and passed over (`lib/salvage/walk.ts`), instead of `events()`.
   */
  salvageEvents?(): AsyncIterable<WalkEvent>;
}

/**
 * One format of the outer-archive kind (2, 3, 4): how an item's chunks become its inner tar.
 * Each implementation writes its pipeline as one chain: verified chunks -> decrypt ->
 * decompress -> inner tar bytes (-> tar events). The shared driver (`archive.ts`) walks the
 * outer entries, reads qubes.xml and hands out the items.
 */
export interface FormatReader {
  /** The format version. */
  readonly format: 2 | 3 | 4;
  /** Whether chunks are `.enc` files (format 4) rather than a chunk and its `.hmac`. */
  readonly encChunks: boolean;
  /** The item's inner tar stream as bytes; the next outer entry is its chunk 0. */
  plainTar(item: string): ReadableStream<Uint8Array>;
  /** The item's inner tar events (members checked against the item); chunk 0 is next. */
  events(item: string, volumes?: VolumeStarts): ReadableStream<TarEvent>;
  /** Format 2: see {@linkcode BackupItem.volumes}. */
  volumes?(item: string): AsyncIterable<{ gzip: boolean; stream: ReadableStream<Uint8Array> }>;
  /**
   * Checks the chunks of `item` still in the outer archive each on its own (after its read
   * failed, see {@linkcode BackupItem.drain}), telling each damaged or missing one.
   */
  checkRest(item: string, onProblem: (error: RecoverError) => void): Promise<void>;
  /**
   * `restore --salvage`: the item's inner tar stream where every chunk that does not verify is
   * zeros marked lost (`lib/salvage/lost.ts`); undefined where the format or variant does not
   * tell lost ranges exactly (docs/salvage.md). Chunk 0 is next.
   */
  salvageTar?(item: string, probe?: SalvageProbe): ReadableStream<Uint8Array> | undefined;
}

/** The largest `qubes.xml` read (any format): what the XML parser accepts (16 MiB). */
export const MAX_QUBES_XML = DEFAULT_MAX_XML_LENGTH;
