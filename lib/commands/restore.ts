/**
 * `restore`: every selected VM's files written under an output directory, verified as they
 * are read: `DIR/<vm>/private.img`, `DIR/<template>/root.img`, `DIR/dom0-home/<user>/...`.
 *
 * @module
 */

import { ownerOf } from "../catalog/mod.ts";
import { oneLine, OutputError } from "../errors.ts";
import { normaliseName } from "../format/mod.ts";
import type { Backup } from "../format/mod.ts";
import { describeFsError, writeReasonOf } from "../fs_errors.ts";
import { type OutputNames, outputNames, OutputRun, TreeWriter, VirtualFs } from "../output/mod.ts";
import { silentReporter } from "../reporter.ts";
import { salvageItems } from "../salvage/mod.ts";
import type { SalvagedFile, SalvagedFolder } from "../salvage/mod.ts";
import { problemsOf } from "./problems.ts";
import { DryRunPlanner, freeSpace, type PlannedFile } from "./dry_run.ts";
import { openBackupRetrying, type RetryOptions } from "./open_retry.ts";
import {
  forEachItem,
  type ItemHooks,
  pipeEvents,
  selectionFor,
  type SelectionOptions,
} from "./run_items.ts";

/** Options of {@link restoreBackup}. */
export interface RestoreOptions extends RetryOptions, SelectionOptions, ItemHooks {
  /** Output directory; created when missing. */
  output: string;
  /** Replace existing files. */
  force?: boolean;
  /** Leave existing files alone and restore the rest (resuming an interrupted restore). */
  skipExisting?: boolean;
  /** Verify everything and write nothing; the summary tells what would be written. */
  dryRun?: boolean;
  /** Told each file, link or folder that is left alone because it exists (`skipExisting`). */
  onExisting?(path: string): void;
  /** Told each link and folder restored (files go to the reporter's `fileDone`). */
  onRestoredOther?(path: string, kind: "link" | "folder"): void;
  /** Dry run: told each file that would be written, as it passes every check. */
  onPlanned?(file: PlannedFile): void;
  /** Aborts the restore; partial files are removed. */
  signal?: AbortSignal;
  /**
   * After items failed: read them again and write what verifies of them as `NAME.salvaged`
   * with `NAME.salvaged.json` (see `lib/salvage/`). Needs the backup as a file.
   */
  salvage?: boolean;
  /** `salvage`: told each salvaged file. */
  onSalvaged?(file: SalvagedFile): void;
  /** `salvage`: told each failed item that cannot be salvaged, and why. */
  onNotSalvaged?(item: string, why: string): void;
  /** `salvage`: told each folder item's list (`FOLDER.salvaged.json`). */
  onSalvagedFolder?(folder: SalvagedFolder): void;
}

/** What a restore did (or, for a dry run, would do). */
export interface RestoreSummary {
  format: 1 | 2 | 3 | 4;
  /** Items of the backup read. */
  items: number;
  /** Files written, relative to the output directory. */
  files: number;
  /** Logical bytes written (apparent sizes). */
  bytes: number;
  /** Symbolic and hard links made. */
  links: number;
  /** Folders the backup holds that were made (or existed). */
  folders: number;
  /** Files, links and folders left alone because they exist (`skipExisting`). */
  skipped: number;
  /** Dry run: the disk space the files need (their data, holes not counted). */
  spaceNeeded?: number;
  /** Dry run: the space available in the output folder's file system, when known. */
  spaceAvailable?: number | undefined;
  /**
   * Dry run: files and links that exist already (replaced with `force`, skipped with
   * `skipExisting`).
   */
  existing?: number;
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
  await checkOutputFolder(options.output);
  const backup = await openBackupRetrying(path, { ...options, tolerateDamagedMetadata: true });
  const summary: RestoreSummary = {
    format: backup.format,
    items: 0,
    files: 0,
    bytes: 0,
    links: 0,
    folders: 0,
    skipped: 0,
  };
  try {
    const selection = selectionFor(backup, options);
    if (options.dryRun) return await dryRun(backup, selection, options, summary);
    try {
      await Deno.mkdir(options.output, { recursive: true });
    } catch (error) {
      throw new OutputError({
        reason: writeReasonOf(error),
        action: "create",
        subject: { kind: "file", name: options.output },
        detail: describeFsError(error),
      }, { cause: error });
    }
    const filesDone = new Set<string>();
    /** `salvage`: items read and not restored whole (yet). */
    const salvageable = new Set<string>();
    const onFileDone = (file: string, size: number) => {
      filesDone.add(file);
      summary.files++;
      summary.bytes += size;
      reporter.fileDone?.(file, size);
    };
    const writerOptions = {
      root: options.output,
      force: options.force ?? false,
      run: new OutputRun(),
      onFileDone,
    };
    // First, so a clash shows before any VM is restored. The same qubes.xml from an earlier
    // restore of another VM of this backup is simply kept.
    if (backup.problems?.some((problem) => problem.item === "qubes.xml")) {
      // A damaged qubes.xml: nothing of it is written (its damage is a problem of the run).
    } else if (!await sameFile(`${options.output}/qubes.xml`, backup.qubesXml)) {
      const xmlWriter = new TreeWriter({
        ...writerOptions,
        ...restoreNames(options, summary, (name) => name),
      });
      await ReadableStream.from(qubesXmlEvents(backup.qubesXml)).pipeTo(xmlWriter);
    } else {
      writerOptions.run.made.set("qubes.xml", "file");
    }
    await forEachItem(backup, selection, options.signal, async (item) => {
      if (options.salvage && options.signal?.aborted !== true) salvageable.add(item.name);
      if (item.owner === undefined) {
        reporter.warn(
          oneLine(`Restoring "${item.name}" under its own name: no VM in qubes.xml owns it`),
        );
      }
      const writer = new TreeWriter({
        ...writerOptions,
        ...restoreNames(options, summary, (member) => outputPathFor(backup, member)),
      });
      await pipeEvents(item.events(), writer, options.signal);
      for (const rel of writer.restored) {
        if (filesDone.has(rel)) continue;
        const kind = (await Deno.lstat(`${options.output}/${rel}`)).isDirectory ? "folder" : "link";
        if (kind === "folder") summary.folders++;
        else summary.links++;
        options.onRestoredOther?.(rel, kind);
      }
      salvageable.delete(item.name);
      summary.items++;
    }, options).catch(async (error) => {
      const failed = new Set(
        (problemsOf(error) ?? []).map((p) => p.item).filter((name) => name !== undefined)
          .filter((name) => salvageable.has(name)),
      );
      if (options.salvage && failed.size > 0) {
        await backup.close();
        await salvageAfter(path, failed, options);
      }
      throw error;
    });
    return summary;
  } finally {
    await backup.close();
  }
}

