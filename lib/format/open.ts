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
import { decryptScryptFile, type KdfDigest } from "../crypto/mod.ts";
import {
  DamagedError,
  IncompleteError,
  PassphraseError,
  RecoverError,
  UnsupportedError,
} from "../errors.ts";
import { chunkEntryName, type OuterEntry, parseChunkName } from "../outer/mod.ts";
import { type Reporter, silentReporter } from "../reporter.ts";
import { concat, mapErrors } from "../streams/mod.ts";
import type { TarEvent } from "../tar/events.ts";
import { TarStream } from "../tar/mod.ts";
import { digestName, findHmacDigest, parseHmacFile, useHmacWorker } from "../verify/mod.ts";
import {
  chunkPassword,
  type HmacContext,
  hmacVerifiedChunks,
  scryptVerifiedChunks,
  skipChunks,
} from "./chunks.ts";
import { prefetchScryptEntries } from "./scrypt_prefetch.ts";
import { EntryQueue } from "./entry_queue.ts";
import { type BackupHeader, parseBackupHeader } from "./header.ts";
import { memberInItem } from "./item_scope.ts";
import { openFormatOne } from "./format1.ts";
import { ByteBudget } from "./byte_budget.ts";
import {
  formatFourTar,
  formatThreeTar,
  formatTwoTar,
  type PayloadContext,
  plainChunk,
} from "./payload.ts";
import { openSource } from "./source.ts";

/** How to open a backup. */
export interface OpenOptions {
  /** Asked only when the backup needs it (format 1 does not). */
  passphrase: () => Promise<Uint8Array>;
  /** Receives notices (format found, key derivation used, skipped entries). */
  reporter?: Reporter;
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
}

const MAX_HEADER_ENTRY = 64 * 1024;
/**
 * Chunk bytes held at once: a whole chunk (100 MiB, or 102 400 000 bytes in format 2) must be
 * verified before it is decoded; the margin lets the next one be read meanwhile.
 */
const CHUNK_BUDGET = 128 * 1024 * 1024;
const MAX_QUBES_XML = 16 * 1024 * 1024;
const HEADER_DIGESTS = ["sha512", "sha1", "sha256", "sha384", "sha224", "md5", "ripemd160"];

/**
 * Opens a backup and reads everything up to and including its VM catalogue.
 *
 * @param path Backup file, `-` for standard input, or a directory.
 * @throws {PassphraseError} When the passphrase does not verify the header.
 * @throws {DamagedError | IncompleteError | UnsupportedError} When the backup cannot be read.
 */
export async function openBackup(path: string, options: OpenOptions): Promise<Backup> {
  const reporter = options.reporter ?? silentReporter;
  const source = await openSource(path, reporter.progress?.bind(reporter));
  if (source.kind === "format1") return await openFormatOne(source.dir, reporter);
  const queue = new EntryQueue(source.entries);
  const doneWithWorker = useHmacWorker();
  try {
    return await openArchive(queue, source, options.passphrase, reporter, doneWithWorker);
  } catch (error) {
    doneWithWorker();
    source.close();
    throw error;
  }
}

async function readSmall(entry: OuterEntry, limit: number): Promise<Uint8Array> {
  if (entry.size > limit) {
    throw new DamagedError(`Cannot read "${entry.name}": it is ${entry.size} bytes long`);
  }
  return await entry.read();
}

function startsWithText(bytes: Uint8Array, text: string): boolean {
  return new TextDecoder().decode(bytes.subarray(0, text.length)) === text;
}

async function readHeader(
  queue: EntryQueue,
  passphrase: Uint8Array,
): Promise<BackupHeader> {
  const headerEntry = (await queue.next())!;
  const headerBytes = await readSmall(headerEntry, MAX_HEADER_ENTRY);
  const hmacEntry = await queue.next();
  if (hmacEntry?.name !== "backup-header.hmac") {
    throw new IncompleteError(`Cannot verify "backup-header": "backup-header.hmac" is missing`);
  }
  const hmacBytes = await readSmall(hmacEntry, MAX_HEADER_ENTRY);
  if (startsWithText(hmacBytes, "scrypt")) {
    let authentic: Uint8Array;
    try {
      const password = concat([new TextEncoder().encode("backup-header!"), passphrase]);
      authentic = await decryptScryptFile(hmacBytes, password);
    } catch (error) {
      if (error instanceof PassphraseError) {
        throw new PassphraseError(
          `Cannot open the backup: wrong passphrase or damaged header ("backup-header.hmac" does not decrypt)`,
          { cause: error },
        );
      }
      throw error;
    }
    if (authentic.length !== headerBytes.length || authentic.some((b, i) => b !== headerBytes[i])) {
      throw new DamagedError(
        `Cannot verify "backup-header": it differs from its authenticated copy in "backup-header.hmac"`,
      );
    }
    const header = parseBackupHeader(authentic);
    if (header.version !== 4 || !header.backupId) {
      throw new DamagedError(
        `Cannot read "backup-header": an scrypt-protected header must be version 4 with a backup-id`,
      );
    }
    return header;
  }
  const expected = parseHmacFile(hmacBytes);
  if (findHmacDigest(headerBytes, passphrase, expected, HEADER_DIGESTS) === undefined) {
    throw new PassphraseError(
      `Cannot open the backup: wrong passphrase or damaged header ("backup-header.hmac" does not match)`,
    );
  }
  const header = parseBackupHeader(headerBytes);
  if (header.version === 4) {
    throw new DamagedError(
      `Cannot read "backup-header": version 4 needs an scrypt-protected header`,
    );
  }
  return header;
}

