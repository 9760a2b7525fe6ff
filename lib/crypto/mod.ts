/**
 * Decryption stages: `openssl enc` output (formats 2 and 3, key and IV from OpenSSL's
 * `EVP_BytesToKey`) and Tarsnap scrypt files (format 4).
 *
 * ```ts
 * const plain = chunks.pipeThrough(new OpensslDecryptStream({ password, digest: "md5" }));
 * const volume = await decryptOpensslBuffer(chunk, password, "md5");
 * const data = await decryptScryptFile(encChunk, scryptPassword);
 * ```
 *
 * @module
 */

export { CbcChain } from "./_aes.ts";
export { evpBytesToKey, type KdfDigest } from "./evp_bytes_to_key.ts";
export {
  decryptOpensslBuffer,
  DEFAULT_OPENSSL_CIPHER,
  hasOpensslMagic,
  OPENSSL_HEADER_LENGTH,
  OPENSSL_MAGIC,
  type OpensslCipher,
  opensslCipher,
  type OpensslDecryptOptions,
  opensslDecryptPieces,
  OpensslDecryptStream,
  peekOpensslPlaintext,
} from "./openssl_enc.ts";
export {
  decryptScryptFile,
  deriveScryptKeys,
  parseScryptHeader,
  SCRYPT_HEADER_LENGTH,
  SCRYPT_MAGIC,
  SCRYPT_MAX_LOG_N,
  SCRYPT_MAX_MEMORY,
  SCRYPT_MAX_WORK,
  type ScryptKeys,
  type ScryptParams,
} from "./scrypt_file.ts";
