/**
 * Authenticating the `backup-header` before it is parsed: with its `.hmac` (formats 2, 3; the
 * digest is found by trying the ones Qubes could have used, as the official restore did), or
 * with its scrypt-encrypted twin (format 4).
 *
 * @module
 */

import { decryptScryptFile, parseScryptHeader, SCRYPT_MAGIC } from "../crypto/mod.ts";
import { DamagedError, IncompleteError, PassphraseError } from "../errors.ts";
import type { OuterEntry } from "../outer/mod.ts";
import { concat } from "../streams/mod.ts";
import { findHmacDigest, parseHmacFile } from "../verify/mod.ts";
import type { EntryQueue } from "./entry_queue.ts";
import { type BackupHeader, MAX_HEADER_SIZE, parseBackupHeader } from "./header.ts";
import { ScryptPolicy } from "./scrypt_cost.ts";

const HEADER_DIGESTS = ["sha512", "sha1", "sha256", "sha384", "sha224", "md5", "ripemd160"];

async function readSmall(entry: OuterEntry, limit: number): Promise<Uint8Array> {
  if (entry.size > limit) {
    throw new DamagedError({
      reason: "too-large",
      action: "read",
      subject: { kind: "entry", name: entry.name },
      detail: `it is ${entry.size} bytes long`,
    });
  }
  return await entry.read();
}

/** Whether `bytes` start like a Tarsnap scrypt file (format 4's `backup-header.hmac`). */
function isScryptFile(bytes: Uint8Array): boolean {
  return bytes.length >= SCRYPT_MAGIC.length && SCRYPT_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Reads `backup-header` and `backup-header.hmac` (the next two entries), authenticates the
 * header and parses it.
 *
 * @throws {PassphraseError} When the passphrase does not authenticate the header.
 * @throws {DamagedError | IncompleteError} When the header or its authentication is damaged or missing.
 */
export async function readHeader(
  queue: EntryQueue,
  passphrase: Uint8Array,
  scrypt: ScryptPolicy = new ScryptPolicy(),
): Promise<BackupHeader> {
  const headerEntry = (await queue.next())!;
  const headerBytes = await readSmall(headerEntry, MAX_HEADER_SIZE);
  const hmacEntry = await queue.next();
  if (hmacEntry?.name !== "backup-header.hmac") {
    throw new IncompleteError({
      reason: "missing",
      action: "verify",
      subject: { kind: "entry", name: "backup-header" },
      detail: `"backup-header.hmac" is missing`,
    });
  }
  const hmacBytes = await readSmall(hmacEntry, MAX_HEADER_SIZE);
  if (isScryptFile(hmacBytes)) {
    let authentic: Uint8Array;
    const params = parseScryptHeader(hmacBytes);
    scrypt.checkHeader(hmacEntry.name, params);
    try {
      const password = concat([new TextEncoder().encode("backup-header!"), passphrase]);
      authentic = await decryptScryptFile(hmacBytes, password);
      scrypt.headerAuthenticated(params);
    } catch (error) {
      if (error instanceof PassphraseError) {
        throw new PassphraseError({
          reason: "wrong-passphrase",
          action: "open the backup",
          detail: `wrong passphrase or damaged header ("backup-header.hmac" does not decrypt)`,
        }, { cause: error });
      }
      throw error;
    }
    if (authentic.length !== headerBytes.length || authentic.some((b, i) => b !== headerBytes[i])) {
      throw new DamagedError({
        reason: "hmac-mismatch",
        action: "verify",
        subject: { kind: "entry", name: "backup-header" },
        detail: `it differs from its authenticated copy in "backup-header.hmac"`,
      });
    }
    const header = parseBackupHeader(authentic);
    if (header.version !== 4 || !header.backupId) {
      throw new DamagedError({
        reason: "damaged",
        action: "read",
        subject: { kind: "entry", name: "backup-header" },
        detail: "an scrypt-protected header must be version 4 with a backup-id",
      });
    }
    return header;
  }
  const expected = parseHmacFile(hmacBytes);
  if (findHmacDigest(headerBytes, passphrase, expected, HEADER_DIGESTS) === undefined) {
    throw new PassphraseError({
      reason: "wrong-passphrase",
      action: "open the backup",
      detail: `wrong passphrase or damaged header ("backup-header.hmac" does not match)`,
    });
  }
  const header = parseBackupHeader(headerBytes);
  if (header.version === 4) {
    throw new DamagedError({
      reason: "damaged",
      action: "read",
      subject: { kind: "entry", name: "backup-header" },
      detail: "version 4 needs an scrypt-protected header",
    });
  }
  return header;
}
