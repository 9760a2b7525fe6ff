/**
 * Writes a format-3 backup file as Qubes R2 (updates) and R3.x wrote them (spec sections 2-4,
 * 6, 7, 9): `backup-header` and its `.hmac`, then each item's inner tar stream compressed with
 * gzip (when asked), encrypted as ONE `openssl enc -aes-256-cbc` stream (MD5 key derivation,
 * `Salted__` and a random salt at its start), cut into 100 MiB chunks `<item>.000`,
 * `<item>.001`, ... each followed by its `.hmac` (`(stdin)= <hex>`, HMAC-SHA512 with the
 * passphrase). Every entry is a `tar -cO --posix`-style archive of its own.
 *
 * Memory: one chunk's pieces at a time.
 *
 * @module
 */

import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { evpBytesToKey } from "../crypto/mod.ts";
import { InterruptedError } from "../errors.ts";
import { outerEntryHead, outerEntryTail } from "./outer_entry.ts";

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

/** `openssl enc -e -aes-256-cbc -md md5 -pass pass:P` as a stream (spec section 6). */
export function opensslEncrypt(passphrase: Uint8Array): TransformStream<Uint8Array, Uint8Array> {
  const salt = new Uint8Array(randomBytes(8));
  const { key, iv } = evpBytesToKey("md5", passphrase, salt, 32, 16);
  const cipher = createCipheriv("aes-256-cbc", key, iv);
  return new TransformStream({
    start(controller) {
      const head = new Uint8Array(16);
      head.set(new TextEncoder().encode("Salted__"));
      head.set(salt, 8);
      controller.enqueue(head);
    },
    transform(piece, controller) {
      const out = cipher.update(piece);
      if (out.length > 0) {
        controller.enqueue(new Uint8Array(out.buffer, out.byteOffset, out.length));
      }
    },
    flush(controller) {
      const out = cipher.final();
      if (out.length > 0) {
        controller.enqueue(new Uint8Array(out.buffer, out.byteOffset, out.length));
      }
    },
  });
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

  constructor(file: Deno.FsFile, settings: WriterSettings) {
    this.#file = file;
    this.#settings = settings;
    this.#chunkSize = settings.chunkSize ?? CHUNK_SIZE;
    this.#mtime = settings.mtime ?? Math.floor(Date.now() / 1000);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.length;) done += await this.#file.write(bytes.subarray(done));
    this.written += bytes.length;
  }

  async #entry(name: string, pieces: Uint8Array[], size: number): Promise<void> {
    const head = outerEntryHead(name, size, this.#mtime);
    await this.#write(head);
    for (const piece of pieces) await this.#write(piece);
    await this.#write(outerEntryTail(head.length, size));
  }

  #hmac() {
    return createHmac("sha512", this.#settings.passphrase);
  }

  /** Writes `backup-header` and `backup-header.hmac`. */
  async writeHeader(): Promise<void> {
    const header = new TextEncoder().encode(headerText(this.#settings));
    await this.#entry("backup-header", [header], header.length);
    const hex = this.#hmac().update(header).digest("hex");
    const hmac = new TextEncoder().encode(hmacText(hex));
    await this.#entry("backup-header.hmac", [hmac], hmac.length);
  }

  /**
   * Writes one item: its inner tar stream compressed, encrypted and chunked as the settings
   * say. Consumes `tar` completely; its errors end the write.
   */
  async writeItem(item: string, tar: ReadableStream<Uint8Array>): Promise<void> {
    let stream = tar;
    if (this.#settings.compress) {
      stream = stream.pipeThrough(
        new CompressionStream("gzip") as TransformStream<
          Uint8Array,
          Uint8Array
        >,
      );
    }
    if (this.#settings.encrypt) {
      stream = stream.pipeThrough(opensslEncrypt(this.#settings.passphrase));
    }
    let index = 0;
    let pieces: Uint8Array[] = [];
    let filled = 0;
    let hmac = this.#hmac();
    const flush = async () => {
      const name = chunkName(item, index++);
      await this.#entry(name, pieces, filled);
      const text = new TextEncoder().encode(hmacText(hmac.digest("hex")));
      await this.#entry(`${name}.hmac`, [text], text.length);
      this.chunks++;
      pieces = [];
      filled = 0;
      hmac = this.#hmac();
    };
    for await (let piece of stream) {
      if (this.#settings.signal?.aborted) throw new InterruptedError();
      while (piece.length > 0) {
        const take = Math.min(piece.length, this.#chunkSize - filled);
        const part = piece.subarray(0, take);
        pieces.push(part);
        hmac.update(part);
        filled += take;
        piece = piece.subarray(take);
        if (filled === this.#chunkSize) await flush();
      }
    }
    // The last chunk; empty when the stream filled the previous one exactly, as R3 did (T12).
    await flush();
  }
}
