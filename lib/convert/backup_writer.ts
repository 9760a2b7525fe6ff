/**
 * Writes a format-3 backup file as Qubes R2 (updates) and R3.x wrote them (spec sections 2-4,
 * 6, 7, 9): `backup-header` and its `.hmac`, then each item's inner tar stream compressed with
 * gzip (when asked), encrypted as ONE `openssl enc -aes-256-cbc` stream (MD5 key derivation,
 * `Salted__` and a random salt at its start), cut into 100 MiB chunks `<item>.000`,
 * `<item>.001`, ... each followed by its `.hmac` (`(stdin)= <hex>`, HMAC-SHA512 with the
 * passphrase). Every entry is a `tar -cO --posix`-style archive of its own. Gzip and encryption
 * run in workers (packer.ts), the HMACs in the HMAC worker.
 *
 * Memory: two chunks' pieces at a time (one being finished: its digest awaited and its bytes
 * written, while the next is gathered), plus the blocks in flight in the workers.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { InterruptedError } from "../errors.ts";
import { OffThreadHmac, useHmacWorker, type WrittenChunks } from "../verify/mod.ts";
import { outerEntryHead, outerEntryTail } from "./outer_entry.ts";
import { Packer } from "./packer.ts";

/** Chunk bytes are copied into pieces of this size before hashing and writing. */
const GATHER = 4 * 1024 * 1024;

/** The size of a non-final chunk, as R3 cut them. */
export const CHUNK_SIZE = 100 * 1024 * 1024;

/** How the new backup is protected and packed. */
export interface WriterSettings {
  /** HMAC key, and encryption passphrase when encrypting. */
  passphrase: Uint8Array;
  encrypt: boolean;
  compress: boolean;
  /** Non-final chunk size (default {@link CHUNK_SIZE}; tests use small values). */
  chunkSize?: number;
  /** Entry times, seconds since the epoch (default: now). */
  mtime?: number;
  /** Aborts between pieces. */
  signal?: AbortSignal | undefined;
  /** Gzip and encrypt in workers where they run (default true; tests try false). */
  workers?: boolean;
  /** Told the bytes written so far after each write to the file. */
  onWritten?: ((bytes: number) => void) | undefined;
  /**
   * Another handle on the file, synced (`fdatasync`) in the background after each chunk, so
   * that the disk writes overlap the work and the caller's final sync has little left.
   */
  syncFile?: Deno.FsFile | undefined;
  /** Given each chunk as hashed, before it is written (for a reader that compares it). */
  writtenChunks?: WrittenChunks | undefined;
  /** A packer the caller started (so that its worker loads early); the writer closes it. */
  packer?: Promise<Packer> | undefined;
}

/** The `backup-header` text of a format-3 backup with these settings (spec section 3.2). */
export function headerText(settings: Pick<WriterSettings, "encrypt" | "compress">): string {
  const lines = [
    "version=3",
    "hmac-algorithm=SHA512",
    "crypto-algorithm=aes-256-cbc",
    `encrypted=${settings.encrypt ? "True" : "False"}`,
    `compressed=${settings.compress ? "True" : "False"}`,
  ];
  if (settings.compress) lines.push("compression-filter=gzip");
  return lines.map((line) => `${line}\n`).join("");
}

/** The chunk name of chunk `index` of `item`: `%03d`, more digits past 999 (spec 2.3). */
export function chunkName(item: string, index: number): string {
  return `${item}.${String(index).padStart(3, "0")}`;
}

/** The text of a `.hmac` file as OpenSSL 1.0 `openssl dgst -SHA512 -hmac P` printed it. */
export function hmacText(digestHex: string): string {
  return `(stdin)= ${digestHex}\n`;
}

/** Writes the outer archive of a format-3 backup into an open file. */
export class BackupWriter {
  readonly #file: Deno.FsFile;
  readonly #settings: WriterSettings;
  readonly #chunkSize: number;
  readonly #mtime: number;
  /** Bytes written so far. */
  written = 0;
  /** Chunks written so far (not counting `.hmac` files). */
  chunks = 0;
  readonly #doneWithWorker = useHmacWorker();
  #packer: Promise<Packer> | undefined;
  #syncing: Promise<void> | undefined;

  constructor(file: Deno.FsFile, settings: WriterSettings) {
    this.#file = file;
    this.#settings = settings;
    this.#chunkSize = settings.chunkSize ?? CHUNK_SIZE;
    this.#mtime = settings.mtime ?? Math.floor(Date.now() / 1000);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.length;) done += await this.#file.write(bytes.subarray(done));
    this.written += bytes.length;
    this.#settings.onWritten?.(this.written);
  }

  async #entry(name: string, pieces: Uint8Array[], size: number): Promise<void> {
    const head = outerEntryHead(name, size, this.#mtime);
    await this.#write(head);
    for (const piece of pieces) await this.#write(piece);
    await this.#write(outerEntryTail(head.length, size));
  }

