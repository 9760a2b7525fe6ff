/**
 * Writes a format-3 backup file as Qubes R2 (updates) and R3.x wrote them (spec sections 2-4,
 * 6, 7, 9): `backup-header` and its `.hmac`, then each item's inner tar stream compressed with
 * gzip (when asked), encrypted as ONE `openssl enc -aes-256-cbc` stream (MD5 key derivation,
 * `Salted__` and a random salt at its start), cut into 100 MiB chunks `<item>.000`,
 * `<item>.001`, ... each followed by its `.hmac` (`(stdin)= <hex>`, HMAC-SHA512 with the
 * passphrase). Every entry is a `tar -cO --posix`-style archive of its own. Gzip and encryption
 * run in workers (packer.ts), the HMACs in the HMAC worker.
 *
 * The chunk bytes are written as they come; nothing waits for a chunk to be complete, or for
 * its digest (its `.hmac` entry goes into room left for it). The file is told final
 * (`onWritten`) entry by entry, in order, so a reader that follows it sees whole entries only.
 *
 * Memory: the pieces of at most two chunks in the HMAC worker (each handed back with its
 * digest), plus the blocks in flight in the packer's workers.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { InterruptedError } from "../errors.ts";
import { OffThreadHmac, useHmacWorker } from "../verify/mod.ts";
import { outerEntryHead, outerEntryTail } from "./outer_entry.ts";
import { Packer } from "./packer.ts";

/** Chunk bytes are copied into pieces of this size before hashing and writing. */
const GATHER = 4 * 1024 * 1024;

const EMPTY = new Uint8Array(0);

/**
 * HMAC workers a conversion spreads its HMACs over: the old chunks', the new chunks' and the
 * read-back's chains run at once.
 */
const HMAC_WORKERS = 2;

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

/**
 * Writes at given positions of a file, one write at a time in call order, and tells how far
 * the file is final: up to the first region not yet complete. A region's bytes may be written
 * in any order (a chunk's entry head is written again once its size is known; a `.hmac` entry
 * after the next chunk's data).
 */
class PositionalFile {
  readonly #file: Deno.FsFile;
  readonly #onFinal: ((bytes: number) => void) | undefined;
  /** The file offset after the last write. */
  #offset = 0;
  #queue: Promise<void> = Promise.resolve();
  #failure: { error: unknown } | undefined;
  /** Regions laid out and not yet final, in file order (each ends where the next starts). */
  #regions: Array<{ end: number | undefined }> = [];

  constructor(file: Deno.FsFile, onFinal: ((bytes: number) => void) | undefined) {
    this.#file = file;
    this.#onFinal = onFinal;
  }

