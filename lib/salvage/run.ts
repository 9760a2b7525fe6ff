/**
 * `restore --salvage`: after a restore in which items failed, a second pass over the backup
 * file that reads only those items again, through the format's salvage reader (chunks that do
 * not verify become zeros marked lost), into `.salvaged` files (see `writer.ts`).
 *
 * @module
 */

import { isItemProblem } from "../commands/problems.ts";
import { InterruptedError } from "../errors.ts";
import { normaliseName } from "../format/mod.ts";
import { safeRelativePath } from "../output/mod.ts";
import { VolumeStarts } from "../tar/mod.ts";
import { openBackupRetrying, type RetryOptions } from "../commands/open_retry.ts";
import type { Backup } from "../format/mod.ts";
import { silentReporter } from "../reporter.ts";
import { type SalvagedFile, SalvageWriter } from "./writer.ts";
import { FolderRecord, type SalvagedFolder } from "./folder.ts";
import { SalvageParse } from "./resync.ts";
import type { LostCause } from "./lost.ts";

/** Options of {@link salvageItems}. */
export interface SalvageOptions extends RetryOptions {
  output: string;
  force?: boolean;
  signal?: AbortSignal;
  /** Output path of a member, relative to the output folder. */
  outputPathFor: (backup: Backup, member: string) => string;
  /** Told each salvaged file. */
  onSalvaged?: (file: SalvagedFile) => void;
  /** Told each folder item's list (`FOLDER.salvaged.json`, see `folder.ts`), once written. */
  onSalvagedFolder?: (folder: SalvagedFolder) => void;
  /** Told each item that cannot be salvaged, and why. */
  onNotSalvaged?: (item: string, why: string) => void;
}

/**
 * Reads the backup at `path` again and salvages `items` (item names).
 *
 * @throws {OutputError} When a `.salvaged` file cannot be written.
 */
export async function salvageItems(
  path: string,
  items: ReadonlySet<string>,
  options: SalvageOptions,
): Promise<void> {
  // The notices and warnings of opening were told once already; the salvage's own warnings
  // (the order of a format-3 item's chunks cannot be checked) are told.
  const reporter = options.reporter ?? silentReporter;
  let opening = true;
  const quiet = {
    ...reporter,
    info: () => {},
    warn: (message: string) => opening || reporter.warn(message),
  };
  const backup = await openBackupRetrying(path, {
    ...options,
    reporter: quiet,
    tolerateDamagedMetadata: true,
  });
  opening = false;
  const left = new Set(items);
  try {
    for await (const item of backup.items()) {
      if (left.size === 0) break;
      if (!left.has(item.name)) {
        await item.skip();
        continue;
      }
      left.delete(item.name);
      const starts = new VolumeStarts();
      const parse = new SalvageParse(item.name, starts);
      const walk = item.salvageEvents?.();
      const tar = walk ?? item.salvageTar?.({
        starts,
        dataLeft: () => parse.dataLeft,
      });
      if (tar === undefined) {
        options.onNotSalvaged?.(item.name, notBuilt(backup));
        await item.skip();
        continue;
      }
      let salvaged = 0;
      const root = normaliseName(item.name);
      const folder = new FolderRecord(options.outputPathFor(backup, root).replace(/\/+$/, ""));
      // A folder item: a template's folder, the dom0 home, or an item whose first member is a
      // folder or that holds members below it.
      let isFolder = item.name.endsWith("/.") || root.startsWith("dom0-home/");
      const writer = new SalvageWriter({
        root: options.output,
        force: options.force ?? false,
        mapName: (member) => options.outputPathFor(backup, member),
        onEntry: (entry, rel) => {
          if (entry.kind === "directory" || normaliseName(entry.name) !== root) isFolder = true;
          folder.entry(entry, rel);
        },
        onSalvaged: (file) => {
          salvaged++;
          folder.file(file);
          options.onSalvaged?.(file);
        },
      });
      let broken: LostCause | undefined;
      const onGap = (cause: LostCause, member?: string) => {
        broken ??= cause;
        folder.gap(cause);
        if (member !== undefined) {
          folder.lostMember(
            safeRelativePath(options.outputPathFor(backup, member)).join("/"),
            cause,
          );
        }
      };
      try {
        if (walk !== undefined) {
          for await (const event of walk) {
            if (options.signal?.aborted) throw new InterruptedError();
            if (event.type !== "unreadable") {
              await writer.write(event);
              continue;
            }
            // A file that broke off keeps what was read; anything else is listed as lost.
            const rel = safeRelativePath(options.outputPathFor(backup, event.name)).join("/");
            const cause = { reason: event.reason, chunk: "" };
            if (writer.writing === rel) await writer.gap(cause);
            else folder.unreadable(rel, event.reason);
            broken ??= cause;
          }
        } else await parse.run(tar as ReadableStream<Uint8Array>, writer, onGap, options.signal);
        await writer.close();
        const record = folder.record;
        if (salvaged === 0 && broken !== undefined && record.recovered.length === 0) {
          options.onNotSalvaged?.(item.name, nothingPlaced(broken));
        }
      } catch (error) {
        if (options.signal?.aborted || !isItemProblem(error)) {
          await writer.discard();
          throw options.signal?.aborted ? new InterruptedError() : error;
        }
        // What broke the stream inside a file is listed as lost in it.
        await writer.fail(error);
        folder.gap({ reason: error.reason, chunk: "" });
        if (salvaged === 0) options.onNotSalvaged?.(item.name, error.message);
      }
      // What was not read of the item (after a break that nothing follows) is passed over.
      await item.drain?.();
      if (isFolder) {
        await folder.write(options.output, options.force ?? false);
        options.onSalvagedFolder?.(folder.record);
      }
    }
  } finally {
    await backup.close();
  }
}

/** Why nothing of an item whose data breaks at `cause` was salvaged. */
function nothingPlaced(cause: LostCause): string {
  const chunk = cause.chunk === "" ? "" : ` (chunk "${cause.chunk}")`;
  return `nothing of it could be recovered: its data breaks before its first member's data (${cause.reason}${chunk}), and nothing after the break could be placed`;
}

/** Why an item of `backup` is not salvaged. */
function notBuilt(backup: Backup): string {
  if (backup.format === 1) return "a format-1 file that cannot be read has nothing to salvage";
  return `salvage of this kind of format-${backup.format} backup is not built (docs/salvage.md)`;
}
