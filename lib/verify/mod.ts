/**
 * Chunk verification for formats 2 and 3: `.hmac` files written by
 * `openssl dgst -<ALG> -hmac <passphrase>` over each stored chunk.
 *
 * ```ts
 * const mac = await hmacHex(digestName(header.hmacAlgorithm), passphrase, chunk);
 * if (!hexDigestsEqual(mac, parseHmacFile(hmacFile))) {
 *   throw new DamagedError(`Cannot verify chunk "${name}": HMAC does not match`);
 * }
 * ```
 *
 * @module
 */

export {
  DEFAULT_HMAC_CANDIDATES,
  digestName,
  findHmacDigest,
  hexDigestsEqual,
  HMAC_FILE_MAX_SIZE,
  hmacHex,
  parseHmacFile,
} from "./hmac.ts";
export { OffThreadHmac, useHmacWorker } from "./off_thread_hmac.ts";
