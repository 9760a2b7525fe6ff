/**
 * `restore BACKUP --vm NAME --files PATH... --output DIR`: files out of a VM's private.img
 * straight from a backup. The image is spooled to a sparse temporary file inside DIR (the only
 * extra space needed is that one image, holes excluded), read like `files get`, and removed
 * afterwards, also on error and interruption.
 *
 * @module
 */

import { OutputError, UsageError } from "../errors.ts";
import { openBackup, type OpenOptions } from "../format/mod.ts";
import { describeFsError, writeReasonOf } from "../fs_errors.ts";
import { TreeWriter } from "../output/mod.ts";
import { silentReporter } from "../reporter.ts";
import { getFiles, type GetSummary } from "./files.ts";
import { outputPathFor } from "./restore.ts";
import { forEachItem, pipeEvents, selectionFor } from "./run_items.ts";

/** Options of {@link restoreFiles}. */
export interface RestoreFilesOptions extends OpenOptions {
  /** Output directory; the files land in `output/<vm>/`. */
  output: string;
  /** The one VM whose private.img is read. */
  vm: string;
  /** Paths inside the private.img (`/home/user` is `home/user` there). */
  files: readonly string[];
  force?: boolean;
  signal?: AbortSignal;
}

/** What {@link restoreFiles} did. */
export interface RestoreFilesSummary extends GetSummary {
  format: 1 | 2 | 3 | 4;
  /** The folder under `output` the files went to (the VM's name). */
  folder: string;
}

/** The image read inside the VM's items. */
const IMAGE = "private.img";

/**
 * Restores `files` from VM `vm`'s private.img in the backup at `path` into `output/<vm>/`.
 *
 * @throws {UsageError} When the VM is not in the backup, has no private.img, or a path is not there.
 * @throws {OutputError | DamagedError | IncompleteError | PassphraseError} As `restore` and `files get`.
 */
export async function restoreFiles(
  path: string,
  options: RestoreFilesOptions,
): Promise<RestoreFilesSummary> {
  const reporter = options.reporter ?? silentReporter;
  if (options.files.length === 0) {
    throw new UsageError({ reason: "usage", detail: "restore --files needs at least one PATH" });
  }
  if (options.vm === "dom0") {
    throw new UsageError({
      reason: "usage",
      action: "use --files with",
      subject: { kind: "vm", name: "dom0" },
      detail: "its home is restored as plain files",
    });
  }
  const backup = await openBackup(path, options);
  let spool: string | undefined;
  try {
    const selection = selectionFor(backup, [options.vm]);
    try {
      await Deno.mkdir(options.output, { recursive: true });
      spool = await Deno.makeTempDir({ dir: options.output, prefix: ".qubes-recover-spool-" });
    } catch (error) {
      throw new OutputError({
        reason: writeReasonOf(error),
        action: "create",
        subject: { kind: "file", name: options.output },
        detail: describeFsError(error),
      }, { cause: error });
    }
    let folder: string | undefined;
    await forEachItem(backup, selection, options.signal, async (item) => {
      const writer = new TreeWriter({
        root: spool!,
        mapName: (member) => {
          const rel = outputPathFor(backup, member);
          if (rel.split("/").pop() !== IMAGE) return undefined;
          folder = rel.split("/")[0];
          return IMAGE;
        },
      });
      await pipeEvents(item.events(), writer, options.signal);
    });
    if (folder === undefined) {
      throw new UsageError({
        reason: "not-found",
        action: "read files of",
        subject: { kind: "vm", name: options.vm },
        detail: `it has no ${IMAGE} in this backup`,
      });
    }
    reporter.info(`Reading ${options.vm}'s ${IMAGE} (spooled to "${spool}")`);
    const summary = await getFiles(`${spool}/${IMAGE}`, options.files, {
      output: options.output,
      under: folder,
      label: `${options.vm}'s ${IMAGE}`,
      reporter,
      force: options.force ?? false,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { ...summary, format: backup.format, folder };
  } finally {
    if (spool !== undefined) await Deno.remove(spool, { recursive: true }).catch(() => {});
    await backup.close();
  }
}
