/**
 * Decryption of Tarsnap scrypt files, the chunk format of backup format 4 (spec §11.3):
 *
 * | offset | length | content |
 * |---|---|---|
 * | 0 | 6 | `scrypt` |
 * | 6 | 1 | version 0 |
 * | 7 | 1 | logN |
 * | 8 | 4 | r, big-endian |
 * | 12 | 4 | p, big-endian |
 * | 16 | 32 | salt |
 * | 48 | 16 | first half of SHA-256 of bytes 0..47 |
 * | 64 | 32 | HMAC-SHA256 of bytes 0..63 (the passphrase check) |
 * | 96 | n | AES-256-CTR ciphertext |
 * | 96+n | 32 | HMAC-SHA256 of bytes 0..95+n |
 *
 * @module
 */

import { createHash, createHmac, scrypt, timingSafeEqual } from "node:crypto";
import { DamagedError, PassphraseError, UnsupportedError } from "../errors.ts";
import { CtrCipher } from "./_aes.ts";

/** The ASCII magic `scrypt` that starts every scrypt file. */
export const SCRYPT_MAGIC: Uint8Array = new TextEncoder().encode("scrypt");

/** Length of the header, up to and including the passphrase check. */
export const SCRYPT_HEADER_LENGTH = 96;

/** Length of the trailing HMAC. */
const TRAILER_LENGTH = 32;

/** Largest logN accepted (N = 2^24). */
export const SCRYPT_MAX_LOG_N = 24;

/** Largest scrypt memory accepted: 128·r·N bytes. */
export const SCRYPT_MAX_MEMORY = 4 * 1024 ** 3;

/** Largest scrypt work accepted, 128·r·N·p (bytes of memory-hard mixing, about 5 minutes). */
export const SCRYPT_MAX_WORK = 64 * 1024 ** 3;

/** The key derivation parameters of a scrypt file. */
export interface ScryptParams {
  /** Base-2 logarithm of the CPU/memory cost N. */
  logN: number;
  /** Block size r. */
  r: number;
  /** Parallelisation p. */
  p: number;
  /** The 32-byte salt. */
  salt: Uint8Array;
}

/** The keys derived from the passphrase: AES-256-CTR key and HMAC-SHA256 key. */
export interface ScryptKeys {
  /** The AES-256 key (first half of the scrypt output). */
  encKey: Uint8Array;
  /** The HMAC-SHA256 key (second half of the scrypt output). */
  hmacKey: Uint8Array;
}

/**
 * Parse and check the 96-byte header of a scrypt file: magic, version 0, header checksum, and
 * parameters within limits that never hang or exhaust memory.
 *
 * @param data The file, or at least its first 96 bytes.
 * @returns The key derivation parameters.
 * @throws {DamagedError} Not a scrypt file: short input, bad magic, bad checksum, zero parameters.
 * @throws {UnsupportedError} Another format version, or parameters beyond the limits
 *   (logN > 24, 128·r·N > 4 GiB, 128·r·N·p > 64 GiB, r·p ≥ 2^30).
 *
 * @example
 * ```ts
 * const { logN, r, p } = parseScryptHeader(chunk);
 * ```
 */
export function parseScryptHeader(data: Uint8Array): ScryptParams {
  if (!SCRYPT_MAGIC.every((byte, index) => data[index] === byte)) {
    throw new DamagedError({
      reason: "damaged",
      detail: `not a scrypt file: it does not start with "scrypt"`,
    });
  }
  if (data.length < SCRYPT_HEADER_LENGTH) {
    throw new DamagedError({
      reason: "damaged",
      detail: `scrypt file is truncated: ${data.length} bytes, shorter than its header`,
    });
  }
  const version = data[6] ?? 0;
  if (version !== 0) {
    throw new UnsupportedError({
      reason: "unsupported",
      detail: `scrypt format version ${version} is not supported`,
    });
  }
  const checksum = createHash("sha256").update(data.subarray(0, 48)).digest().subarray(0, 16);
  if (!timingSafeEqual(checksum, data.subarray(48, 64))) {
    throw new DamagedError({
      reason: "damaged",
      detail: "not a scrypt file: header checksum does not match",
    });
  }
  const view = new DataView(data.buffer, data.byteOffset, SCRYPT_HEADER_LENGTH);
  const logN = data[7] ?? 0;
  const r = view.getUint32(8);
  const p = view.getUint32(12);
  const values = `logN=${logN}, r=${r}, p=${p}`;
  if (logN < 1 || logN > 63 || r === 0 || p === 0) {
    throw new DamagedError({
      reason: "damaged",
      detail: `not a scrypt file: invalid parameters ${values}`,
    });
  }
  if (logN > SCRYPT_MAX_LOG_N) {
    throw new UnsupportedError({
      reason: "too-costly",
      detail: `scrypt cost logN=${logN} is beyond the supported limit of ${SCRYPT_MAX_LOG_N}`,
    });
  }
  if (r * p >= 2 ** 30) {
    throw new UnsupportedError({
      reason: "too-costly",
      detail: `scrypt parameters ${values} are beyond the limit r*p < 2^30`,
    });
  }
  const memory = 128 * r * 2 ** logN;
  if (memory > SCRYPT_MAX_MEMORY) {
    throw new UnsupportedError({
      reason: "too-costly",
      detail: `scrypt memory ${gib(memory)} (${values}) is beyond the supported limit of ${
        gib(SCRYPT_MAX_MEMORY)
      }`,
    });
  }
  if (memory * p > SCRYPT_MAX_WORK) {
    throw new UnsupportedError({
      reason: "too-costly",
      detail: `scrypt work ${gib(memory * p)} (${values}) is beyond the supported limit of ${
        gib(SCRYPT_MAX_WORK)
      }`,
    });
  }
  return { logN, r, p, salt: data.slice(16, 48) };
}