/** `--salvage`: the failed items read again into `.salvaged` files (not from standard input). */
async function salvageAfter(
  path: string,
  items: Set<string>,
  options: RestoreOptions,
): Promise<void> {
  if (path === "-") {
    for (const item of items) {
      options.onNotSalvaged?.(
        item,
        "salvage reads the damaged items again: it needs the backup as a file, not standard input",
      );
    }
    return;
  }
  await salvageItems(path, items, {
    ...options,
    outputPathFor,
    ...(options.onSalvaged ? { onSalvaged: (file) => options.onSalvaged!(file) } : {}),
    ...(options.onNotSalvaged
      ? { onNotSalvaged: (item, why) => options.onNotSalvaged!(item, why) }
      : {}),
    ...(options.onSalvagedFolder
      ? { onSalvagedFolder: (folder) => options.onSalvagedFolder!(folder) }
      : {}),
  });
}

/**
 * Refuses an output path that exists and is not a folder (`-o /etc/passwd`) before anything is
 * read or asked.
 *
 * @throws {OutputError} When `output` is a file or something else that is not a folder.
 */
export async function checkOutputFolder(output: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(output);
  } catch {
    return;
  }
  if (!info.isDirectory) {
    throw new OutputError({
      reason: "in-the-way",
      action: "restore into",
      subject: { kind: "file", name: output },
      detail: "it exists and is not a folder",
    });
  }
}

/**
 * Output paths (`map` of each member); with `--skip-existing`, a member whose path holds
 * something already is left out, counted and told.
 */
function restoreNames(
  options: RestoreOptions,
  summary: RestoreSummary,
  map: (member: string) => string,
): OutputNames {
  return outputNames(
    options.output,
    map,
    options.skipExisting
      ? (rel) => {
        summary.skipped++;
        options.onExisting?.(rel);
      }
      : undefined,
  );
}

/**
 * A dry run: every item goes through restore's writer on a file system in memory that reads
 * through to the output folder (the checks verify makes, and every clash with what is in the
 * folder, so a dry run refuses what restore refuses), and what it would write is recorded.
 * Files and links that exist already are counted, not stopped at, so all of them are told; the
 * caller refuses them unless `force` (with `skipExisting` they are left out, as the restore
 * leaves them).
 */
async function dryRun(
  backup: Backup,
  selection: Set<string> | undefined,
  options: RestoreOptions,
  summary: RestoreSummary,
): Promise<RestoreSummary> {
  let needed = 0;
  let existing = 0;
  const record = (file: PlannedFile) => {
    if (file.exists) existing++;
    if (file.kind === "link") {
      summary.links++;
    } else {
      summary.files++;
      summary.bytes += file.size;
      needed += file.space;
    }
    options.onPlanned?.(file);
  };
  const checks = {
    root: options.output,
    fs: new VirtualFs({ readThrough: true }),
    run: new OutputRun(),
    // What exists is counted (and refused by the caller), not stopped at; a folder in the
    // way still stops it, as it stops the restore.
    force: !options.skipExisting,
  };
  // The same qubes.xml from an earlier restore of this backup is kept, as a restore does.
  // A damaged qubes.xml is not written (see restoreBackup).
  const damagedXml = backup.problems?.some((problem) => problem.item === "qubes.xml") ?? false;
  if (!damagedXml && !await sameFile(`${options.output}/qubes.xml`, backup.qubesXml)) {
    const names = restoreNames(options, summary, (name) => name);
    await ReadableStream.from(qubesXmlEvents(backup.qubesXml))
      .pipeThrough(new DryRunPlanner(options.output, names.mapName, record))
      .pipeTo(new TreeWriter({ ...checks, ...names }));
  }
  await forEachItem(backup, selection, options.signal, async (item) => {
    const names = restoreNames(options, summary, (member) => outputPathFor(backup, member));
    await pipeEvents(
      item.events().pipeThrough(new DryRunPlanner(options.output, names.mapName, record)),
      new TreeWriter({ ...checks, ...names }),
      options.signal,
    );
    summary.items++;
  }, options);
  summary.spaceNeeded = needed;
  summary.spaceAvailable = await freeSpace(options.output);
  summary.existing = existing + summary.skipped;
  return summary;
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
