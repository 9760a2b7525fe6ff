/**
 * `convert`: rewrites a format-1 or format-2 backup as a format-3 backup, which the
 * `qvm-backup-restore` of Qubes R4.x reads natively (its R2/R3 `qubes.xml` parser included).
 *
 * One pass over the source, verified as it is read (the same code and errors as `restore`);
 * the new file is written under a temporary name next to the output, read back completely by
 * `verify`, and only then renamed into place.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { verifyBackup } from "../commands/mod.ts";
import {
  InterruptedError,
  OutputError,
  RecoverError,
  UnsupportedError,
  UsageError,
} from "../errors.ts";
import { type Backup, openBackup } from "../format/mod.ts";
import { describeFsError, writeReasonOf } from "../fs_errors.ts";
import { toOutputError } from "../fs_errors.ts";
import { type Reporter, silentReporter } from "../reporter.ts";
import { BackupWriter } from "./backup_writer.ts";
import { checkedTar } from "./checked_tar.ts";
import { format1QubesXml, planFormat1 } from "./format1.ts";
import { archiveEnd, memberHeader, padding } from "./tar_writer.ts";
import { treeTar } from "./tree_tar.ts";
import { GrowingFile } from "./growing_file.ts";
import { gzipMember } from "./pack_ops.ts";
import { type SpliceCounts, splicedGzipItem } from "./gzip_splice.ts";
import { VolumeStarts } from "../tar/mod.ts";
import { startHmacWorker, useHmacWorker, WrittenChunks } from "../verify/mod.ts";
import { Packer } from "./packer.ts";

/** Options of {@link convertBackup}. */
export interface ConvertOptions {
  /** The source backup's passphrase (asked only when the source needs it). */
  passphrase: () => Promise<Uint8Array>;
  /** The new backup's passphrase; default: the source's. */
  newPassphrase?: (() => Promise<Uint8Array>) | undefined;
  /** Gzip the items; default: as the source was (format 1: no). */
  compress?: boolean | undefined;
  /** Encrypt the new backup (default true). */
  encrypt?: boolean | undefined;
  /** Replace an existing output file. */
  force?: boolean | undefined;
  /** Notices and progress. */
  reporter?: Reporter | undefined;
  /** Aborts the conversion; the unfinished file is removed. */
  signal?: AbortSignal | undefined;
  /** Non-final chunk size (default 100 MiB; tests use small values). */
  chunkSize?: number | undefined;
  /** Counts how the gzip volumes of a format-2 source were carried over (tests). */
  spliceCounts?: SpliceCounts | undefined;
}

/** What a conversion did. */
export interface ConvertSummary {
  sourceFormat: 1 | 2;
  items: number;
  chunks: number;
  bytes: number;
  encrypted: boolean;
  compressed: boolean;
}

function dirAndBase(path: string): { dir: string; base: string } {
  const slash = path.lastIndexOf("/");
  return slash < 0
    ? { dir: ".", base: path }
    : { dir: path.slice(0, slash) || "/", base: path.slice(slash + 1) };
}

async function realPathOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.realPath(path);
  } catch {
    return undefined;
  }
}

/**
 * Refuses an output whose folder is missing or is not a folder (a missing folder is not made:
 * the output is one file).
 */
async function checkOutputFolder(output: string, dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return; // told when the file is created
    throw new OutputError({
      reason: "write-failed",
      action: "write",
      subject: { kind: "file", name: output },
      detail: `its folder "${dir}" does not exist`,
    }, { cause: error });
  }
  if (!info.isDirectory) {
    throw new OutputError({
      reason: "in-the-way",
      action: "write",
      subject: { kind: "file", name: output },
      detail: `"${dir}" is not a folder`,
    });
  }
}

/** `parts`, its errors named after the item as `restore` names them. */
async function* namedAfter(
  item: string,
  parts: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  try {
    yield* parts;
  } catch (error) {
    throw error instanceof RecoverError
      ? error.within("restore", { kind: "item", name: item })
      : error;
  }
}

/**
 * Writes the `qubes.xml` item; gzipped here when compressing (it is small: the gzip workers
 * are not started for it).
 */
function writeQubesXml(
  writer: BackupWriter,
  xml: Uint8Array,
  mtime: number,
  compress: boolean,
): Promise<void> {
  const tar = qubesXmlTar(xml, mtime);
  if (!compress) return writer.writeItem("qubes.xml", ReadableStream.from(tar));
  const bytes = new Uint8Array(tar.reduce((sum, piece) => sum + piece.length, 0));
  let at = 0;
  for (const piece of tar) {
    bytes.set(piece, at);
    at += piece.length;
  }
  return writer.writeItem("qubes.xml", ReadableStream.from([gzipMember(bytes)]), { gzipped: true });
}