  /** Writes `backup-header` and `backup-header.hmac`. */
  async writeHeader(): Promise<void> {
    const header = new TextEncoder().encode(headerText(this.#settings));
    await this.#entry("backup-header", [header], header.length);
    const hex = createHmac("sha512", this.#settings.passphrase).update(header).digest("hex");
    const hmac = new TextEncoder().encode(hmacText(hex));
    await this.#entry("backup-header.hmac", [hmac], hmac.length);
  }

  /**
   * Writes one item: its inner tar stream compressed, encrypted and chunked as the settings
   * say (`gzipped`: `tar` is gzip already). Consumes `tar` completely; its errors end the
   * write (once the chunk being finished is written: nothing is written after this returns).
   * The chunk bytes are gathered in pieces of {@link GATHER} bytes, hashed off the main
   * thread, and written when the chunk is complete, while the next chunk is gathered.
   */
  async writeItem(
    item: string,
    tar: AsyncIterable<Uint8Array>,
    options: { gzipped?: boolean } = {},
  ): Promise<void> {
    const { compress, encrypt } = this.#settings;
    const gzip = compress && !options.gzipped;
    let stream: AsyncIterable<Uint8Array> = tar;
    if (gzip || encrypt) {
      const packer = await this.#startPacker();
      if (gzip) stream = packer.gzip(stream);
      if (encrypt) stream = packer.encrypt(stream, this.#settings.passphrase);
    }
    // The packer's pieces start buffers of their own: they go to the HMAC worker as they are.
    // The source's pieces may be views of buffers it reuses: those are copied.
    const owned = gzip || encrypt;
    const key = this.#settings.passphrase;
    let index = 0;
    let filled = 0;
    let mac = await OffThreadHmac.create("sha512", key);
    let gather = new Uint8Array(Math.min(GATHER, this.#chunkSize));
    let gathered = 0;
    const hand = () => {
      if (gathered === 0) return;
      mac.update(gather.subarray(0, gathered));
      gather = new Uint8Array(Math.min(GATHER, this.#chunkSize - filled));
      gathered = 0;
    };
    /** The previous chunk being finished: its digest awaited, then its entries written. */
    let finishing: Promise<void> = Promise.resolve();
    const finish = async (full: OffThreadHmac, name: string, size: number) => {
      const { hex, pieces } = await full.finish();
      this.#settings.writtenChunks?.put(name, hex, pieces);
      await this.#entry(name, pieces, size);
      const text = new TextEncoder().encode(hmacText(hex));
      await this.#entry(`${name}.hmac`, [text], text.length);
      this.#syncInBackground();
      this.chunks++;
    };
    // A full chunk is finished while the next one is gathered: the stream keeps flowing while
    // the HMAC worker finishes its digest and its 100 MiB are written. One chunk is finished
    // at a time, in order.
    const flush = async () => {
      hand();
      const full = mac;
      const name = chunkName(item, index++);
      const size = filled;
      await finishing;
      finishing = finish(full, name, size);
      finishing.catch(() => {}); // told by the next flush, or at the end
      filled = 0;
      mac = await OffThreadHmac.create("sha512", key);
      gather = new Uint8Array(Math.min(GATHER, this.#chunkSize));
    };
    try {
      for await (let piece of stream) {
        if (this.#settings.signal?.aborted) throw new InterruptedError();
        if (owned && piece.byteOffset === 0 && piece.length < this.#chunkSize - filled) {
          // Bytes gathered before go first (else every later piece would be copied: the
          // 16-byte `Salted__` head would put them all off the gather buffer's boundaries).
          hand();
          filled += piece.length; // before the piece is transferred (and emptied here)
          mac.update(piece);
          continue;
        }
        while (piece.length > 0) {
          const take = Math.min(
            piece.length,
            gather.length - gathered,
            this.#chunkSize - filled,
          );
          gather.set(piece.subarray(0, take), gathered);
          gathered += take;
          filled += take;
          piece = piece.subarray(take);
          if (filled === this.#chunkSize) await flush();
          else if (gathered === gather.length) hand();
        }
      }
      // The last chunk; empty when the stream filled the previous one exactly, as R3 did (T12).
      await flush();
      await finishing;
    } catch (error) {
      mac.discard();
      await finishing.catch(() => {}); // nothing more is written once this returns
      throw error;
    }
  }

  #syncInBackground(): void {
    const syncFile = this.#settings.syncFile;
    if (syncFile === undefined || this.#syncing !== undefined) return;
    this.#syncing = syncFile.syncData().finally(() => this.#syncing = undefined);
    this.#syncing.catch(() => {}); // the final sync tells a failure
  }

  /** Waits for a background sync to end (see `WriterSettings.syncFile`). */
  async synced(): Promise<void> {
    await this.#syncing?.catch(() => {});
  }

  #startPacker(): Promise<Packer> {
    this.#packer ??= this.#settings.packer ?? Packer.start({
      encrypt: this.#settings.encrypt,
      ...(this.#settings.workers === undefined ? {} : { workers: this.#settings.workers }),
    });
    return this.#packer;
  }

  /**
   * Gzip as {@linkcode writeItem} does it (in the packer's workers), for an item passed with
   * `gzipped: true` whose parts are gzipped by the caller.
   */
  async gzipper(): Promise<(tar: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>> {
    const packer = await this.#startPacker();
    return (tar) => packer.gzip(tar);
  }

  /** Stops the workers (the HMAC worker once nobody else uses it). */
  close(): void {
    this.#doneWithWorker();
    (this.#packer ?? this.#settings.packer)?.then((packer) => packer.close(), () => {});
  }
}
