/**
 * The commands of qubes-recover as library functions: `backupInfo`, `verifyBackup`,
 * `restoreBackup`. They never print and never exit; they throw `RecoverError`s that carry
 * exit codes, and report through an optional `Reporter`.
 *
 * @example
 * ```ts
 * import { restoreBackup } from "./lib/commands/mod.ts";
 * await restoreBackup("backup.tar", {
 *   output: "restored",
 *   passphrase: () => Promise.resolve(new TextEncoder().encode("secret")),
 * });
 * ```
 *
 * @module
 */

export * from "./info.ts";
export * from "./restore.ts";
export * from "./verify.ts";
export type { PlannedFile } from "./dry_run.ts";
export type { RetryOptions } from "./open_retry.ts";
export type { ItemHooks, SelectionOptions } from "./run_items.ts";
export { type Problem, problemEvent, problemLine, problemsOf } from "./problems.ts";
export {
  restoreFiles,
  type RestoreFilesOptions,
  type RestoreFilesSummary,
} from "./restore_files.ts";
export {
  catFile,
  type FilesOptions,
  getFiles,
  type GetOptions,
  type GetSummary,
  type ListEntry,
  listFiles,
  type Listing,
} from "./files.ts";