  /** Writes `bytes` at `position` after the writes asked for before. */
  write(position: number, bytes: Uint8Array): Promise<void> {
    const run = this.#queue.then(async () => {
      if (this.#failure) throw this.#failure.error;
      try {
        if (this.#offset !== position) await this.#file.seek(position, Deno.SeekMode.Start);
        for (let done = 0; done < bytes.length;) {
          done += await this.#file.write(bytes.subarray(done));
        }
        this.#offset = position + bytes.length;
      } catch (error) {
        this.#failure ??= { error };
        throw error;
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Every write asked for so far is made; throws the first failure. */
  async settled(): Promise<void> {
    await this.#queue;
    if (this.#failure) throw this.#failure.error;
  }

  /**
   * Lays out the next region (it starts where the one before ends); call `done(end)` once all
   * its bytes, up to `end`, are written.
   */
  region(): { done(end: number): void } {
    const region: { end: number | undefined } = { end: undefined };
    this.#regions.push(region);
    return {
      done: (end) => {
        region.end = end;
        let final: number | undefined;
        while (this.#regions.length > 0 && this.#regions[0]!.end !== undefined) {
          final = this.#regions.shift()!.end;
        }
        if (final !== undefined) this.#onFinal?.(final);
      },
    };
  }
}

/** A chunk entry being written: its head (written with the full chunk size first) and HMAC. */
interface OpenChunk {
  name: string;
  headAt: number;
  headLength: number;
  mac: OffThreadHmac;
  region: { done(end: number): void };
}

/** Writes the outer archive of a format-3 backup into an open file. */
export class BackupWriter {
  readonly #file: PositionalFile;
  readonly #settings: WriterSettings;
  readonly #chunkSize: number;
  readonly #mtime: number;
  /** Bytes laid out so far (the file's length once everything asked for is written). */
  written = 0;
  /** Chunks written so far (not counting `.hmac` files). */
  chunks = 0;
  readonly #doneWithWorker = useHmacWorker(HMAC_WORKERS);
  #packer: Promise<Packer> | undefined;

  constructor(file: Deno.FsFile, settings: WriterSettings) {
    this.#file = new PositionalFile(file, settings.onWritten);
    this.#settings = settings;
    this.#chunkSize = settings.chunkSize ?? CHUNK_SIZE;
    this.#mtime = settings.mtime ?? Math.floor(Date.now() / 1000);
  }

  /** Writes `bytes` after everything laid out so far. */
  #append(bytes: Uint8Array): Promise<void> {
    const at = this.written;
    this.written += bytes.length;
    return this.#file.write(at, bytes);
  }

  /** The bytes of a whole small entry. */
  #entryBytes(name: string, data: Uint8Array): Uint8Array {
    const head = outerEntryHead(name, data.length, this.#mtime);
    const tail = outerEntryTail(head.length, data.length);
    const out = new Uint8Array(head.length + data.length + tail.length);
    out.set(head);
    out.set(data, head.length);
    return out;
  }

  /** Writes `backup-header` and `backup-header.hmac`. */
  async writeHeader(): Promise<void> {
    const header = new TextEncoder().encode(headerText(this.#settings));
    const hex = createHmac("sha512", this.#settings.passphrase).update(header).digest("hex");
    for (
      const entry of [
        this.#entryBytes("backup-header", header),
        this.#entryBytes("backup-header.hmac", new TextEncoder().encode(hmacText(hex))),
      ]
    ) {
      const region = this.#file.region();
      await this.#append(entry);
      region.done(this.written);
    }
  }

  /**
   * Writes one item: its inner tar stream compressed, encrypted and chunked as the settings
   * say (`gzipped`: `tar` is gzip already). Consumes `tar` completely; its errors end the
   * write. The chunk bytes go to the file as they come, after an entry head that says the
   * full chunk size (written again for a shorter last chunk), and then to the HMAC worker;
   * each chunk's `.hmac` entry goes into the room left for it once its digest is back, while
   * the next chunk is being written. What is written is reported final (`onWritten`) entry by
   * entry, in file order, once complete.
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
    const chunkSize = this.#chunkSize;
    let index = 0;
    let filled = 0;
    let chunk: OpenChunk | undefined;
    /** The `.hmac` entry of the chunk before, being written. */
    let pendingHmac: Promise<void> = Promise.resolve();
    let gather = new Uint8Array(Math.min(GATHER, chunkSize));
    let gathered = 0;
    const open = async (): Promise<OpenChunk> => {
      const name = chunkName(item, index++);
      const mac = await OffThreadHmac.create("sha512", key);
      const region = this.#file.region();
      const headAt = this.written;
      const head = outerEntryHead(name, chunkSize, this.#mtime);
      await this.#append(head);
      return { name, headAt, headLength: head.length, mac, region };
    };
    /** Writes `bytes`, a buffer of their own, as the open chunk's next bytes; then hashes them. */
    const data = async (bytes: Uint8Array) => {
      chunk ??= await open();
      await this.#append(bytes);
      chunk.mac.update(bytes); // Transferred to the HMAC worker: after the write.
    };
    const hand = async () => {
      if (gathered === 0) return;
      const bytes = gather.subarray(0, gathered);
      gather = new Uint8Array(Math.min(GATHER, chunkSize));
      gathered = 0;
      await data(bytes);
    };
    /** Ends the open chunk (an empty one when none is open): its tail, head, room for `.hmac`. */
    const close = async () => {
      await hand();
      const { name, headAt, headLength, mac, region } = chunk ?? await open();
      chunk = undefined;
      const size = filled;
      filled = 0;
      if (size !== chunkSize) {
        // A failure shows in the writes after it.
        this.#file.write(headAt, outerEntryHead(name, size, this.#mtime)).catch(() => {});
      }
      await this.#append(outerEntryTail(headLength, size));
      region.done(this.written);
      // The `.hmac` entry's length does not depend on the digest: its room is left now.
      const hmacName = `${name}.hmac`;
      const room = this.#entryBytes(hmacName, new TextEncoder().encode(hmacText("0".repeat(128))));
      const hmacRegion = this.#file.region();
      const hmacAt = this.written;
      void this.#append(new Uint8Array(room.length)).catch(() => {}); // zeros until the digest is back
      const previous = pendingHmac;
      pendingHmac = mac.finish().then(async ({ hex }) => {
        const entry = this.#entryBytes(hmacName, new TextEncoder().encode(hmacText(hex)));
        if (entry.length !== room.length) throw new Error(`unexpected length of "${hmacName}"`);
        await this.#file.write(hmacAt, entry);
        hmacRegion.done(hmacAt + entry.length);
      });
      pendingHmac.catch(() => {}); // awaited below
      this.chunks++;
      // At most one digest outstanding: the HMAC worker holds at most two chunks' pieces.
      await previous;
    };
    try {
      for await (let piece of stream) {
        if (this.#settings.signal?.aborted) throw new InterruptedError();
        while (piece.length > 0) {
          const room = chunkSize - filled;
          if (owned && gathered === 0 && piece.byteOffset === 0 && piece.length <= room) {
            filled += piece.length; // before the piece is transferred (and emptied here)
            await data(piece);
            piece = EMPTY;
          } else {
            const take = Math.min(piece.length, gather.length - gathered, room);
            gather.set(piece.subarray(0, take), gathered);
            gathered += take;
            filled += take;
            piece = piece.subarray(take);
            if (gathered === gather.length) await hand();
          }
          if (filled === chunkSize) await close();
        }
      }
      // The last chunk; empty when the stream filled the previous one exactly, as R3 did (T12).
      await close();
      await pendingHmac;
      await this.#file.settled();
    } catch (error) {
      chunk?.mac.discard();
      throw error;
    }
  }

  #startPacker(): Promise<Packer> {
    const { compress, encrypt } = this.#settings;
    this.#packer ??= Packer.start({
      compress,
      encrypt,
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
    this.#packer?.then((packer) => packer.close(), () => {});
  }
}
