/**
 * Decryption of `openssl enc` output, as written by formats 2 and 3 (spec §6): the ASCII magic
 * `Salted__`, an 8-byte salt, then the ciphertext under a key and IV from
 * {@linkcode evpBytesToKey}.
 *
 * @module
 */

import { DamagedError, IncompleteError, UnsupportedError } from "../errors.ts";
import { BLOCK, CbcChain, CtrCipher, SLICE_BYTES } from "./_aes.ts";
import { evpBytesToKey, type KdfDigest } from "./evp_bytes_to_key.ts";
import { recycle, scratchAfter } from "../streams/mod.ts";

/** The ASCII magic `Salted__` that starts every `openssl enc` output with a salt. */
export const OPENSSL_MAGIC: Uint8Array = new TextEncoder().encode("Salted__");

/** Length of the `Salted__` magic plus the salt. */
export const OPENSSL_HEADER_LENGTH = 16;

/** The cipher Qubes uses unless the header names another (`crypto-algorithm`). */
export const DEFAULT_OPENSSL_CIPHER = "aes-256-cbc";

/** Parameters of an `openssl enc` cipher. */
export interface OpensslCipher {
  /** The canonical OpenSSL name, e.g. `aes-256-cbc`. */
  name: string;
  /** Key length in bytes. */
  keyLength: number;
  /** IV length in bytes. */
  ivLength: number;
  /** Block chaining mode: CBC with PKCS#7 padding, or CTR without padding. */
  mode: "cbc" | "ctr";
}

/**
 * Look up an `openssl enc` cipher by its OpenSSL name (any case, with or without a leading
 * `-`; `aes256` and the like are OpenSSL aliases of the CBC ciphers).
 *
 * @param name The name, e.g. `"aes-256-cbc"`.
 * @returns The cipher's parameters.
 * @throws {UnsupportedError} For anything but AES-128/192/256 in CBC or CTR mode.
 *
 * @example
 * ```ts
 * opensslCipher("AES-128-CBC"); // { name: "aes-128-cbc", keyLength: 16, ivLength: 16, mode: "cbc" }
 * ```
 */
export function opensslCipher(name: string): OpensslCipher {
  const normal = name.trim().toLowerCase().replace(/^-/, "");
  const match = /^aes-?(128|192|256)(?:-(cbc|ctr))?$/.exec(normal);
  if (match === null) {
    throw new UnsupportedError({
      reason: "unsupported",
      detail: `cipher "${name}" is not supported: only AES in CBC or CTR mode`,
    });
  }
  const bits = match[1] ?? "256";
  const mode = match[2] === "ctr" ? "ctr" : "cbc";
  return { name: `aes-${bits}-${mode}`, keyLength: Number(bits) / 8, ivLength: BLOCK, mode };
}

/** Options of {@linkcode OpensslDecryptStream}. */
export interface OpensslDecryptOptions {
  /** The passphrase bytes given to `openssl enc -pass pass:…`. */
  password: Uint8Array;
  /** The key derivation digest: `md5` for Qubes backups. */
  digest: KdfDigest;
  /** The OpenSSL cipher name; `aes-256-cbc` by default. */
  cipher?: string;
}

/**
 * Decrypts `openssl enc -d` input: `Salted__`, salt, ciphertext, split arbitrarily across
 * chunks. Emits the plaintext in pieces of up to 4 MiB (a pooled input piece, see
 * `lib/streams/piece_pool.ts`, is decrypted where it lies, as one output piece, and recycled);
 * the whole input is one cipher chain (format 3 slices one ciphertext into many chunks: feed
 * them in order). The PKCS#7 padding of the last block is checked at the end of the input.
 *
 * Errors: `DamagedError` when the input does not start with `Salted__` or the padding is bad
 * ("bad decrypt": wrong passphrase, wrong key derivation, or damaged data); `IncompleteError`
 * when the input ends inside the header, inside a block, or with no ciphertext at all.
 *
 * @example
 * ```ts
 * const plain = file.readable.pipeThrough(
 *   new OpensslDecryptStream({ password, digest: "md5" }),
 * );
 * ```
 */
export class OpensslDecryptStream extends TransformStream<Uint8Array, Uint8Array> {
  /** @param options The passphrase, KDF digest and cipher. */
  constructor(options: OpensslDecryptOptions) {
    const cipher = opensslCipher(options.cipher ?? DEFAULT_OPENSSL_CIPHER);
    const pending = new PendingBytes();
    let body: CipherBody | undefined;
    super({
      async transform(chunk, controller) {
        pending.push(chunk);
        if (body === undefined) {
          if (pending.length < OPENSSL_HEADER_LENGTH) return;
          const header = pending.take(OPENSSL_HEADER_LENGTH);
          body = await openBody(header, options.password, options.digest, cipher);
        }
        await body.drain(pending, false, (piece) => controller.enqueue(piece));
      },
      async flush(controller) {
        if (body === undefined) throw headerError(pending.take(pending.length));
        await body.drain(pending, true, (piece) => controller.enqueue(piece));
      },
    });
  }
}