/**
 * Derive the file keys: `dk = scrypt(password, salt, N, r, p, 64)`, encryption key `dk[0..31]`,
 * HMAC key `dk[32..63]`. Runs on node:crypto's thread pool (in Deno 2.9 the event loop keeps
 * running and several derivations proceed in parallel); a pure function of its inputs, so it
 * also works inside a Worker.
 *
 * @param password The scrypt password bytes (format 4: `<id>!<name>!<passphrase>`).
 * @param params The parameters from {@linkcode parseScryptHeader}.
 * @returns The two 32-byte keys.
 * @throws {UnsupportedError} When node:crypto refuses the parameters (it requires N < 2^(16·r)).
 *
 * @example
 * ```ts
 * const keys = await deriveScryptKeys(password, parseScryptHeader(chunk));
 * ```
 */
export function deriveScryptKeys(password: Uint8Array, params: ScryptParams): Promise<ScryptKeys> {
  const { logN, r, p, salt } = params;
  const N = 2 ** logN;
  // node:crypto counts the mixing buffer 128·r·(N+2) and the p blocks of 128·r bytes.
  const maxmem = 128 * r * (N + 2) + 128 * r * p + 1024 * 1024;
  const refused = (error: unknown) =>
    new UnsupportedError({
      reason: "too-costly",
      detail: `scrypt parameters logN=${logN}, r=${r}, p=${p} cannot be computed: ${
        error instanceof Error ? error.message : String(error)
      }`,
    }, { cause: error });
  return new Promise((resolve, reject) => {
    try {
      scrypt(password, salt, 64, { N, r, p, maxmem }, (error, dk) => {
        if (error !== null) {
          reject(refused(error));
          return;
        }
        resolve({
          encKey: new Uint8Array(dk.subarray(0, 32)),
          hmacKey: new Uint8Array(dk.subarray(32)),
        });
      });
    } catch (error) {
      reject(refused(error));
    }
  });
}

/**
 * Decrypt a whole scrypt file: check the passphrase against the header HMAC, check the trailing
 * HMAC over everything before it, and only then decrypt (AES-256-CTR, counter = zero-based
 * 128-bit big-endian block number). Nothing is returned unless the file is authentic.
 *
 * @param data The whole file.
 * @param password The scrypt password bytes.
 * @param keys Keys already derived from `password` and this file's header, e.g. in parallel
 *   for upcoming chunks; derived here when absent.
 * @returns The plaintext.
 * @throws {PassphraseError} "passphrase is incorrect": the header HMAC does not match (a wrong
 *   passphrase, or a wrong backup id or chunk name in the password).
 * @throws {DamagedError} Not a scrypt file, truncated, or the trailing HMAC does not match.
 * @throws {UnsupportedError} See {@linkcode parseScryptHeader}.
 *
 * @example
 * ```ts
 * const plain = await decryptScryptFile(chunk, new TextEncoder().encode(`${id}!${name}!${pass}`));
 * ```
 */
export async function decryptScryptFile(
  data: Uint8Array,
  password: Uint8Array,
  keys?: ScryptKeys,
): Promise<Uint8Array> {
  const params = parseScryptHeader(data);
  const minimum = SCRYPT_HEADER_LENGTH + TRAILER_LENGTH;
  if (data.length < minimum) {
    throw new DamagedError({
      reason: "damaged",
      detail: `scrypt file is truncated: ${data.length} bytes, at least ${minimum}`,
    });
  }
  const { encKey, hmacKey } = keys ?? await deriveScryptKeys(password, params);
  const headerMac = createHmac("sha256", hmacKey).update(data.subarray(0, 64)).digest();
  if (!timingSafeEqual(headerMac, data.subarray(64, SCRYPT_HEADER_LENGTH))) {
    throw new PassphraseError({ reason: "wrong-passphrase", detail: "passphrase is incorrect" });
  }
  const end = data.length - TRAILER_LENGTH;
  const fileMac = createHmac("sha256", hmacKey).update(data.subarray(0, end)).digest();
  if (!timingSafeEqual(fileMac, data.subarray(end))) {
    throw new DamagedError({ reason: "hmac-mismatch", detail: "HMAC does not match" });
  }
  const cipher = await CtrCipher.create(encKey, new Uint8Array(16));
  return await cipher.decryptAll(data.subarray(SCRYPT_HEADER_LENGTH, end));
}

/** Bytes as GiB for messages. */
function gib(bytes: number): string {
  return `${Number((bytes / 1024 ** 3).toFixed(2))} GiB`;
}
