/**
 * Opening a backup of any format: find the format, verify and parse the header, read the VM
 * catalogue, then hand out the items one after another as streams of inner tar events.
 *
 * Detection follows spec section 1.2 and looks only at the data: a directory with `qubes.xml`
 * is format 1; a `backup-header.hmac` that is an scrypt file means format 4; otherwise the
 * verified header's `version` line (absent: 2); an archive that starts with `qubes.xml.000`
 * is an R2-beta3 backup without a header.
 *
 * Everything after the header is the format module's: `format1.ts` (a directory),
 * `format2.ts`, `format3.ts` and `format4.ts` (outer archives, driven by `archive.ts`); the
 * contract they implement is in `backup.ts`.
 *
 * @module
 */

import type { KdfDigest } from "../crypto/mod.ts";
import { IncompleteError, oneLine, UnsupportedError } from "../errors.ts";
import { type Reporter, silentReporter } from "../reporter.ts";
import { digestName, useHmacWorker } from "../verify/mod.ts";
import { openArchiveBackup } from "./archive.ts";
import type { Backup, FormatReader, OpenOptions } from "./backup.ts";
import { EntryQueue } from "./entry_queue.ts";
import { openFormatOne } from "./format1.ts";
import { FormatTwoReader } from "./format2.ts";
import { FormatThreeReader } from "./format3.ts";
import { FormatFourReader } from "./format4.ts";
import type { BackupHeader } from "./header.ts";
import { readHeader, readHeaderTolerant } from "./header_auth.ts";
import { ReadContext } from "./read_context.ts";
import { ScryptPolicy } from "./scrypt_cost.ts";
import { openSource } from "./source.ts";

export type { Backup, BackupItem, OpenOptions } from "./backup.ts";

/**
 * Opens a backup and reads everything up to and including its VM catalogue.
 *
 * @param path Backup file, `-` for standard input, or a directory.
 * @throws {PassphraseError} When the passphrase does not verify the header.
 * @throws {DamagedError | IncompleteError | UnsupportedError} When the backup cannot be read.
 */
export async function openBackup(path: string, options: OpenOptions): Promise<Backup> {
  const reporter = oneLineReporter(options.reporter ?? silentReporter);
  const source = await openSource(path, reporter.progress?.bind(reporter), options.openFile);
  if (source.kind === "format1") return await openFormatOne(source.dir, reporter);
  const queue = new EntryQueue(source.entries);
  const doneWithWorker = useHmacWorker();
  try {
    const policy = new ScryptPolicy(options.maxScryptMemory);
    return await openArchive(queue, source, options, reporter, doneWithWorker, policy);
  } catch (error) {
    doneWithWorker();
    source.close();
    throw error;
  }
}

/** Finds the format from the first entries, authenticates the header, and hands over. */
async function openArchive(
  queue: EntryQueue,
  source: Extract<Awaited<ReturnType<typeof openSource>>, { kind: "entries" }>,
  options: OpenOptions,
  reporter: Reporter,
  doneWithWorker: () => void,
  policy: ScryptPolicy,
): Promise<Backup> {
  const askPassphrase = options.passphrase;
  const first = await queue.peek();
  if (first === undefined) {
    throw new IncompleteError({
      reason: "missing",
      action: "read the backup",
      detail: "it holds no entries",
    });
  }
  let header: BackupHeader | undefined;
  let passphrase: Uint8Array;
  /** `tolerateDamagedMetadata`: whether the header proved the passphrase, and the damage met. */
  let opening: Parameters<typeof openArchiveBackup>[5];
  if (
    options.tolerateDamagedMetadata &&
    (first.name === "backup-header" || first.name === "backup-header.hmac")
  ) {
    passphrase = await askPassphrase();
    const reading = await readHeaderTolerant(queue, passphrase, policy);
    header = reading.header;
    opening = {
      proven: reading.proven,
      problems: reading.damage ? [{ item: "backup-header", error: reading.damage }] : [],
      ...(reading.refusal ? { refusal: reading.refusal } : {}),
    };
  } else if (first.name === "backup-header") {
    passphrase = await askPassphrase();
    header = await readHeader(queue, passphrase, policy);
  } else if (first.name === "qubes.xml.000") {
    passphrase = await askPassphrase();
    reporter.info("No backup-header: an R2-beta3 backup (format 2)");
  } else if (first.name.endsWith(".enc")) {
    throw new IncompleteError({
      reason: "missing",
      action: "read the backup",
      detail:
        `"backup-header" is missing, and format 4 cannot be decrypted without the backup id it holds`,
    });
  } else {
    throw new UnsupportedError({
      reason: "not-a-backup",
      action: "read the backup",
      detail: `it is not a Qubes backup (its first entry is "${first.name}")`,
    });
  }
  const format = header?.version ?? 2;
  // A header that is not authenticated does not name the chunks' digest: the first chunk does.
  const authenticated = header !== undefined && (opening?.proven ?? true);
  const ctx = new ReadContext(
    passphrase,
    header,
    authenticated && format !== 4 ? digestName(header!.hmacAlgorithm) : undefined,
    {
      onKdf: (kdf) => reporter.info(kdfNotice(kdf)),
      onUnchecked: (message) => reporter.warn(message),
    },
    options.writtenChunks,
  );
  let reader: FormatReader;
  if (format === 4) reader = new FormatFourReader(queue, header!, passphrase, policy);
  else if (format === 3) reader = new FormatThreeReader(queue, ctx);
  else reader = new FormatTwoReader(queue, ctx);
  return await openArchiveBackup(
    queue,
    reader,
    ctx,
    reporter,
    async () => {
      doneWithWorker();
      await queue.close();
      source.close();
    },
    opening ??
      (options.tolerateDamagedMetadata
        ? { proven: header !== undefined, problems: [] }
        : undefined),
  );
}

function kdfNotice(kdf: KdfDigest): string {
  return kdf === "md5"
    ? "Key derivation: MD5 (OpenSSL 1.0, as Qubes wrote it)"
    : "Key derivation: SHA-256 (OpenSSL 1.1 or later; not how Qubes wrote it)";
}

/** Notices carry names from the backup: each stays one line (see `oneLine`). */
function oneLineReporter(reporter: Reporter): Reporter {
  return {
    ...reporter,
    info: (message) => reporter.info(oneLine(message)),
    warn: (message) => reporter.warn(oneLine(message)),
  };
}
