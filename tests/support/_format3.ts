/**
 * Format 3 (R2 updates, R3.x): every item is one GNU tar stream
 * (`tar -Pc --sparse -C <dir> [--dereference] --xform … [--use-compress-program=<filter>]
 * <base>`, spec §8.1), encrypted as a whole by one `openssl enc` (one salt, spec §6.4), cut
 * into `chunkBytes` pieces, each followed by its `.hmac`.
 *
 * @module
 */

import type { BuiltBackup, BuiltItem } from "./backup_builder.ts";
import { chunkSuffix, stageQubesXml, xformExpression } from "./_item_names.ts";
import { encryptStep, writeHmac } from "./_openssl.ts";
import { OuterArchive } from "./_outer_archive.ts";
import type { Plan, PlannedItem } from "./_plan.ts";
import { mapLimit, TOOL_PARALLELISM } from "./_pool.ts";
import type { Step } from "./_run.ts";
import { splitStream } from "./_split.ts";

async function packItem(plan: Plan, outer: OuterArchive, item: PlannedItem): Promise<string[]> {
  const tarArgs = ["-Pc", "--sparse", "-C", item.dir];
  if (plan.dereference && !item.isDom0Home) tarArgs.push("--dereference");
  tarArgs.push("--xform", xformExpression(plan, item));
  if (plan.compressed) tarArgs.push(`--use-compress-program=${plan.compressionFilter}`);
  tarArgs.push(item.base);
  const steps: Step[] = [{ cmd: "tar", args: tarArgs }];
  if (plan.encrypted) steps.push(encryptStep(plan));
  const pieceDir = await Deno.makeTempDir({ dir: outer.stage, prefix: ".pieces-" });
  const pieces = await splitStream(plan, steps, pieceDir);
  const chunks = pieces.map((_, i) => `${item.subdir}${item.base}.${chunkSuffix(i)}`);
  await mapLimit(pieces, TOOL_PARALLELISM, async (piece, i) => {
    const chunk = await outer.prepare(chunks[i]!);
    await Deno.rename(piece, chunk);
    await writeHmac(plan, chunk);
  });
  await outer.appendAll(chunks.flatMap((c) => [c, `${c}.hmac`]));
  await Deno.remove(pieceDir, { recursive: true });
  return chunks;
}

/** Writes a format-3 backup file at `path`, staging in `stage`. */
export async function writeFormat3(plan: Plan, path: string, stage: string): Promise<BuiltBackup> {
  const outer = new OuterArchive(path, stage);
  const header = plan.header!;
  await Deno.writeTextFile(outer.stagePath("backup-header"), header);
  await writeHmac(plan, outer.stagePath("backup-header"));
  await outer.append("backup-header");
  await outer.append("backup-header.hmac");
  const items: BuiltItem[] = [];
  for (const item of [await stageQubesXml(plan, stage), ...plan.items]) {
    const chunks = await packItem(plan, outer, item);
    items.push({ owner: item.owner, subdir: item.subdir, base: item.base, chunks });
  }
  return { path, header, chunkNames: outer.names, items, qubesXml: plan.qubesXml };
}