/** The inner tar of the `qubes.xml` item: one member `qubes.xml` (spec section 10). */
function qubesXmlTar(xml: Uint8Array, mtime: number): Uint8Array[] {
  const head = memberHeader({
    name: "qubes.xml",
    typeflag: "0",
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime,
    size: xml.length,
  });
  const pieces = [...head, xml, padding(xml.length)];
  const written = pieces.reduce((sum, piece) => sum + piece.length, 0);
  pieces.push(archiveEnd(written));
  return pieces;
}

/**
 * Converts the backup at `source` into a format-3 backup file at `output`.
 *
 * @throws {UnsupportedError} When the source is already format 3 or 4.
 * @throws {OutputError} When `output` exists (without `force`) or cannot be written.
 * @throws {PassphraseError | DamagedError | IncompleteError} As `restore` does for the source.
 */
export async function convertBackup(
  source: string,
  output: string,
  options: ConvertOptions,
): Promise<ConvertSummary> {
  const reporter = options.reporter ?? silentReporter;
  if (source === "-") {
    throw new UsageError({
      reason: "usage",
      detail: "convert reads a backup file or folder, not standard input",
    });
  }
  if (output === "-") {
    // The new file is read back and renamed into place: it cannot be a pipe.
    throw new UsageError({
      reason: "usage",
      detail: "convert writes a file, not standard output: give --output a file name",
    });
  }
  const { dir, base } = dirAndBase(output);
  // Told before the old backup is opened (and its passphrase asked for).
  await checkOutputFolder(output, dir);
  const [sourceReal, outputReal] = await Promise.all([
    realPathOrUndefined(source),
    realPathOrUndefined(output),
  ]);
  if (outputReal !== undefined) {
    if (outputReal === sourceReal) {
      throw new UsageError({
        reason: "usage",
        action: `convert "${source}" into itself`,
        subject: { kind: "file", name: source, inDetail: true },
        detail: "choose another --output",
      });
    }
    const info = await Deno.stat(output);
    if (info.isDirectory) {
      throw new OutputError({
        reason: "in-the-way",
        action: "write",
        subject: { kind: "file", name: output },
        detail: "it is a folder (give a file name)",
      });
    }
    if (!options.force) {
      throw new OutputError({
        reason: "exists",
        action: "write",
        subject: { kind: "file", name: output },
        detail: "it exists",
      });
    }
  }

  // The HMAC and encryption workers load while the old backup is opened.
  const doneWithWorker = useHmacWorker();
  startHmacWorker();
  const packer = options.encrypt === false ? undefined : Packer.start({ encrypt: true });
  const stopWorkers = () => {
    doneWithWorker();
    packer?.then((started) => started.close(), () => {});
  };
  let backup: Backup;
  try {
    backup = await openBackup(source, { passphrase: options.passphrase, reporter });
  } catch (error) {
    stopWorkers();
    throw error;
  }
  const temporary = `${dir}/.${base}.partial-${
    Array.from(randomBytes(4), (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
  let file: Deno.FsFile | undefined;
  let writer: BackupWriter | undefined;
  let syncFile: Deno.FsFile | undefined;
  // A read blocked on a pipe does not see the abort: the unfinished file goes at once.
  const removeNow = () => void Deno.remove(temporary).catch(() => {});
  options.signal?.addEventListener("abort", removeNow, { once: true });
  try {
    if (backup.format === 3 || backup.format === 4) {
      throw new UnsupportedError({
        reason: "unsupported",
        action: "convert",
        subject: { kind: "file", name: source },
        detail:
          `it is already a format-${backup.format} backup, which qvm-backup-restore of Qubes R4.x reads as it is`,
      });
    }
    const sourceFormat = backup.format;
    const compress = options.compress ??
      (sourceFormat === 2 ? backup.header?.compressed ?? true : false);
    const encrypt = options.encrypt ?? true;
    const passphrase = await (options.newPassphrase ?? options.passphrase)();
    if (passphrase.length === 0) {
      throw new UsageError({
        reason: "usage",
        action: "protect the new backup",
        detail: "the passphrase is empty",
      });
    }
    try {
      file = await Deno.open(temporary, { write: true, createNew: true });
    } catch (error) {
      throw new OutputError({
        reason: writeReasonOf(error),
        action: "write",
        subject: { kind: "file", name: output },
        detail: describeFsError(error),
      }, {
        cause: error,
      });
    }
    const mtime = Math.floor(Date.now() / 1000);
    // The new file is read back (by `verify`, from the file) while it is being written: each
    // entry as soon as it is written, so the reading overlaps the writing (growing_file.ts).
    const growing = new GrowingFile();
    // A second handle for the background syncs (none, if it cannot be had: the final sync
    // remains).
    syncFile = await Deno.open(temporary, { read: true }).catch(() => undefined);
    // The read-back compares each chunk with the bytes the writer hashed rather than hashing
    // it again (written_chunks.ts).
    const writtenChunks = new WrittenChunks();
    writer = new BackupWriter(file, {
      passphrase,
      encrypt,
      compress,
      mtime,
      signal: options.signal,
      onWritten: (bytes) => growing.grew(bytes),
      writtenChunks,
      syncFile,
      packer,
      ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
    });
    /** Where the volumes of each spliced item start: the read-back checks them. */
    const volumeStarts = new Map<string, VolumeStarts>();
    let readBackFailure: { error: unknown } | undefined;
    const readBack = verifyBackup(temporary, {
      passphrase: () => Promise.resolve(passphrase),
      reporter: { info() {}, warn: (message) => reporter.warn(message) },
      volumeStarts: (item) => volumeStarts.get(item),
      openFile: growing.open,
      writtenChunks,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    readBack.catch((error) => {
      readBackFailure = { error };
      writtenChunks.close();
    });
    const write = async (what: () => Promise<void>) => {
      try {
        await what();
      } catch (error) {
        if (options.signal?.aborted) throw new InterruptedError();
        if (error instanceof RecoverError) throw error;
        throw toOutputError(error, output); // the file the user named, not its temporary name
      }
    };
    const out = writer;
    let items = 0;
    /** Stops the conversion once the read-back found a problem. */
    const readBackOk = () => {
      if (readBackFailure !== undefined) throw readBackFailure.error;
    };
    try {
      await write(() => out.writeHeader());
      if (sourceFormat === 1) {
        const plan = await planFormat1(source, backup.catalog);
        const xml = format1QubesXml(backup.qubesXml, backup.catalog, plan.sizes);
        await write(() => writeQubesXml(out, xml, mtime, compress));
        for (const item of plan.items) {
          if (options.signal?.aborted) throw new InterruptedError();
          readBackOk();
          reporter.info(`Converting "${item.name}"`);
          await write(() =>
            out.writeItem(item.name, treeTar(item.path, item.member, { reporter }))
          );
          items++;
        }
      } else {
        await write(() => writeQubesXml(out, backup.qubesXml, mtime, compress));
        for await (const item of backup.items()) {
          if (options.signal?.aborted) throw new InterruptedError();
          if (item.plainTar === undefined) {
            throw new UnsupportedError({
              reason: "unsupported",
              action: "convert item",
              subject: { kind: "item", name: item.name },
              detail: "its data cannot be read raw",
            });
          }
          readBackOk();
          reporter.info(`Converting "${item.name}"`);
          if (compress && item.volumes !== undefined) {
            // Gzip volumes keep their compressed bytes (gzip_splice.ts); the tar checks of the
            // source run when the new file is read back, with the volume starts.
            const starts = new VolumeStarts();
            volumeStarts.set(item.name, starts);
            const gzip = await out.gzipper();
            const parts = splicedGzipItem(item.volumes(), gzip, starts, options.spliceCounts);
            await write(() =>
              out.writeItem(item.name, namedAfter(item.name, parts), { gzipped: true })
            );
          } else {
            await write(() => out.writeItem(item.name, checkedTar(item.name, item.plainTar!())));
          }
          items++;
        }
      }
      await writer.synced();
      await write(() => file!.sync());
      file.close();
      file = undefined;
    } catch (error) {
      // A problem the read-back found on its own (a damaged part of the source that only the
      // new file's tar shows) is the one to tell; else the writing's.
      const first = readBackFailure;
      growing.fail(error);
      await readBack.catch(() => {}); // it stops at its next read; its file is closed
      throw first === undefined ? error : first.error;
    }
    growing.complete();
    reporter.info(`Reading the new backup back to verify it (it has been read as it was written)`);
    const check = await readBack;
    if (check.format !== 3 || check.items !== items + 0) {
      // verify counts the items after qubes.xml; anything else is our bug.
      throw new Error(
        `the new backup read back as format ${check.format} with ${check.items} items, expected format 3 with ${items}`,
      );
    }
    try {
      await Deno.rename(temporary, output);
    } catch (error) {
      throw new OutputError({
        reason: writeReasonOf(error),
        action: "write",
        subject: { kind: "file", name: output },
        detail: describeFsError(error),
      }, {
        cause: error,
      });
    }
    return {
      sourceFormat,
      items,
      chunks: out.chunks,
      bytes: out.written,
      encrypted: encrypt,
      compressed: compress,
    };
  } catch (error) {
    if (options.signal?.aborted && !(error instanceof InterruptedError)) {
      throw new InterruptedError();
    }
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", removeNow);
    writer?.close();
    stopWorkers();
    await writer?.synced();
    syncFile?.close();
    file?.close();
    await backup.close();
    await Deno.remove(temporary).catch(() => {});
  }
}
