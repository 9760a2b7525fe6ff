/**
 * Chunk verification for formats 2 and 3: `.hmac` files written by
 * `openssl dgst -<ALG> -hmac <passphrase>` over each stored chunk.
 *
 * ```ts
 * const mac = new ChunkHmac(digestName(header.hmacAlgorithm), passphrase);
 * for await (const bytes of chunk) mac.update(bytes);
 * if (!hexDigestsEqual(mac.digestHex(), parseHmacFile(hmacFile))) {
 *   throw new DamagedError(`Cannot verify chunk "${name}": HMAC does not match`);
 * }
 * ```
 *
 * @module
 */

export {
  ChunkHmac,
  DEFAULT_HMAC_CANDIDATES,
  digestName,
  findHmacDigest,
  hexDigestsEqual,
  HMAC_FILE_MAX_SIZE,
  parseHmacFile,
} from "./hmac.ts";
