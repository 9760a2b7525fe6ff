/**
 * `restore --salvage`: after a restore in which items failed, a second pass over the backup
 * file that reads only those items again, through the format's salvage reader (chunks that do
 * not verify become zeros marked lost), into `.salvaged` files (see `writer.ts`).
 *
 * @module
 */

import { isItemProblem } from "../commands/problems.ts";
import { DamagedError, InterruptedError } from "../errors.ts";
import { memberInItem } from "../format/mod.ts";
import { TarParser } from "../tar/mod.ts";
import { VolumeStarts } from "../tar/mod.ts";
import type { TarEvent } from "../tar/mod.ts";
import { openBackupRetrying, type RetryOptions } from "../commands/open_retry.ts";
import type { Backup } from "../format/mod.ts";
import { silentReporter } from "../reporter.ts";
import { type SalvagedFile, SalvageWriter } from "./writer.ts";

/** Options of {@link salvageItems}. */
export interface SalvageOptions extends RetryOptions {
  output: string;
  force?: boolean;
  signal?: AbortSignal;
  /** Output path of a member, relative to the output folder. */
  outputPathFor: (backup: Backup, member: string) => string;
  /** Told each salvaged file. */
  onSalvaged?: (file: SalvagedFile) => void;
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
      let events: TarEvent[] = [];
      const parser = new TarParser((event) => events.push(event), starts);
      const tar = item.salvageTar?.({ starts, boundary: () => parser.boundary });
      if (tar === undefined) {
        options.onNotSalvaged?.(item.name, notBuilt(backup));
        await item.skip();
        continue;
      }
      let salvaged = 0;
      const writer = new SalvageWriter({
        root: options.output,
        force: options.force ?? false,
        mapName: (member) => options.outputPathFor(backup, member),
        onSalvaged: (file) => {
          salvaged++;
          options.onSalvaged?.(file);
        },
      });
      try {
        await parseInto(
          item.name,
          tar,
          parser,
          () => {
            const taken = events;
            events = [];
            return taken;
          },
          writer,
          options.signal,
        );
        await writer.close();
      } catch (error) {
        if (options.signal?.aborted || !isItemProblem(error)) {
          await writer.discard();
          throw options.signal?.aborted ? new InterruptedError() : error;
        }
        // What broke the stream inside a file is listed as lost in it.
        await writer.fail(error);
        if (salvaged === 0) options.onNotSalvaged?.(item.name, error.message);
        await item.drain?.();
      }
    }
  } finally {
    await backup.close();
  }
}

/** Why an item of `backup` is not salvaged. */
function notBuilt(backup: Backup): string {
  if (backup.format === 1) return "a format-1 file that cannot be read has nothing to salvage";
  const variant = backup.header?.compressed !== false ? "compressed" : "this kind of";
  return `salvage of ${variant} format-${backup.format} backups is not built yet (docs/salvage.md)`;
}

/**
 * Parses an item's inner tar into `writer`, event by event: the parser is driven directly
 * (not as a stream), so every event before a break in the data is written before the break is
 * told. Members outside the item are refused, as `restore` refuses them.
 */
async function parseInto(
  item: string,
  tar: ReadableStream<Uint8Array>,
  parser: TarParser,
  take: () => TarEvent[],
  writer: SalvageWriter,
  signal: AbortSignal | undefined,
): Promise<void> {
  const flush = async () => {
    for (const event of take()) {
      if (event.type === "entry" && !memberInItem(item, event.entry.name)) {
        throw new DamagedError({
          reason: "out-of-place",
          action: "salvage item",
          subject: { kind: "item", name: item },
          detail: `it holds "${event.entry.name}", which lies outside it`,
        });
      }
      await writer.write(event);
    }
  };
  for await (const piece of tar) {
    if (signal?.aborted) throw new InterruptedError();
    let failure: unknown;
    try {
      parser.push(piece);
    } catch (error) {
      failure = error;
    }
    await flush();
    if (failure !== undefined) throw failure;
  }
  let failure: unknown;
  try {
    parser.finish();
  } catch (error) {
    failure = error;
  }
  await flush();
  if (failure !== undefined) throw failure;
}
