/**
 * Opening a backup of any format: find the format, verify and parse the header, read the VM
 * catalogue, then hand out the items one after another as streams of inner tar events.
 *
 * Detection follows spec section 1.2 and looks only at the data: a directory with `qubes.xml`
 * is format 1; a `backup-header.hmac` that is an scrypt file means format 4; otherwise the
 * verified header's `version` line (absent: 2); an archive that starts with `qubes.xml.000`
 * is an R2-beta3 backup without a header.
 *
 * @module
 */

import { type Catalog, ownerOf, parseQubesXml, type VmRecord } from "../catalog/mod.ts";
import type { KdfDigest } from "../crypto/mod.ts";
import { DamagedError, IncompleteError, oneLine, UnsupportedError } from "../errors.ts";
import { chunkEntryName, parseChunkName } from "../outer/mod.ts";
import { type Reporter, silentReporter } from "../reporter.ts";
import type { TarEvent } from "../tar/events.ts";
import { VolumeStarts } from "../tar/mod.ts";
import { digestName, useHmacWorker } from "../verify/mod.ts";
import { ByteBudget } from "./byte_budget.ts";
import {
  chunkPassword,
  type HmacContext,
  hmacVerifiedChunks,
  PIECE_SIZE,
  scryptVerifiedChunks,
  skipChunks,
} from "./chunks.ts";
import { chunkEntryLimit, uniformChunks } from "./chunk_sizes.ts";
import { EntryQueue } from "./entry_queue.ts";
import { PiecePool } from "../streams/piece_pool.ts";
import { openFormatOne } from "./format1.ts";
import type { BackupHeader } from "./header.ts";
import { readHeader } from "./header_auth.ts";
import { deferred, tarEvents } from "./item_events.ts";
import {
  formatFourTar,
  formatThreeTar,
  formatTwoTar,
  type PayloadContext,
  plainChunk,
} from "./payload.ts";
import { ScryptPolicy } from "./scrypt_cost.ts";
import { prefetchScryptEntries } from "./scrypt_prefetch.ts";
import { openSource } from "./source.ts";

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
}

/** An opened backup: what it is, what it holds, and its items in backup order. */
export interface Backup {
  /** Format version, 1-4. */
  readonly format: 1 | 2 | 3 | 4;
  /** The verified header; undefined for format 1 and R2-beta3 backups. */
  readonly header: BackupHeader | undefined;
  /** The key derivation that decrypted it (formats 2, 3), once known. */
  readonly kdf: KdfDigest | undefined;
  /** The VMs in qubes.xml. */
  readonly catalog: Catalog;
  /** The raw qubes.xml bytes. */
  readonly qubesXml: Uint8Array;
  /** The items after qubes.xml, in backup order; each must be consumed or skipped before the next. */
  items(): AsyncGenerator<BackupItem>;
  /** Releases files. */
  close(): Promise<void>;
}

/** One backed-up item: a file (`vm5/private.img`), a directory (`vm3/.`), a dom0 home. */
export interface BackupItem {
  /** Item name as in the chunk names. */
  readonly name: string;
  /** The VM the item belongs to, and the rest of the name after the VM's backup path. */
  readonly owner: { vm: VmRecord; rest: string } | undefined;
  /** The item's inner tar members, verified and decoded. */
  events(): ReadableStream<TarEvent>;
  /** Passes over the item without verifying it. */
  skip(): Promise<void>;
  /**
   * The item's inner tar stream as bytes: chunks verified and decoded, format-2 volumes joined,
   * nothing parsed (formats 2-4; `convert` passes it on). Read it instead of `events()`.
   */
  plainTar?(): ReadableStream<Uint8Array>;
}

/**
 * Chunk bytes held at once: a whole chunk (100 MiB, or 102 400 000 bytes in format 2) must be
 * verified before it is decoded.
 */
// The margin (a few pieces) lets the next chunk be read while the current one is decoded.
const CHUNK_BUDGET = 104 * 1024 * 1024;
/** Free piece buffers kept for the next reads: as many as the budget lets be read at once. */
const POOL_KEEP = CHUNK_BUDGET / PIECE_SIZE;
const MAX_QUBES_XML = 16 * 1024 * 1024;

