/**
 * `verify`: every chunk authenticated and every item fully decoded, nothing written.
 *
 * @module
 */

import { OutputRun, TreeWriter, VirtualFs } from "../output/mod.ts";
import { silentReporter } from "../reporter.ts";
import type { TarEvent, VolumeStarts } from "../tar/mod.ts";
import { openBackupRetrying, type RetryOptions } from "./open_retry.ts";
import { outputPathFor, qubesXmlEvents } from "./restore.ts";
import {
  forEachItem,
  type ItemHooks,
  ownerName,
  pipeEvents,
  selectionFor,
  type SelectionOptions,
} from "./run_items.ts";

/** Options of {@link verifyBackup}. */
export interface VerifyOptions extends RetryOptions, SelectionOptions, ItemHooks {
  /** Aborts the check. */
  signal?: AbortSignal;
  /**
   * `convert` reading its result back: where the format-2 volumes an item was joined from
   * start, so that every volume boundary is checked as when the source is restored.
   */
  volumeStarts?(item: string): VolumeStarts | undefined;
  /** Told each item's counts once it passed every check. */
  onItemVerified?(
    item: { name: string; vm: string | undefined; members: number; bytes: number },
  ): void;
}

/** What a verification covered. */
export interface VerifySummary {
  format: 1 | 2 | 3 | 4;
  /** Items checked. */
  items: number;
  /** Members (files, folders, links) checked. */
  members: number;
  /** Data bytes checked (stored bytes of the members, holes not counted). */
  bytes: number;
}

/**
 * Verifies a backup end to end without writing anything: every item goes through the writer
 * `restore` uses, on a file system in memory, so verify makes every check restore makes and
 * gives the same verdict.
 *
 * @param path Backup file, `-`, or directory.
 * @throws {PassphraseError} When the passphrase does not open the backup.
 * @throws {DamagedError | IncompleteError} After every item was tried, with the worst problem
 *   found; every damaged or missing chunk is told to `onProblem` as it is found.
 */
export async function verifyBackup(path: string, options: VerifyOptions): Promise<VerifySummary> {
  const backup = await openBackupRetrying(path, { ...options, tolerateDamagedMetadata: true });
  const summary: VerifySummary = {
    format: backup.format,
    items: 0,
    members: 0,
    bytes: 0,
  };
  try {
    const selection = selectionFor(backup, options);
    const writerOptions = { root: "verify", fs: new VirtualFs(), run: new OutputRun() };
    await ReadableStream.from(qubesXmlEvents(backup.qubesXml)).pipeTo(
      new TreeWriter({ ...writerOptions, mapName: (name) => name }),
    );
    await forEachItem(backup, selection, options.signal, async (item) => {
      const counts = { members: 0, bytes: 0 };
      const counted = new TransformStream<TarEvent, TarEvent>({
        transform(event, controller) {
          if (event.type === "entry") counts.members++;
          else if (event.type === "data") counts.bytes += event.bytes.length;
          controller.enqueue(event);
        },
      });
      await pipeEvents(
        item.events(options.volumeStarts?.(item.name)).pipeThrough(counted),
        new TreeWriter({ ...writerOptions, mapName: (member) => outputPathFor(backup, member) }),
        options.signal,
      );
      summary.items++;
      summary.members += counts.members;
      summary.bytes += counts.bytes;
      options.onItemVerified?.({ name: item.name, vm: ownerName(item), ...counts });
    }, { ...options, checkRest: true, verb: "verify" }); // Every damaged or missing chunk is told.
    if (backup.format === 2 || backup.format === 3) {
      (options.reporter ?? silentReporter).info(
        `Not checkable in format ${backup.format}: that each chunk belongs to this backup (a chunk of another backup made with the same passphrase and item name passes its HMAC)`,
      );
    }
    return summary;
  } finally {
    await backup.close();
  }
}
