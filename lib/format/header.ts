/**
 * The `backup-header` entry of formats 2-4: `key=value` lines (spec section 3).
 *
 * Parsed only after its HMAC (or scrypt twin) has been verified. Parsing follows the official
 * R4 client's rules, loosened where old backups need it: a missing `version` means format 2,
 * a compression filter with arguments (`gzip -3`) is accepted, unknown keys are ignored.
 *
 * @module
 */

import { DEFAULT_OPENSSL_CIPHER } from "../crypto/mod.ts";
import { DamagedError, UnsupportedError } from "../errors.ts";

/** What a backup's header says, with the defaults of its era filled in. */
export interface BackupHeader {
  /** Format version: 2 when the header has no `version` line. */
  version: 2 | 3 | 4;
  /** Digest for `.hmac` files (`SHA512`, `SHA1`, ...) or `scrypt` in format 4. */
  hmacAlgorithm: string;
  /** openssl cipher name for formats 2 and 3 (default `aes-256-cbc`). */
  cryptoAlgorithm: string;
  /** Whether chunks are encrypted; undefined when the header does not say. */
  encrypted: boolean | undefined;
  /** Whether items are compressed; undefined when the header does not say. */
  compressed: boolean | undefined;
  /** The compression program as written (`gzip`, `bzip2`, `gzip -3`, ...). */
  compressionFilter: string | undefined;
  /** Format 4: the backup id that is part of every chunk's scrypt passphrase. */
  backupId: string | undefined;
  /** Lines the parser did not know, kept for `info`. */
  unknownKeys: string[];
  /**
   * Not the backup's own authenticated header but the format's defaults standing in for a
   * damaged one (`defaultHeader`): its version is a guess the reader must not trust.
   */
  guessed?: boolean;
}

/** The largest `backup-header` (and `backup-header.hmac`) read. */
export const MAX_HEADER_SIZE = 64 * 1024;
const KNOWN_KEYS = new Set([
  "version",
  "hmac-algorithm",
  "crypto-algorithm",
  "encrypted",
  "compressed",
  "compression-filter",
  "backup-id",
]);

/**
 * Parses the bytes of a verified `backup-header`.
 *
 * @param bytes The header file's exact bytes.
 * @returns The header with era defaults applied.
 * @throws {DamagedError} When the text is not ASCII `key=value` lines or repeats a key.
 * @throws {UnsupportedError} When the version is not 2, 3 or 4.
 *
 * @example
 * ```ts
 * const header = parseBackupHeader(new TextEncoder().encode("version=3\nencrypted=True\n"));
 * header.version; // 3
 * ```
 */
export function parseBackupHeader(bytes: Uint8Array): BackupHeader {
  if (bytes.length > MAX_HEADER_SIZE) {
    throw new DamagedError({
      reason: "too-large",
      action: "read",
      subject: { kind: "entry", name: "backup-header" },
      detail: `it is ${bytes.length} bytes long`,
    });
  }
  if (bytes.some((b) => b > 0x7f)) {
    throw new DamagedError({
      reason: "damaged",
      action: "read",
      subject: { kind: "entry", name: "backup-header" },
      detail: "it holds non-ASCII bytes",
    });
  }
  const values = new Map<string, string>();
  const unknownKeys: string[] = [];
  for (const rawLine of new TextDecoder().decode(bytes).split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "") continue;
    const eq = line.indexOf("=");
    if (eq <= 0 || line.indexOf("=", eq + 1) !== -1) {
      throw new DamagedError({
        reason: "damaged",
        action: "read",
        subject: { kind: "entry", name: "backup-header" },
        detail: `malformed line "${line}"`,
      });
    }
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!KNOWN_KEYS.has(key)) {
      unknownKeys.push(key);
      continue;
    }
    if (values.has(key)) {
      throw new DamagedError({
        reason: "duplicate",
        action: "read",
        subject: { kind: "entry", name: "backup-header" },
        detail: `key "${key}" appears twice`,
      });
    }
    values.set(key, value);
  }

  const versionText = values.get("version");
  let version: 2 | 3 | 4 = 2;
  if (versionText !== undefined) {
    if (versionText !== "2" && versionText !== "3" && versionText !== "4") {
      throw new UnsupportedError({
        reason: "unsupported",
        action: "read this backup",
        detail: `format version "${versionText}"`,
      });
    }
    version = Number(versionText) as 2 | 3 | 4;
  }
  const compressed = parseBool(values.get("compressed"));
  const filter = values.get("compression-filter");
  return {
    version,
    hmacAlgorithm: values.get("hmac-algorithm") ?? (version === 4 ? "scrypt" : "SHA1"),
    cryptoAlgorithm: values.get("crypto-algorithm") ?? DEFAULT_OPENSSL_CIPHER,
    encrypted: version === 4 ? true : parseBool(values.get("encrypted")),
    compressed,
    compressionFilter: filter !== undefined && filter !== ""
      ? filter
      : (compressed && version >= 3 ? "gzip" : undefined),
    backupId: values.get("backup-id"),
    unknownKeys,
  };
}

/**
 * The header a backup of format `version` is read with when its own cannot be authenticated:
 * the cipher Qubes always used, encryption and compression found from the data (undefined),
 * the chunk HMAC digest found by the first chunk (`hmacAlgorithm` is not used then).
 */
export function defaultHeader(version: 2 | 3): BackupHeader {
  return {
    version,
    hmacAlgorithm: "SHA512",
    cryptoAlgorithm: DEFAULT_OPENSSL_CIPHER,
    encrypted: undefined,
    compressed: undefined,
    compressionFilter: undefined,
    backupId: undefined,
    unknownKeys: [],
    guessed: true,
  };
}

/** Python's rule for the header's booleans: `1`, `true`, `yes` (any case) are true. */
function parseBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  return ["1", "true", "yes"].includes(value.toLowerCase());
}
