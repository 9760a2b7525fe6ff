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

import { createHmac, randomBytes } from "node:crypto";
import { createGzip } from "node:zlib";
import { evpBytesToKey } from "../crypto/mod.ts";
import { InterruptedError } from "../errors.ts";
import { OffThreadHmac, useHmacWorker } from "../verify/off_thread_hmac.ts";
import { outerEntryHead, outerEntryTail } from "./outer_entry.ts";

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

/** Plaintext gathered before each WebCrypto call. */
const SLICE = 4 * 1024 * 1024;
const AES_BLOCK = 16;

/**
 * `openssl enc -e -aes-256-cbc -md md5 -pass pass:P` as a stream (spec section 6): `Salted__`,
 * a random 8-byte salt, then one CBC chain over the whole input with PKCS#7 padding at its end.
 * WebCrypto pads every call, so each slice of whole blocks is encrypted with the previous
 * slice's last ciphertext block as its IV and the padding block it adds is dropped.
 */
export function opensslEncrypt(passphrase: Uint8Array): TransformStream<Uint8Array, Uint8Array> {
  const salt = new Uint8Array(randomBytes(8));
  const { key: raw, iv } = evpBytesToKey("md5", passphrase, salt, 32, 16);
  let chain: Uint8Array = iv;
  let key: CryptoKey;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const take = (): Uint8Array => {
    const out = new Uint8Array(pendingBytes);
    let at = 0;
    for (const piece of pending) {
      out.set(piece, at);
      at += piece.length;
    }
    pending = [];
    pendingBytes = 0;
    return out;
  };
  const encrypt = async (plain: Uint8Array): Promise<Uint8Array> =>
    new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-CBC", iv: chain as Uint8Array<ArrayBuffer> },
        key,
        plain as Uint8Array<ArrayBuffer>,
      ),
    );
  return new TransformStream({
    async start(controller) {
      key = await crypto.subtle.importKey(
        "raw",
        raw as Uint8Array<ArrayBuffer>,
        "AES-CBC",
        false,
        ["encrypt"],
      );
      const head = new Uint8Array(16);
      head.set(new TextEncoder().encode("Salted__"));
      head.set(salt, 8);
      controller.enqueue(head);
    },
    async transform(piece, controller) {
      pending.push(piece);
      pendingBytes += piece.length;
      if (pendingBytes < SLICE) return;
      const all = take();
      const whole = all.length - all.length % AES_BLOCK;
      const rest = all.subarray(whole);
      if (rest.length > 0) {
        pending.push(rest);
        pendingBytes = rest.length;
      }
      const out = (await encrypt(all.subarray(0, whole))).subarray(0, whole);
      chain = out.slice(whole - AES_BLOCK);
      controller.enqueue(out);
    },
    async flush(controller) {
      controller.enqueue(await encrypt(take()));
    },
  });
}

/** Gzip as a stream (node:zlib, level 1: the fastest; any level reads back with `gzip -d`). */
export function gzipStream(): TransformStream<Uint8Array, Uint8Array> {
  const gzip = createGzip({ level: 1, chunkSize: 1024 * 1024 });
  const ended = new Promise<void>((resolve, reject) => {
    gzip.on("end", () => resolve());
    gzip.on("error", reject);
  });
  ended.catch(() => {});
  return new TransformStream({
    start(controller) {
      gzip.on("data", (out: Uint8Array) => {
        controller.enqueue(new Uint8Array(out.buffer, out.byteOffset, out.length));
      });
    },
    async transform(piece) {
      if (!gzip.write(piece)) await new Promise((resolve) => gzip.once("drain", resolve));
    },
    async flush() {
      gzip.end();
      await ended;
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
  readonly #doneWithWorker = useHmacWorker();

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
   * say. Consumes `tar` completely; its errors end the write. The chunk bytes are gathered in
   * pieces of {@link GATHER} bytes, hashed off the main thread, and written when the chunk is
   * complete.
   */
  async writeItem(item: string, tar: ReadableStream<Uint8Array>): Promise<void> {
    let stream = tar;
    if (this.#settings.compress) stream = stream.pipeThrough(gzipStream());
    if (this.#settings.encrypt) {
      stream = stream.pipeThrough(opensslEncrypt(this.#settings.passphrase));
    }
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
    const flush = async () => {
      hand();
      const { hex, pieces } = await mac.finish();
      const name = chunkName(item, index++);
      await this.#entry(name, pieces, filled);
      const text = new TextEncoder().encode(hmacText(hex));
      await this.#entry(`${name}.hmac`, [text], text.length);
      this.chunks++;
      filled = 0;
      mac = await OffThreadHmac.create("sha512", key);
      gather = new Uint8Array(Math.min(GATHER, this.#chunkSize));
    };
    for await (let piece of stream) {
      if (this.#settings.signal?.aborted) throw new InterruptedError();
      while (piece.length > 0) {
        const take = Math.min(piece.length, gather.length - gathered);
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
  }

  /** Lets the HMAC worker stop once nobody else uses it. */
  close(): void {
    this.#doneWithWorker();
  }
}
