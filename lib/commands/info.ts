/**
 * `info`: what a backup is and which VMs it holds, read from its header and qubes.xml only.
 *
 * @module
 */

import type { VmRecord } from "../catalog/mod.ts";
import type { KdfDigest } from "../crypto/mod.ts";
import type { BackupHeader } from "../format/mod.ts";
import { openBackupRetrying, type RetryOptions } from "./open_retry.ts";

/** What `info` reports. */
export interface BackupInfo {
  format: 1 | 2 | 3 | 4;
  header: BackupHeader | undefined;
  /** Key derivation found while reading qubes.xml (encrypted formats 2, 3). */
  kdf: KdfDigest | undefined;
  /** The VMs whose data is in the backup. */
  vms: VmRecord[];
  /** The dom0 home, when it is in the backup. */
  dom0Home: { user: string; backupPath: string } | undefined;
}

/**
 * Reads a backup's header and VM list; stops before the VM data.
 *
 * @param path Backup file, `-`, or directory.
 */
export async function backupInfo(path: string, options: RetryOptions): Promise<BackupInfo> {
  const backup = await openBackupRetrying(path, options);
  try {
    return {
      format: backup.format,
      header: backup.header,
      kdf: backup.kdf,
      vms: backup.catalog.vms.filter((vm) => vm.included && vm.kind !== "admin"),
      dom0Home: backup.catalog.dom0Home,
    };
  } finally {
    await backup.close();
  }
}