/**
 * Decrypt a whole `openssl enc` output held in memory (format 2 encrypts each chunk on its own).
 *
 * @param data `Salted__`, salt and ciphertext.
 * @param password The passphrase bytes.
 * @param digest The key derivation digest: `md5` for Qubes backups.
 * @param cipher The OpenSSL cipher name; `aes-256-cbc` by default.
 * @returns The plaintext.
 * @throws {DamagedError} Not `openssl enc` data, or bad padding ("bad decrypt").
 * @throws {IncompleteError} The data ends inside the header or inside a block.
 *
 * @example
 * ```ts
 * const volume = await decryptOpensslBuffer(chunk, password, "md5");
 * ```
 */
export async function decryptOpensslBuffer(
  data: Uint8Array,
  password: Uint8Array,
  digest: KdfDigest,
  cipher: string = DEFAULT_OPENSSL_CIPHER,
): Promise<Uint8Array> {
  const spec = opensslCipher(cipher);
  if (data.length < OPENSSL_HEADER_LENGTH) throw headerError(data);
  const body = await openBody(data.subarray(0, OPENSSL_HEADER_LENGTH), password, digest, spec);
  const pending = new PendingBytes();
  pending.push(data.subarray(OPENSSL_HEADER_LENGTH));
  const out = new Uint8Array(pending.length);
  let written = 0;
  await body.drain(pending, true, (piece) => {
    out.set(piece, written);
    written += piece.length;
  });
  return out.subarray(0, written);
}

/**
 * Decrypt the first blocks after the `Salted__` header without checking padding, to test
 * whether a key derivation digest gives plausible plaintext (the caller checks magic bytes:
 * a tar header, gzip, …).
 *
 * @param head The start of the data: `Salted__`, salt, at least one ciphertext block.
 * @param password The passphrase bytes.
 * @param digest The key derivation digest to try.
 * @param cipher The OpenSSL cipher name; `aes-256-cbc` by default.
 * @param blocks How many 16-byte blocks to decrypt at most (fewer if `head` is shorter).
 * @returns The plaintext of those blocks.
 * @throws {DamagedError} When `head` does not start with `Salted__` and a salt.
 *
 * @example
 * ```ts
 * const plain = await peekOpensslPlaintext(head, password, "md5");
 * const looksLikeGzip = plain[0] === 0x1f && plain[1] === 0x8b;
 * ```
 */
export async function peekOpensslPlaintext(
  head: Uint8Array,
  password: Uint8Array,
  digest: KdfDigest,
  cipher: string = DEFAULT_OPENSSL_CIPHER,
  blocks = 32,
): Promise<Uint8Array> {
  const spec = opensslCipher(cipher);
  if (head.length < OPENSSL_HEADER_LENGTH || !hasOpensslMagic(head)) {
    throw new DamagedError({
      reason: "damaged",
      detail: `not openssl enc data: it does not start with "Salted__" and a salt`,
    });
  }
  const available = Math.floor((head.length - OPENSSL_HEADER_LENGTH) / BLOCK);
  const length = Math.min(blocks, available) * BLOCK;
  if (length <= 0) return new Uint8Array(0);
  const ciphertext = head.subarray(OPENSSL_HEADER_LENGTH, OPENSSL_HEADER_LENGTH + length);
  const { key, iv } = evpBytesToKey(
    digest,
    password,
    head.subarray(OPENSSL_MAGIC.length, OPENSSL_HEADER_LENGTH),
    spec.keyLength,
    spec.ivLength,
  );
  if (spec.mode === "ctr") return await (await CtrCipher.create(key, iv)).decryptAt(0, ciphertext);
  const framed = new Uint8Array(length + BLOCK);
  framed.set(ciphertext);
  return await (await CbcChain.create(key, iv)).decryptMiddle(framed);
}

/** The ciphertext after the header: decrypted slice by slice as bytes become available. */
interface CipherBody {
  /**
   * Decrypt what `pending` holds, keeping back what cannot be decrypted yet; with `end`, decrypt
   * everything and finish the chain.
   */
  drain(pending: PendingBytes, end: boolean, emit: (piece: Uint8Array) => void): Promise<void>;
}

/** Check the 16-byte header and set up the cipher with the derived key and IV. */
async function openBody(
  header: Uint8Array,
  password: Uint8Array,
  digest: KdfDigest,
  cipher: OpensslCipher,
): Promise<CipherBody> {
  if (!hasOpensslMagic(header)) throw headerError(header);
  const salt = header.subarray(OPENSSL_MAGIC.length, OPENSSL_HEADER_LENGTH);
  const { key, iv } = evpBytesToKey(digest, password, salt, cipher.keyLength, cipher.ivLength);
  return cipher.mode === "ctr"
    ? ctrBody(await CtrCipher.create(key, iv))
    : cbcBody(await CbcChain.create(key, iv));
}

/**
 * CBC: the last block may hold the padding, so it stays pending until the end. A pooled piece
 * of whole blocks with more data after it is decrypted where it lies (the block WebCrypto
 * needs after it goes into the piece's scratch room) and its buffer is then recycled; other
 * input is gathered into slices of {@linkcode SLICE_BYTES}.
 */
