/**
 * AES-CBC and AES-CTR decryption in slices through WebCrypto, which is several times faster
 * in Deno than node:crypto's `createDecipheriv` (about 2 GB/s against 300 MB/s on 4 MiB
 * slices). Private helper of `lib/crypto/`.
 *
 * @module
 */

import { Piece } from "../streams/mod.ts";

/** AES block size in bytes. */
export const BLOCK = 16;

/** Bytes handed to WebCrypto per call: large calls are slower, small ones cost per call. */
export const SLICE_BYTES = 4 * 1024 * 1024;

/** An empty plaintext: its AES-CBC encryption is one block of PKCS#7 padding. */
const EMPTY = new Uint8Array(0);

/**
 * One AES-CBC chain decrypted in consecutive slices. WebCrypto always checks and strips PKCS#7
 * padding, so a slice that is not the end of the chain gets one extra block appended: the
 * encryption of a full padding block chained on the slice's last ciphertext block, which then
 * decrypts to exactly that padding block and is stripped.
 */
export class CbcChain {
  #key: CryptoKey;
  #iv: Uint8Array;

  private constructor(key: CryptoKey, iv: Uint8Array) {
    this.#key = key;
    this.#iv = iv;
  }

  /** Start a chain with a raw AES key (16, 24 or 32 bytes) and a 16-byte IV. */
  static async create(key: Uint8Array, iv: Uint8Array): Promise<CbcChain> {
    const cryptoKey = await crypto.subtle.importKey(
      "raw",
      toArrayBufferView(key),
      "AES-CBC",
      false,
      [
        "encrypt",
        "decrypt",
      ],
    );
    return new CbcChain(cryptoKey, iv.slice());
  }

  /**
   * Decrypt the next slice, which is not the end of the chain (no padding is checked).
   *
   * @param framed The slice's ciphertext (a positive multiple of 16 bytes) followed by 16
   *   scratch bytes that this call overwrites; owned by this call.
   * @returns The plaintext, as long as the ciphertext: a sole piece of a new buffer, which
   *   the caller owns (recycling it frees the memory at once).
   */
  async decryptMiddle(framed: Uint8Array): Promise<Piece> {
    const length = framed.length - BLOCK;
    const iv = this.#iv;
    const last = framed.slice(length - BLOCK, length);
    this.#iv = last;
    const pad = await crypto.subtle.encrypt({ name: "AES-CBC", iv: last }, this.#key, EMPTY);
    framed.set(new Uint8Array(pad), length);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-CBC", iv: toArrayBufferView(iv) },
      this.#key,
      toArrayBufferView(framed),
    );
    return Piece.sole(new Uint8Array(plain));
  }

  /**
   * Decrypt the last slice of the chain and strip its PKCS#7 padding.
   *
   * @param ciphertext A positive multiple of 16 bytes ending with the padded block.
   * @returns The plaintext without padding, or `undefined` when the padding is invalid (a
   *   wrong key, or damaged data).
   */
  async decryptEnd(ciphertext: Uint8Array): Promise<Uint8Array | undefined> {
    const iv = this.#iv;
    this.#iv = ciphertext.slice(ciphertext.length - BLOCK);
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-CBC", iv: toArrayBufferView(iv) },
        this.#key,
        toArrayBufferView(ciphertext),
      );
      return new Uint8Array(plain);
    } catch {
      return undefined;
    }
  }
}

/** AES-CTR keystream with a 128-bit big-endian counter, decrypted at any block position. */
export class CtrCipher {
  #key: CryptoKey;
  #counter: Uint8Array;

  private constructor(key: CryptoKey, counter: Uint8Array) {
    this.#key = key;
    this.#counter = counter;
  }

  /** Prepare a raw AES key (16, 24 or 32 bytes) with the counter block of block 0. */
  static async create(key: Uint8Array, initialCounter: Uint8Array): Promise<CtrCipher> {
    const cryptoKey = await crypto.subtle.importKey(
      "raw",
      toArrayBufferView(key),
      "AES-CTR",
      false,
      [
        "decrypt",
      ],
    );
    return new CtrCipher(cryptoKey, initialCounter.slice());
  }

  /**
   * Decrypt `data` that starts at keystream block `blockIndex`; any length.
   *
   * @returns A new buffer with the plaintext.
   */
  async decryptAt(blockIndex: number, data: Uint8Array): Promise<Uint8Array> {
    const counter = addToCounter(this.#counter, blockIndex);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-CTR", counter, length: 128 },
      this.#key,
      toArrayBufferView(data),
    );
    return new Uint8Array(plain);
  }

  /**
   * Decrypt a whole buffer that starts at keystream block 0, slice by slice, into one buffer.
   *
   * @returns A new buffer with the plaintext.
   */
  async decryptAll(data: Uint8Array): Promise<Uint8Array> {
    if (data.length <= SLICE_BYTES) return await this.decryptAt(0, data);
    const out = new Uint8Array(data.length);
    for (let offset = 0; offset < data.length; offset += SLICE_BYTES) {
      const piece = data.subarray(offset, offset + SLICE_BYTES);
      out.set(await this.decryptAt(offset / BLOCK, piece), offset);
    }
    return out;
  }
}

/** `counter + n` as a 128-bit big-endian number, wrapping like OpenSSL's CTR mode. */
function addToCounter(counter: Uint8Array, n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(BLOCK);
  out.set(counter);
  let carry = n;
  for (let i = BLOCK - 1; i >= 0 && carry > 0; i--) {
    const sum = (out[i] ?? 0) + (carry % 256);
    out[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum >> 8);
  }
  return out;
}

/** WebCrypto takes ArrayBuffer-backed views only: copy the rare SharedArrayBuffer-backed one. */
function toArrayBufferView(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : bytes.slice();
}
