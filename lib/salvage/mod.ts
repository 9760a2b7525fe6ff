/**
 * `restore --salvage`: every item is read as far as it can be, and what is lost is written
 * down (`NAME.salvaged`, `NAME.salvaged.json`). {@link salvageItems} runs it;
 * {@link SalvagedFile} describes one file written.
 *
 * The salvage stages of the format readers (`chunks.ts`, `cbc.ts`) are imported by
 * `lib/format` directly: going through this module would lead back into `lib/format` (a
 * cycle), as `run.ts` opens backups.
 *
 * @module
 */

export { salvageItems, type SalvageOptions } from "./run.ts";
export type { LostRange, SalvagedFile } from "./writer.ts";
export type { SalvagedFolder } from "./folder.ts";
