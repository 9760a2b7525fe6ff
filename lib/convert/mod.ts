/**
 * `convert`: format-1 and format-2 backups rewritten as format 3, for `qvm-backup-restore` of
 * Qubes R4.x (issue 14; see docs/convert.md).
 *
 * @module
 */

export { convertBackup, type ConvertOptions, type ConvertSummary } from "./convert.ts";
export { CHUNK_SIZE, headerText } from "./backup_writer.ts";