/**
 * Opens a backup and reads everything up to and including its VM catalogue.
 *
 * @param path Backup file, `-` for standard input, or a directory.
 * @throws {PassphraseError} When the passphrase does not verify the header.
 * @throws {DamagedError | IncompleteError | UnsupportedError} When the backup cannot be read.
 */
export async function openBackup(path: string, options: OpenOptions): Promise<Backup> {
  const reporter = oneLineReporter(options.reporter ?? silentReporter);
  const source = await openSource(path, reporter.progress?.bind(reporter));
  if (source.kind === "format1") return await openFormatOne(source.dir, reporter);
  const queue = new EntryQueue(source.entries);
  const doneWithWorker = useHmacWorker();
  try {
    const policy = new ScryptPolicy(options.maxScryptMemory);
    return await openArchive(queue, source, options.passphrase, reporter, doneWithWorker, policy);
  } catch (error) {
    doneWithWorker();
    source.close();
    throw error;
  }
}

async function openArchive(
  queue: EntryQueue,
  source: Extract<Awaited<ReturnType<typeof openSource>>, { kind: "entries" }>,
  askPassphrase: () => Promise<Uint8Array>,
  reporter: Reporter,
  doneWithWorker: () => void,
  policy: ScryptPolicy,
): Promise<Backup> {
  const first = await queue.peek();
  if (first === undefined) {
    throw new IncompleteError("Cannot read the backup: it holds no entries");
  }
  let header: BackupHeader | undefined;
  let passphrase: Uint8Array;
  if (first.name === "backup-header") {
    passphrase = await askPassphrase();
    header = await readHeader(queue, passphrase, policy);
  } else if (first.name === "qubes.xml.000") {
    passphrase = await askPassphrase();
    reporter.info("No backup-header: an R2-beta3 backup (format 2)");
  } else if (first.name.endsWith(".enc")) {
    throw new IncompleteError(
      `Cannot read the backup: "backup-header" is missing, and format 4 cannot be decrypted without the backup id it holds`,
    );
  } else {
    throw new UnsupportedError(
      `Cannot read the backup: it is not a Qubes backup (its first entry is "${first.name}")`,
    );
  }
  const format = header?.version ?? 2;
  const hmac: HmacContext = {
    digest: header && format !== 4 ? digestName(header.hmacAlgorithm) : undefined,
    key: passphrase,
  };
  const payload: PayloadContext = {
    header,
    passphrase,
    kdf: undefined,
    onKdf: (kdf) =>
      reporter.info(
        kdf === "md5"
          ? "Key derivation: MD5 (OpenSSL 1.0, as Qubes wrote it)"
          : "Key derivation: SHA-256 (OpenSSL 1.1 or later; not how Qubes wrote it)",
      ),
    onUnchecked: (message) => reporter.warn(message),
  };
  const enc = format === 4;
  const memory = {
    budget: new ByteBudget(CHUNK_BUDGET),
    pool: new PiecePool(PIECE_SIZE, POOL_KEEP),
    maxChunkSize: chunkEntryLimit(format),
  };
  const scrypt = { backupId: header?.backupId ?? "", passphrase, policy };
  if (enc) {
    queue.pipe((rest) =>
      prefetchScryptEntries(
        rest,
        (name) => name.endsWith(".enc") ? chunkPassword(scrypt, name) : undefined,
        undefined,
        (name, params) => policy.checkChunk(name, params),
      )
    );
  }

  const makeItem = (name: string, catalog: Catalog | undefined): BackupItem => {
    let started = false;
    return {
      name,
      owner: catalog && ownerOf(catalog, name),
      skip: async () => {
        if (started) throw new Error(`Item "${name}" was already read`);
        started = true;
        await skipChunks(queue, name, enc);
      },
      events: () => {
        if (started) throw new Error(`Item "${name}" was already read`);
        started = true;
        const starts = format === 2 ? new VolumeStarts() : undefined;
        return tarEvents(name, itemTar(name, starts), starts);
      },
      plainTar: () => {
        if (started) throw new Error(`Item "${name}" was already read`);
        started = true;
        return itemTar(name);
      },
    };
  };

  const itemTar = (name: string, starts?: VolumeStarts): ReadableStream<Uint8Array> => {
    if (format === 4) {
      const plain = async function* () {
        let index = 0;
        const chunks = uniformChunks(
          scryptVerifiedChunks(queue, name, scrypt),
          (bytes) => bytes.length,
          () => chunkEntryName(name, index, true),
        );
        for await (const bytes of chunks) {
          yield plainChunk(chunkEntryName(name, index++, true), bytes);
        }
      };
      return deferred(() => formatFourTar(name, plain(), header));
    }
    const chunks = hmacVerifiedChunks(queue, name, hmac, memory);
    if (format === 3) return deferred(() => formatThreeTar(name, chunks, payload));
    return formatTwoTar(chunks, payload, starts);
  };

  // qubes.xml: the first item.
  const xmlEntry = await queue.peek();
  const xmlChunk = xmlEntry && parseChunkName(xmlEntry.name, enc);
  if (xmlChunk?.item !== "qubes.xml" || xmlChunk.index !== 0) {
    throw new IncompleteError(
      `Cannot read the VM list: "qubes.xml.000${enc ? ".enc" : ""}" is missing${
        xmlEntry ? ` (found "${xmlEntry.name}")` : ""
      }`,
    );
  }
  const qubesXml = await readQubesXml(makeItem("qubes.xml", undefined));
  const catalog = parseQubesXml(qubesXml);
  if (header === undefined && hmac.digest !== undefined) {
    reporter.info(`HMAC digest: ${hmac.digest.toUpperCase()}`);
  }

  return {
    format,
    header,
    get kdf() {
      return payload.kdf;
    },
    catalog,
    qubesXml,
    async *items() {
      for (;;) {
        const entry = await queue.peek();
        if (entry === undefined) return;
        const parsed = parseChunkName(entry.name, enc);
        if (parsed === undefined) {
          const base = !enc && entry.name.endsWith(".hmac") ? entry.name.slice(0, -5) : undefined;
          if (base !== undefined && parseChunkName(base, false) !== undefined) {
            throw new IncompleteError(
              `Cannot read the backup: chunk "${base}" is missing ("${entry.name}" is there)`,
            );
          }
          reporter.warn(`Skipping "${entry.name}": not a chunk of any item`);
          await queue.next();
          await entry.skip();
          continue;
        }
        if (parsed.index !== 0) {
          throw new IncompleteError(
            `Cannot read item "${parsed.item}": its first chunk is missing (found "${entry.name}")`,
          );
        }
        const item = makeItem(parsed.item, catalog);
        yield item;
        // An item the caller neither read nor skipped is skipped here.
        try {
          await item.skip();
        } catch {
          // Already read or skipped.
        }
      }
    },
    async close() {
      doneWithWorker();
      await queue.close();
      source.close();
    },
  };
}

async function readQubesXml(item: BackupItem): Promise<Uint8Array> {
  let xml: Uint8Array | undefined;
  let buffer: Uint8Array | undefined;
  for await (const event of item.events()) {
    if (event.type === "entry") {
      buffer = undefined;
      if (event.entry.name === "qubes.xml" && event.entry.kind === "file") {
        if (event.entry.size > MAX_QUBES_XML) {
          throw new DamagedError(`Cannot read "qubes.xml": it is ${event.entry.size} bytes long`);
        }
        buffer = new Uint8Array(event.entry.size);
      }
    } else if (event.type === "data") {
      buffer?.set(event.bytes, event.offset);
    } else if (buffer !== undefined) {
      xml = buffer;
      buffer = undefined;
    }
  }
  if (xml === undefined) {
    throw new DamagedError(`Cannot read the VM list: item "qubes.xml" holds no qubes.xml`);
  }
  return xml;
}

/** Notices carry names from the backup: each stays one line (see `oneLine`). */
function oneLineReporter(reporter: Reporter): Reporter {
  return {
    ...reporter,
    info: (message) => reporter.info(oneLine(message)),
    warn: (message) => reporter.warn(oneLine(message)),
  };
}
