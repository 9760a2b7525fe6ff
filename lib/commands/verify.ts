/**
 * `verify`: every chunk authenticated and every item fully decoded, nothing written.
 *
 * @module
 */

import { InterruptedError } from "../errors.ts";
import { openBackup, type OpenOptions } from "../format/open.ts";
import { OutputRun, TreeWriter, VirtualFs } from "../output/mod.ts";
import { silentReporter } from "../reporter.ts";
import { outputPathFor, qubesXmlEvents } from "./restore.ts";
import { forEachItem, selectionFor } from "./run_items.ts";

/** Options of {@link verifyBackup}. */
export interface VerifyOptions extends OpenOptions {
  /** VM names to check (`dom0` for the dom0 home); empty or absent: everything. */
  vms?: readonly string[];
  /** Aborts the check. */
  signal?: AbortSignal;
}

/** What a verification covered. */
export interface VerifySummary {
  format: 1 | 2 | 3 | 4;
  /** Items checked. */
  items: number;
}

/**
 * Verifies a backup end to end without writing anything.
 *
 * @param path Backup file, `-`, or directory.
 * @throws {DamagedError | IncompleteError | PassphraseError} At the first problem found.
 */
export async function verifyBackup(path: string, options: VerifyOptions): Promise<VerifySummary> {
  const backup = await openBackup(path, options);
  const summary: VerifySummary = { format: backup.format, items: 0 };
  try {
    const selection = selectionFor(backup, options.vms ?? []);
    // The writer restore uses, on a file system in memory: every check restore makes.
    const writerOptions = { root: "verify", fs: new VirtualFs(), run: new OutputRun() };
    await ReadableStream.from(qubesXmlEvents(backup.qubesXml)).pipeTo(
      new TreeWriter({ ...writerOptions, mapName: (name) => name }),
    );
    await forEachItem(backup, selection, options.signal, async (item) => {
      try {
        await item.events().pipeTo(
          new TreeWriter({ ...writerOptions, mapName: (member) => outputPathFor(backup, member) }),
          options.signal === undefined ? {} : { signal: options.signal },
        );
      } catch (error) {
        if (options.signal?.aborted) throw new InterruptedError();
        throw error;
      }
      summary.items++;
    });
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
