/**
 * OpenSSL's `EVP_BytesToKey` key derivation, as used by `openssl enc` without `-pbkdf2`
 * (spec §6.3).
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * Digest of the `openssl enc` key derivation: `md5` for every Qubes backup (OpenSSL 1.0.x),
 * `sha256` is the OpenSSL ≥ 1.1 default (trap T1).
 */
export type KdfDigest = "md5" | "sha256";

/**
 * Derive a key and IV the way `openssl enc` does: `D_1 = H(P ‖ S)`,
 * `D_i = H(D_{i-1} ‖ P ‖ S)`, key and IV taken in order from `D_1 ‖ D_2 ‖ …`; one iteration.
 *
 * @param digest The KDF digest.
 * @param password The passphrase bytes.
 * @param salt The 8-byte salt from the `Salted__` header.
 * @param keyLength The cipher's key length in bytes (32 for AES-256).
 * @param ivLength The cipher's IV length in bytes (16 for AES-CBC).
 * @returns The key and the IV.
 *
 * @example
 * ```ts
 * const enc = new TextEncoder();
 * const { key, iv } = evpBytesToKey("md5", enc.encode("qubes"), salt, 32, 16);
 * ```
 */
export function evpBytesToKey(
  digest: KdfDigest,
  password: Uint8Array,
  salt: Uint8Array,
  keyLength: number,
  ivLength: number,
): { key: Uint8Array; iv: Uint8Array } {
  const material = new Uint8Array(keyLength + ivLength);
  let filled = 0;
  let previous: Uint8Array = new Uint8Array(0);
  while (filled < material.length) {
    const hash = createHash(digest);
    hash.update(previous).update(password).update(salt);
    previous = new Uint8Array(hash.digest());
    const take = Math.min(previous.length, material.length - filled);
    material.set(previous.subarray(0, take), filled);
    filled += take;
  }
  return { key: material.slice(0, keyLength), iv: material.slice(keyLength) };
}
