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
import { type BackupHeader, defaultHeader, MAX_HEADER_SIZE, parseBackupHeader } from "./header.ts";
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
      if (error instanceof PassphraseError) throw wrongPassphrase("decrypt", error);
      throw error;
    }
    if (!sameBytes(authentic, headerBytes)) {
      throw headerMismatch(`it differs from its authenticated copy in "backup-header.hmac"`);
    }
    return checkVersion(parseBackupHeader(authentic), true);
  }
  const expected = parseHmacFile(hmacBytes);
  if (findHmacDigest(headerBytes, passphrase, expected, HEADER_DIGESTS) === undefined) {
    throw wrongPassphrase("match");
  }
  return checkVersion(parseBackupHeader(headerBytes), false);
}

/** The error of a `backup-header.hmac` that does not decrypt (format 4) or match (2, 3). */
function wrongPassphrase(does: "decrypt" | "match", cause?: unknown): PassphraseError {
  return new PassphraseError({
    reason: "wrong-passphrase",
    action: "open the backup",
    detail: `wrong passphrase or damaged header ("backup-header.hmac" does not ${does})`,
  }, cause === undefined ? undefined : { cause });
}

/** The error of a `backup-header` that its `.hmac` does not authenticate (`detail` says how). */
function headerMismatch(detail: string): DamagedError {
  return new DamagedError({
    reason: "hmac-mismatch",
    action: "verify",
    subject: { kind: "entry", name: "backup-header" },
    detail,
  });
}

/**
 * An authenticated header whose version fits how it was authenticated: by its scrypt twin
 * (`scrypt`: version 4 with a backup id) or by an HMAC (versions 2 and 3).
 *
 * @throws {DamagedError} Otherwise.
 */
function checkVersion(header: BackupHeader, scrypt: boolean): BackupHeader {
  const wrong = scrypt
    ? header.version !== 4 || !header.backupId
      ? "an scrypt-protected header must be version 4 with a backup-id"
      : undefined
    : header.version === 4
    ? "version 4 needs an scrypt-protected header"
    : undefined;
  if (wrong === undefined) return header;
  throw new DamagedError({
    reason: "damaged",
    action: "read",
    subject: { kind: "entry", name: "backup-header" },
    detail: wrong,
  });
}

/** A `backup-header` read by {@linkcode readHeaderTolerant}. */
export interface HeaderReading {
  /** The header: authenticated, or (with `damage`) the format's defaults. */
  header: BackupHeader;
  /**
   * Whether the passphrase is proven already (an authenticated header); otherwise the first
   * chunk that verifies proves it (the chunk HMAC, or format 4's scrypt authentication).
   */
  proven: boolean;
  /** What is wrong with `backup-header` or its `.hmac`, when they are damaged or missing. */
  damage?: DamagedError | IncompleteError;
  /**
   * When not `proven`: the error {@linkcode readHeader} gives, to be thrown when the first
   * chunk does not prove the passphrase either.
   */
  refusal?: PassphraseError | IncompleteError;
}

/**
 * Reads the header like {@linkcode readHeader}, but a damaged or missing `backup-header` (or
 * `.hmac`) does not end the opening: format 4 takes the authentic copy in its scrypt file
 * when that decrypts; otherwise the format's defaults stand in (`defaultHeader`; only the
 * version is taken from the damaged text, as a guess every chunk check then tests), and the
 * passphrase is left to be proven by the first chunk.
 *
 * @throws {PassphraseError} When format 4's authentic header does not decrypt and the plain
 *   one names no backup id (nothing else could prove the passphrase).
 */
