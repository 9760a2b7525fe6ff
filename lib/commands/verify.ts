/**
 * `verify`: every chunk authenticated and every item fully decoded, nothing written.
 *
 * @module
 */

import { InterruptedError } from "../errors.ts";
import { openBackupRetrying, type RetryOptions } from "./open_retry.ts";
import { NullWriter } from "../output/mod.ts";
import {
  forEachItem,
  type ItemHooks,
  ownerName,
  selectionFor,
  type SelectionOptions,
} from "./run_items.ts";

/** Options of {@link verifyBackup}. */
export interface VerifyOptions extends RetryOptions, SelectionOptions, ItemHooks {
  /** Aborts the check. */
  signal?: AbortSignal;
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
 * Verifies a backup end to end without writing anything.
 *
 * @param path Backup file, `-`, or directory.
 * @throws {DamagedError | IncompleteError | PassphraseError} At the first problem found.
 */
export async function verifyBackup(path: string, options: VerifyOptions): Promise<VerifySummary> {
  const backup = await openBackupRetrying(path, options);
  const summary: VerifySummary = {
    format: backup.format,
    items: 0,
    members: 0,
    bytes: 0,
  };
  try {
    const selection = selectionFor(backup, options);
    await forEachItem(backup, selection, options.signal, async (item) => {
      const sink = new NullWriter();
      try {
        await item.events().pipeTo(
          sink,
          options.signal === undefined ? {} : { signal: options.signal },
        );
      } catch (error) {
        if (options.signal?.aborted) throw new InterruptedError();
        throw error;
      }
      summary.items++;
      summary.members += sink.members;
      summary.bytes += sink.bytes;
      options.onItemVerified?.({
        name: item.name,
        vm: ownerName(item),
        members: sink.members,
        bytes: sink.bytes,
      });
    }, options);
    return summary;
  } finally {
    await backup.close();
  }
}
