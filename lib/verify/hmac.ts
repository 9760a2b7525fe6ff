/**
 * HMAC verification of format 2 and 3 chunks against their `.hmac` files (spec §4).
 *
 * The `.hmac` files were written by `openssl dgst -<ALG> -hmac <passphrase>`, keyed with the
 * passphrase bytes, over the chunk bytes exactly as stored (encrypt-then-MAC).
 *
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { DamagedError, UnsupportedError } from "../errors.ts";

/** Largest `.hmac` file accepted, as in the official client (`HMAC_MAX_SIZE`). */
export const HMAC_FILE_MAX_SIZE = 4096;

/** Digests tried, in this order, when a backup does not name its HMAC digest. */
export const DEFAULT_HMAC_CANDIDATES: readonly string[] = ["sha512", "sha1", "sha256", "md5"];

/** OpenSSL digest names (upper-cased, `-` and `_` removed) mapped to node:crypto names. */
const DIGEST_NAMES: Readonly<Record<string, string>> = {
  MD5: "md5",
  SHA: "sha1",
  SHA1: "sha1",
  SHA224: "sha224",
  SHA256: "sha256",
  SHA384: "sha384",
  SHA512: "sha512",
  SHA2224: "sha224",
  SHA2256: "sha256",
  SHA2384: "sha384",
  SHA2512: "sha512",
  SHA512224: "sha512-224",
  SHA512256: "sha512-256",
  SHA2512224: "sha512-224",
  SHA2512256: "sha512-256",
  SHA3224: "sha3-224",
  SHA3256: "sha3-256",
  SHA3384: "sha3-384",
  SHA3512: "sha3-512",
  RIPEMD: "ripemd160",
  RIPEMD160: "ripemd160",
  RMD160: "ripemd160",
  BLAKE2B512: "blake2b512",
  BLAKE2S256: "blake2s256",
};

/**
 * Map an `hmac-algorithm` header value (an OpenSSL digest name, any case, with or without `-`)
 * to the node:crypto digest name.
 *
 * @param headerValue The header value, e.g. `"SHA512"`, `"sha-512"`, `"MD5"`.
 * @returns The node:crypto name, e.g. `"sha512"`.
 * @throws {UnsupportedError} When node:crypto cannot compute an HMAC with that digest.
 *
 * @example
 * ```ts
 * digestName("SHA-512"); // "sha512"
 * ```
 */
export function digestName(headerValue: string): string {
  const key = headerValue.trim().toUpperCase().replace(/[-_]/g, "");
  const name = DIGEST_NAMES[key];
  if (name !== undefined) {
    try {
      createHmac(name, "");
      return name;
    } catch {
      // Falls through: this runtime lacks the digest.
    }
  }
  throw new UnsupportedError({
    reason: "unsupported",
    detail: `HMAC algorithm "${headerValue}" is not supported`,
  });
}

/**
 * Parse the text of a `.hmac` file: `(stdin)= <hex>` (OpenSSL 1.0.x, what Qubes wrote), or
 * newer forms like `HMAC-SHA512(stdin)= <hex>`. Takes the text after the last `=` (the whole
 * text when there is none), trimmed.
 *
 * @param bytes The `.hmac` file contents.
 * @returns The digest as lower-case hex.
 * @throws {DamagedError} When the file is larger than 4096 bytes, not ASCII, or the digest is
 *   empty or not hex.
 *
 * @example
 * ```ts
 * parseHmacFile(new TextEncoder().encode("(stdin)= AB12\n")); // "ab12"
 * ```
 */
export function parseHmacFile(bytes: Uint8Array): string {
  if (bytes.length > HMAC_FILE_MAX_SIZE) {
    throw new DamagedError({
      reason: "too-large",
      detail:
        `HMAC file is too large: ${bytes.length} bytes, at most ${HMAC_FILE_MAX_SIZE} expected`,
    });
  }
  for (const byte of bytes) {
    if (byte > 0x7f) {
      throw new DamagedError({ reason: "damaged", detail: "HMAC file is not ASCII text" });
    }
  }
  const text = new TextDecoder().decode(bytes);
  const hex = text.slice(text.lastIndexOf("=") + 1).trim();
  if (!/^[0-9a-fA-F]+$/.test(hex)) {
    throw new DamagedError({
      reason: "damaged",
      detail: `HMAC file holds no hexadecimal digest: "${hex.slice(0, 40)}"`,
    });
  }
  return hex.toLowerCase();
}

/**
 * Compare two hex digests case-insensitively in constant time.
 *
 * @returns `true` when equal; `false` when they differ, including in length.
 *
 * @example
 * ```ts
 * hexDigestsEqual("AB12", "ab12"); // true
 * ```
 */
export function hexDigestsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const encoder = new TextEncoder();
  return timingSafeEqual(encoder.encode(a.toLowerCase()), encoder.encode(b.toLowerCase()));
}

/**
 * Find which digest makes `expectedHex` the HMAC of `data`: used for the backup header (whose
 * `.hmac` must be checked before the header naming the digest can be trusted) and for
 * header-less R2-beta3 backups (spec §3.5, trap T5).
 *
 * @param data The protected bytes.
 * @param key The HMAC key (the passphrase bytes).
 * @param expectedHex The digest from the `.hmac` file.
 * @param candidates node:crypto digest names to try, in order.
 * @returns The matching digest name, or `undefined` when none matches.
 *
 * @example
 * ```ts
 * const digest = findHmacDigest(header, passphrase, parseHmacFile(hmacFile));
 * ```
 */
export function findHmacDigest(
  data: Uint8Array,
  key: Uint8Array,
  expectedHex: string,
  candidates: readonly string[] = DEFAULT_HMAC_CANDIDATES,
): string | undefined {
  for (const digest of candidates) {
    // A digest of another length cannot match: skip hashing the data with it.
    if (createHmac(digest, "").digest().length * 2 !== expectedHex.length) continue;
    const actual = createHmac(digest, key).update(data).digest("hex");
    if (hexDigestsEqual(actual, expectedHex)) return digest;
  }
  return undefined;
}
