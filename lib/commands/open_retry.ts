/**
 * Opening a backup with another try when the passphrase is wrong, for passphrases typed at a
 * prompt: the caller decides whether to ask again.
 *
 * @module
 */

import { PassphraseError } from "../errors.ts";
import { type Backup, openBackup, type OpenOptions } from "../format/mod.ts";

/** Options of {@link openBackupRetrying}. */
export interface RetryOptions extends OpenOptions {
  /**
   * Asked after a wrong passphrase: return true to open the backup again (the `passphrase`
   * function is then called again and must give the new one). Never asked for standard input,
   * which cannot be read twice.
   */
  retryPassphrase?: (error: PassphraseError) => boolean;
}

/**
 * Opens a backup, opening it again after a wrong passphrase as long as `retryPassphrase` says so.
 *
 * @param path Backup file, `-`, or directory.
 */
export async function openBackupRetrying(path: string, options: RetryOptions): Promise<Backup> {
  for (;;) {
    try {
      return await openBackup(path, options);
    } catch (error) {
      if (
        error instanceof PassphraseError && path !== "-" && options.retryPassphrase?.(error)
      ) {
        continue;
      }
      throw error;
    }
  }
}