function cbcBody(chain: CbcChain): CipherBody {
  return {
    async drain(pending, end, emit) {
      for (;;) {
        const first = pending.first;
        if (
          first !== undefined && pending.length > first.length && first.length % BLOCK === 0 &&
          scratchAfter(first) >= BLOCK
        ) {
          const piece = pending.take(first.length);
          emit(await chain.decryptMiddle(withScratch(piece)));
          recycle(piece);
        } else if (pending.length > SLICE_BYTES) {
          emit(await chain.decryptMiddle(pending.take(SLICE_BYTES, BLOCK)));
        } else {
          break;
        }
      }
      if (!end) return;
      if (pending.length === 0) {
        throw new IncompleteError({
          reason: "truncated",
          detail: "ciphertext is missing after the salt",
        });
      }
      if (pending.length % BLOCK !== 0) {
        throw new IncompleteError({
          reason: "truncated",
          detail: "ciphertext ends in the middle of a 16-byte block",
        });
      }
      const last = pending.take(pending.length);
      const plain = await chain.decryptEnd(last);
      if (plain === undefined) {
        throw new DamagedError({
          reason: "bad-padding",
          detail: "bad decrypt: wrong passphrase or key derivation",
        });
      }
      recycle(last);
      if (plain.length > 0) emit(plain);
    },
  };
}

/** `piece` and the {@linkcode BLOCK} scratch bytes after it, as one view. */
function withScratch(piece: Uint8Array): Uint8Array {
  return new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength + BLOCK);
}

/** CTR: a stream cipher without padding; slices stay block-aligned for the counter. */
function ctrBody(cipher: CtrCipher): CipherBody {
  let block = 0;
  return {
    async drain(pending, end, emit) {
      while (pending.length >= SLICE_BYTES || (end && pending.length > 0)) {
        const length = Math.min(SLICE_BYTES, pending.length);
        emit(await cipher.decryptAt(block, pending.take(length)));
        block += length / BLOCK;
      }
    },
  };
}

/** Whether `bytes` starts with `Salted__`, as every `openssl enc` output with a salt does. */
export function hasOpensslMagic(bytes: Uint8Array): boolean {
  return bytes.length >= OPENSSL_MAGIC.length &&
    OPENSSL_MAGIC.every((byte, index) => bytes[index] === byte);
}

/** The error for input that ends before, or does not begin with, a complete header. */
function headerError(bytes: Uint8Array): Error {
  const prefixOfMagic = bytes.length < OPENSSL_HEADER_LENGTH &&
    bytes.subarray(0, OPENSSL_MAGIC.length).every((byte, index) => OPENSSL_MAGIC[index] === byte);
  return prefixOfMagic
    ? new IncompleteError({
      reason: "truncated",
      detail: `ciphertext ends inside its "Salted__" header (${bytes.length} bytes)`,
    })
    : new DamagedError({
      reason: "damaged",
      detail: `not openssl enc data: it does not start with "Salted__"`,
    });
}

/** Placeholder for a taken piece. */
const NO_BYTES = new Uint8Array(0);

/** A queue of received byte pieces, taken from the front. */
class PendingBytes {
  #pieces: Uint8Array[] = [];
  /** Index of the first piece not yet taken (avoids `shift()` costs with many tiny pieces). */
  #head = 0;
  #length = 0;

  /** Total number of bytes held. */
  get length(): number {
    return this.#length;
  }

  /** The piece at the front (what is left of it), if any. */
  get first(): Uint8Array | undefined {
    return this.#pieces[this.#head];
  }

  /** Append a piece (kept by reference: received buffers belong to the receiver). */
  push(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.#pieces.push(piece);
    this.#length += piece.length;
  }

  /**
   * Remove the first `length` bytes and return them, followed by `room` spare bytes; a view into
   * the first piece when it holds them all and no room is asked for, else a new buffer.
   */
  take(length: number, room = 0): Uint8Array {
    const first = this.#pieces[this.#head];
    if (room === 0 && first !== undefined && first.length >= length) {
      this.#consume(length);
      return first.subarray(0, length);
    }
    const out = new Uint8Array(length + room);
    let filled = 0;
    while (filled < length) {
      const piece = this.#pieces[this.#head];
      if (piece === undefined) break;
      const count = Math.min(piece.length, length - filled);
      out.set(count === piece.length ? piece : piece.subarray(0, count), filled);
      filled += count;
      this.#consume(count);
    }
    return out;
  }

  /** Drop `count` bytes from the front; they must lie within the first piece. */
  #consume(count: number): void {
    const first = this.#pieces[this.#head];
    if (first === undefined) return;
    this.#length -= count;
    if (count < first.length) {
      this.#pieces[this.#head] = first.subarray(count);
      return;
    }
    this.#pieces[this.#head] = NO_BYTES; // Let the taken piece be collected.
    this.#head++;
    if (this.#head === this.#pieces.length) {
      this.#pieces = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#pieces.length) {
      this.#pieces = this.#pieces.slice(this.#head);
      this.#head = 0;
    }
  }
}
