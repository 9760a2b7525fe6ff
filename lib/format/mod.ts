/**
 * Reading a Qubes backup of any format: {@link openBackup} detects the format, authenticates
 * the header and hands back a {@link Backup} whose items are read as tar events. The rest of
 * this folder (one module per format, the chunk stages, the header) is its inside.
 *
 * @module
 */

export type { Backup, BackupItem, OpenOptions } from "./backup.ts";
export { openBackup } from "./open.ts";
export type { BackupHeader } from "./header.ts";
export { memberInItem, normaliseName } from "./item_scope.ts";
export { tarEvents } from "./item_events.ts";
export { parseMemorySize } from "./scrypt_cost.ts";
