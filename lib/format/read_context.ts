/**
 * What the stages of formats 2 and 3 share about one opened backup: the passphrase, the
 * verified header, and two facts that the data settles while it is read: the HMAC digest of a
 * header-less (R2-beta3) backup, found by its first chunk, and the key derivation digest (MD5
 * or SHA-256), found by the first encrypted chunk. Each is settled once, through a method.
 *
 * @module
 */

import { DEFAULT_OPENSSL_CIPHER, type KdfDigest } from "../crypto/mod.ts";
import type { WrittenChunks } from "../verify/mod.ts";
import type { BackupHeader } from "./header.ts";

/** Notices the context gives when something is settled or cannot be checked. */
export interface ReadContextEvents {
  /** Told once, when the key derivation digest has been found. */
  onKdf?: (kdf: KdfDigest) => void;
  /** Told what could not be checked (a warning for the user). */
  onUnchecked?: (message: string) => void;
}

/** The passphrase, header and settled digests of one backup being read. */
export class ReadContext {
  #hmacDigest: string | undefined;
  #kdf: KdfDigest | undefined;
  #events: ReadContextEvents;

  /**
   * @param passphrase The passphrase bytes (the HMAC key and the `openssl enc` password).
   * @param header The verified header, or undefined (R2-beta3).
   * @param hmacDigest The node:crypto digest of the chunk HMACs when the header names it.
   * @param events Notices.
   * @param writtenChunks Chunks compared byte for byte with what their writer hashed instead
   *   of hashed again (`OpenOptions.writtenChunks`).
   */
  constructor(
    readonly passphrase: Uint8Array,
    readonly header: BackupHeader | undefined,
    hmacDigest: string | undefined,
    events: ReadContextEvents = {},
    readonly writtenChunks?: WrittenChunks,
  ) {
    this.#hmacDigest = hmacDigest;
    this.#events = events;
  }

  /** The chunk HMAC digest; undefined until the first chunk of a header-less backup settles it. */
  get hmacDigest(): string | undefined {
    return this.#hmacDigest;
  }

  /** Records the digest the first chunk's `.hmac` was found to use. */
  settleHmacDigest(digest: string): void {
    if (this.#hmacDigest !== undefined && this.#hmacDigest !== digest) {
      throw new Error(`HMAC digest already settled as ${this.#hmacDigest}`);
    }
    this.#hmacDigest = digest;
  }

  /** The key derivation digest; undefined until the first encrypted chunk settles it. */
  get kdf(): KdfDigest | undefined {
    return this.#kdf;
  }

  /** Records the key derivation digest the first encrypted chunk was found to use. */
  settleKdf(kdf: KdfDigest): void {
    if (this.#kdf === kdf) return;
    if (this.#kdf !== undefined) throw new Error(`Key derivation already settled as ${this.#kdf}`);
    this.#kdf = kdf;
    this.#events.onKdf?.(kdf);
  }

  /** The `openssl enc` cipher: the header's, else the one Qubes always used. */
  get cipher(): string {
    return this.header?.cryptoAlgorithm ?? DEFAULT_OPENSSL_CIPHER;
  }

  /** Tells the user what could not be checked. */
  unchecked(message: string): void {
    this.#events.onUnchecked?.(message);
  }
}
