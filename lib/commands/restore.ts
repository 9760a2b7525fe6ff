/**
 * `restore`: every selected VM's files written under an output directory, verified as they
 * are read: `DIR/<vm>/private.img`, `DIR/<template>/root.img`, `DIR/dom0-home/<user>/...`.
 *
 * @module
 */

import { ownerOf } from "../catalog/mod.ts";
import { InterruptedError, oneLine, OutputError } from "../errors.ts";
import { normaliseName } from "../format/item_scope.ts";
import { type Backup, openBackup, type OpenOptions } from "../format/open.ts";
import { describeFsError } from "../format/source.ts";
import { OutputRun, TreeWriter } from "../output/mod.ts";
import { silentReporter } from "../reporter.ts";
import { forEachItem, selectionFor } from "./run_items.ts";

/** Options of {@link restoreBackup}. */
export interface RestoreOptions extends OpenOptions {
  /** Output directory; created when missing. */
  output: string;
  /** VM names to restore (`dom0` for the dom0 home); empty or absent: everything. */
  vms?: readonly string[];
  /** Replace existing files. */
  force?: boolean;
  /** Aborts the restore; partial files are removed. */
  signal?: AbortSignal;
}

/** What a restore did. */
export interface RestoreSummary {
  format: 1 | 2 | 3 | 4;
  /** Files written, relative to the output directory. */
  files: number;
  /** Logical bytes written. */
  bytes: number;
}

/**
 * The output path (relative to the output directory) of an inner member: the VM's name
 * instead of its backup path (the backup path when the name is not usable as a folder name);
 * the dom0 home keeps `dom0-home/<user>`; members of items no VM owns keep their own path.
 */
export function outputPathFor(backup: Backup, member: string): string {
  const owner = ownerOf(backup.catalog, member);
  if (owner === undefined || owner.vm.kind === "admin") return normaliseName(member);
  // A VM name that cannot be a folder name ("..", "a/b") falls back to the backup path.
  const folder = owner.vm.safeName ? owner.vm.name : normaliseName(owner.vm.backupPath ?? "");
  return `${folder}/${owner.rest}`;
}

/**
 * Restores a backup.
 *
 * @param path Backup file, `-`, or directory.
 * @throws {OutputError} When the output cannot be written (exists, disk full).
 * @throws {DamagedError | IncompleteError | PassphraseError} When the backup cannot be read.
 */
export async function restoreBackup(
  path: string,
  options: RestoreOptions,
): Promise<RestoreSummary> {
  const reporter = options.reporter ?? silentReporter;
  const backup = await openBackup(path, options);
  const summary: RestoreSummary = { format: backup.format, files: 0, bytes: 0 };
  try {
    const selection = selectionFor(backup, options.vms ?? []);
    try {
      await Deno.mkdir(options.output, { recursive: true });
    } catch (error) {
      throw new OutputError(`Cannot create "${options.output}": ${describeFsError(error)}`, {
        cause: error,
      });
    }
    const writerOptions = {
      root: options.output,
      force: options.force ?? false,
      run: new OutputRun(),
      onFileDone: (file: string, size: number) => {
        summary.files++;
        summary.bytes += size;
        reporter.fileDone?.(file, size);
      },
    };
    // First, so a clash shows before any VM is restored. The same qubes.xml from an earlier
    // restore of another VM of this backup is simply kept.
    if (!await sameFile(`${options.output}/qubes.xml`, backup.qubesXml)) {
      const xmlWriter = new TreeWriter({ ...writerOptions, mapName: (name) => name });
      await ReadableStream.from(qubesXmlEvents(backup.qubesXml)).pipeTo(xmlWriter);
    } else {
      writerOptions.run.made.set("qubes.xml", "file");
    }
    await forEachItem(backup, selection, options.signal, async (item) => {
      if (item.owner === undefined) {
        reporter.warn(
          oneLine(`Restoring "${item.name}" under its own name: no VM in qubes.xml owns it`),
        );
      }
      const writer = new TreeWriter({
        ...writerOptions,
        mapName: (member) => outputPathFor(backup, member),
      });
      try {
        await item.events().pipeTo(
          writer,
          options.signal === undefined ? {} : { signal: options.signal },
        );
      } catch (error) {
        if (options.signal?.aborted) throw new InterruptedError();
        throw error;
      }
    });
    return summary;
  } finally {
    await backup.close();
  }
}

/** Whether `path` is a regular file (not a link) holding exactly `bytes`. */
async function sameFile(path: string, bytes: Uint8Array): Promise<boolean> {
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile || info.size !== bytes.length) return false;
    const existing = await Deno.readFile(path);
    return existing.every((byte, i) => byte === bytes[i]);
  } catch {
    return false;
  }
}

/** The backup's qubes.xml as tar events, so it is written like every other file. */
export function* qubesXmlEvents(bytes: Uint8Array) {
  yield {
    type: "entry" as const,
    entry: {
      name: "qubes.xml",
      kind: "file" as const,
      typeflag: "0",
      mode: 0o644,
      mtime: Math.floor(Date.now() / 1000),
      linkname: "",
      size: bytes.length,
      sparse: false,
    },
  };
  yield { type: "data" as const, offset: 0, bytes };
  yield { type: "end" as const };
}
