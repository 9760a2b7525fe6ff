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
import { Piece } from "../streams/mod.ts";

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
 * chunks. Emits the plaintext in pieces of up to 4 MiB; the whole input is one cipher chain
 * (format 3 slices one ciphertext into many chunks: feed them in order). The PKCS#7 padding
 * of the last block is checked at the end of the input. This is the face for bytes the caller
 * lends (they are only read); the pipeline's chunk pieces go through
 * {@linkcode opensslDecryptPieces}, which decrypts a pooled piece where it lies.
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
    super(decryptTransformer(options, Piece.from, (piece) => piece.giveAway()));
  }
}

/**
 * {@linkcode OpensslDecryptStream} over pieces the stream owns: a pooled piece of whole blocks
 * (see `lib/streams/piece_pool.ts`) is decrypted where it lies, into the scratch room after
 * it, as one output piece, and recycled; every input piece is recycled once its bytes are
 * used. Output pieces are sole views of new buffers, which the next stage owns.
 *
 * @example
 * ```ts
 * const plain = chunkPieces.pipeThrough(opensslDecryptPieces({ password, digest: "md5" }));
 * ```
 */
export function opensslDecryptPieces(
  options: OpensslDecryptOptions,
): TransformStream<Piece, Piece> {
  return new TransformStream(
    decryptTransformer(options, (piece: Piece) => piece, (piece) => piece),
  );
}

/** The decryption of both faces: input made pieces by `take`, output pieces passed by `give`. */
function decryptTransformer<I, O>(
  options: OpensslDecryptOptions,
  take: (input: I) => Piece,
  give: (piece: Piece) => O,
): Transformer<I, O> {
  const cipher = opensslCipher(options.cipher ?? DEFAULT_OPENSSL_CIPHER);
  const pending = new PendingPieces();
  let body: CipherBody | undefined;
  return {
    async transform(chunk, controller) {
      pending.push(take(chunk));
      if (body === undefined) {
        if (pending.length < OPENSSL_HEADER_LENGTH) return;
        const header = pending.copy(OPENSSL_HEADER_LENGTH);
        body = await openBody(header, options.password, options.digest, cipher);
      }
      await body.drain(pending, false, (piece) => controller.enqueue(give(piece)));
    },
    async flush(controller) {
      if (body === undefined) throw headerError(pending.copy(pending.length));
      await body.drain(pending, true, (piece) => controller.enqueue(give(piece)));
    },
  };
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
  const pending = new PendingPieces();
  pending.push(Piece.from(data.subarray(OPENSSL_HEADER_LENGTH)));
  const out = new Uint8Array(pending.length);
  let written = 0;
  await body.drain(pending, true, (piece) => {
    out.set(piece.bytes, written);
    written += piece.length;
    piece.recycle();
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
  return (await (await CbcChain.create(key, iv)).decryptMiddle(framed)).giveAway();
}

/** The ciphertext after the header: decrypted slice by slice as bytes become available. */
interface CipherBody {
  /**
   * Decrypt what `pending` holds, keeping back what cannot be decrypted yet; with `end`, decrypt
   * everything and finish the chain. Each plaintext piece is passed to `emit`, which owns it.
   */
  drain(pending: PendingPieces, end: boolean, emit: (piece: Piece) => void): Promise<void>;
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
          first.scratch >= BLOCK
        ) {
          const piece = pending.take(first.length);
          emit(await chain.decryptMiddle(piece.withScratch(BLOCK)));
          piece.recycle();
        } else if (pending.length > SLICE_BYTES) {
          emit(await chain.decryptMiddle(pending.copy(SLICE_BYTES, BLOCK)));
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
      const plain = await chain.decryptEnd(last.bytes);
      if (plain === undefined) {
        throw new DamagedError({
          reason: "bad-padding",
          detail: "bad decrypt: wrong passphrase or key derivation",
        });
      }
      last.recycle();
      if (plain.length > 0) emit(Piece.sole(plain));
    },
  };
}

/** CTR: a stream cipher without padding; slices stay block-aligned for the counter. */
function ctrBody(cipher: CtrCipher): CipherBody {
  let block = 0;
  return {
    async drain(pending, end, emit) {
      while (pending.length >= SLICE_BYTES || (end && pending.length > 0)) {
        const length = Math.min(SLICE_BYTES, pending.length);
        const piece = pending.take(length);
        emit(Piece.sole(await cipher.decryptAt(block, piece.bytes)));
        piece.recycle();
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

/** A queue of received pieces, owned by the decryption and taken from the front. */
class PendingPieces {
  #pieces: Piece[] = [];
  /** Index of the first piece not yet taken (avoids `shift()` costs with many tiny pieces). */
  #head = 0;
  #length = 0;

  /** Total number of bytes held. */
  get length(): number {
    return this.#length;
  }

  /** The piece at the front (what is left of it), if any; it stays the queue's. */
  get first(): Piece | undefined {
    return this.#pieces[this.#head];
  }

  /** Appends a piece, which the queue now owns. */
  push(piece: Piece): void {
    if (piece.length === 0) return piece.recycle();
    this.#pieces.push(piece);
    this.#length += piece.length;
  }

  /**
   * Removes the first `length` bytes as a piece the caller owns: the first piece itself, a
   * part of it, or (when they span pieces) a copy, the pieces used up recycled.
   */
  take(length: number): Piece {
    const first = this.#pieces[this.#head];
    if (first === undefined || first.length < length) return Piece.sole(this.copy(length));
    if (first.length === length) {
      this.#shift();
      return first;
    }
    const [head, rest] = first.split(length);
    this.#pieces[this.#head] = rest;
    this.#length -= length;
    return head;
  }

  /**
   * Removes the first `length` bytes into a new buffer followed by `room` spare bytes; the
   * pieces they came from are recycled once used up.
   */
  copy(length: number, room = 0): Uint8Array {
    const out = new Uint8Array(length + room);
    let filled = 0;
    while (filled < length) {
      const piece = this.#pieces[this.#head];
      if (piece === undefined) break;
      const count = Math.min(piece.length, length - filled);
      if (count === piece.length) {
        out.set(piece.bytes, filled);
        this.#shift();
        piece.recycle();
      } else {
        const [used, rest] = piece.split(count);
        out.set(used.bytes, filled);
        this.#pieces[this.#head] = rest;
        this.#length -= count;
        used.recycle();
      }
      filled += count;
    }
    return out;
  }

  /** Drops the first piece from the queue (its owner is whoever took it). */
  #shift(): void {
    const first = this.#pieces[this.#head];
    if (first === undefined) return;
    this.#length -= first.length;
    this.#pieces[this.#head] = NO_PIECE; // Let the taken piece be collected.
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

/** Placeholder for a taken piece. */
const NO_PIECE = Piece.from(new Uint8Array(0));