async function openArchive(
  queue: EntryQueue,
  source: Extract<Awaited<ReturnType<typeof openSource>>, { kind: "entries" }>,
  askPassphrase: () => Promise<Uint8Array>,
  reporter: Reporter,
  doneWithWorker: () => void,
): Promise<Backup> {
  const first = await queue.peek();
  if (first === undefined) {
    throw new IncompleteError("Cannot read the backup: it holds no entries");
  }
  let header: BackupHeader | undefined;
  let passphrase: Uint8Array;
  if (first.name === "backup-header") {
    passphrase = await askPassphrase();
    header = await readHeader(queue, passphrase);
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
  };
  const enc = format === 4;
  const budget = new ByteBudget(CHUNK_BUDGET);
  const scrypt = { backupId: header?.backupId ?? "", passphrase };
  if (enc) {
    queue.pipe((rest) =>
      prefetchScryptEntries(
        rest,
        (name) => name.endsWith(".enc") ? chunkPassword(scrypt, name) : undefined,
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
        return tarEvents(name, itemTar(name));
      },
    };
  };

  const itemTar = (name: string): ReadableStream<Uint8Array> => {
    if (format === 4) {
      const plain = async function* () {
        let index = 0;
        for await (const bytes of scryptVerifiedChunks(queue, name, scrypt)) {
          yield plainChunk(chunkEntryName(name, index++, true), bytes);
        }
      };
      return deferred(() => formatFourTar(name, plain(), header));
    }
    const chunks = hmacVerifiedChunks(queue, name, hmac, budget);
    if (format === 3) return deferred(() => formatThreeTar(name, chunks, payload));
    return formatTwoTar(chunks, payload);
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

/**
 * Names the item in an error that does not name it or one of its chunks or members yet:
 * `Cannot restore "vm5/private.img": <reason>`.
 */
function withItemName(item: string, error: unknown): unknown {
  if (!(error instanceof RecoverError) || error.message.includes(`"${item}`)) return error;
  const Class = error.constructor as new (message: string, options?: ErrorOptions) => RecoverError;
  return new Class(`Cannot restore "${item}": ${error.message.replace(/^Cannot /, "cannot ")}`, {
    cause: error,
  });
}

/** A stream whose construction needs an await. */
function deferred(make: () => Promise<ReadableStream<Uint8Array>>): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      reader ??= (await make()).getReader();
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel(reason) {
      await reader?.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * The item's tar events, refusing members outside the item (swapped or forged chunks), with
 * symlink targets restored: Qubes' `--xform` also rewrote the targets of symlinks, prefixing
 * the item's backup directory to relative targets (trap T14), which is undone here.
 */
function tarEvents(item: string, tar: ReadableStream<Uint8Array>): ReadableStream<TarEvent> {
  const subdir = item.slice(0, item.lastIndexOf("/") + 1);
  const events = mapErrors(tar, (error) => withItemName(item, error)).pipeThrough(new TarStream());
  return mapErrors(events, (error) => withItemName(item, error)).pipeThrough(
    new TransformStream<TarEvent, TarEvent>({
      transform(event, controller) {
        if (event.type === "entry") {
          const entry = event.entry;
          if (!memberInItem(item, entry.name)) {
            throw new DamagedError(
              `Cannot restore item "${item}": it holds "${entry.name}", which lies outside it`,
            );
          }
          if (entry.kind === "symlink" && subdir !== "" && entry.linkname.startsWith(subdir)) {
            controller.enqueue({
              type: "entry",
              entry: { ...entry, linkname: entry.linkname.slice(subdir.length) },
            });
            return;
          }
        }
        controller.enqueue(event);
      },
    }),
  );
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
