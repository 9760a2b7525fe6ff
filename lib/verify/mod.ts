/**
 * Chunk verification for formats 2 and 3: `.hmac` files written by
 * `openssl dgst -<ALG> -hmac <passphrase>` over each stored chunk.
 *
 * ```ts
 * const mac = await OffThreadHmac.create(digestName(header.hmacAlgorithm), passphrase);
 * for (const piece of pieces) mac.update(piece);
 * if (!hexDigestsEqual((await mac.finish()).hex, parseHmacFile(hmacFile))) {
 *   throw new DamagedError({
 *     reason: "hmac-mismatch",
 *     action: "verify chunk",
 *     subject: { kind: "chunk", name },
 *     detail: "HMAC does not match",
 *   });
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
  parseHmacFile,
} from "./hmac.ts";
export { OffThreadHmac, startHmacWorker, useHmacWorker } from "./off_thread_hmac.ts";
export { type ChunkComparison, WrittenChunks } from "./written_chunks.ts";