export async function readHeaderTolerant(
  queue: EntryQueue,
  passphrase: Uint8Array,
  scrypt: ScryptPolicy = new ScryptPolicy(),
): Promise<HeaderReading> {
  const first = await queue.peek();
  let plain: Uint8Array | undefined;
  if (first?.name === "backup-header") {
    await queue.next();
    plain = await readSmall(first, MAX_HEADER_SIZE);
  }
  const hmacEntry = await queue.peek();
  const missing = (what: string) =>
    new IncompleteError({
      reason: "missing",
      action: "verify",
      subject: { kind: "entry", name: "backup-header" },
      detail: `${what}; the format's defaults are used`,
    });
  if (hmacEntry?.name !== "backup-header.hmac") {
    const damage = missing(`"backup-header.hmac" is missing`);
    return { header: guessedHeader(plain), proven: false, damage, refusal: damage };
  }
  await queue.next();
  const hmacBytes = await readSmall(hmacEntry, MAX_HEADER_SIZE);
  if (isScryptFile(hmacBytes)) {
    const refusal = wrongPassphrase("decrypt");
    let authentic: Uint8Array | undefined;
    /** Whether the scrypt file's own header HMAC proved the passphrase (its body damaged). */
    let proven = false;
    try {
      const params = parseScryptHeader(hmacBytes);
      scrypt.checkHeader(hmacEntry.name, params);
      const password = concat([new TextEncoder().encode("backup-header!"), passphrase]);
      authentic = await decryptScryptFile(hmacBytes, password);
      scrypt.headerAuthenticated(params);
    } catch (error) {
      // The keyed HMAC of the scrypt header failed: a wrong passphrase, as without damage.
      if (error instanceof PassphraseError) throw refusal;
      if (!(error instanceof DamagedError)) throw error;
      proven = error.reason === "hmac-mismatch";
    }
    if (authentic !== undefined) {
      const header = checkVersion(parseBackupHeader(authentic), true);
      if (plain !== undefined && sameBytes(plain, authentic)) return { header, proven: true };
      return {
        header,
        proven: true,
        damage: plain === undefined
          ? new IncompleteError({
            reason: "missing",
            action: "verify",
            subject: { kind: "entry", name: "backup-header" },
            detail: `it is missing; its authenticated copy in "backup-header.hmac" is used`,
          })
          : headerMismatch(
            `it differs from its authenticated copy in "backup-header.hmac", which is used`,
          ),
      };
    }
    // The authentic copy is damaged: the plain header's backup id is the only way on, and the
    // first chunk that decrypts under it proves it.
    const guess = plain === undefined ? undefined : lenientHeader(plain);
    if (guess?.version !== 4 || !guess.backupId) throw refusal;
    return {
      header: { ...guess, guessed: true },
      proven,
      refusal,
      damage: new DamagedError({
        reason: "hmac-mismatch",
        action: "verify",
        subject: { kind: "entry", name: "backup-header.hmac" },
        detail: "it does not decrypt; the plain header's backup id is used",
      }),
    };
  }
  if (plain === undefined) {
    const damage = missing("it is missing");
    return { header: defaultHeader(3), proven: false, damage, refusal: damage };
  }
  const expected = parseHmacFile(hmacBytes);
  if (findHmacDigest(plain, passphrase, expected, HEADER_DIGESTS) !== undefined) {
    return { header: checkVersion(parseBackupHeader(plain), false), proven: true };
  }
  return {
    header: guessedHeader(plain),
    proven: false,
    refusal: wrongPassphrase("match"),
    damage: headerMismatch(
      `it does not match "backup-header.hmac"; the format's defaults are used`,
    ),
  };
}

/** Whether `a` and `b` hold the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The header's text parsed as it is (not authenticated), or undefined when it does not parse. */
function lenientHeader(bytes: Uint8Array): BackupHeader | undefined {
  try {
    return parseBackupHeader(bytes);
  } catch {
    return undefined;
  }
}

/**
 * The defaults of formats 2 and 3 for a header that is not authenticated, with a guess of the
 * version from its text (the format-3 reader does not trust it: `notStandaloneVolumes`): the
 * version it names; 2 when it names none (R2 headers had no `version` line), 3 when
 * there is no text at all or its `version` line is unreadable. The rest is found from the data.
 */
function guessedHeader(bytes: Uint8Array | undefined): BackupHeader {
  if (bytes === undefined) return defaultHeader(3);
  const text = new TextDecoder().decode(bytes);
  const named = /^\s*version\s*=\s*([23])\s*$/m.exec(text)?.[1];
  if (named !== undefined) return defaultHeader(named === "2" ? 2 : 3);
  return defaultHeader(/version/.test(text) ? 3 : 2);
}
