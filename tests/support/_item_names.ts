/**
 * Names shared by the format writers: chunk suffixes, the `--xform` expressions and the staged
 * qubes.xml item.
 *
 * @module
 */

import { join } from "node:path";
import type { Plan, PlannedItem } from "./_plan.ts";

/** Chunk index as Qubes formatted it with `%03d`: `000` … `999`, then `1000`, `1001`, … */
export function chunkSuffix(index: number): string {
  return String(index).padStart(3, "0");
}

/**
 * The `--xform` expression renaming `<base>…` to `<subdir><base>…`: `s:^[^/]:<subdir>\0:`
 * (≤ R2-rc1, "old") or `s:^<base>:<subdir>\0:` (spec §8.1). `<base>` is used as a regex
 * unescaped, as Qubes did (so `.` matches any first character).
 */
export function xformExpression(plan: Plan, item: PlannedItem): string {
  return plan.xform === "old" && plan.format <= 2
    ? `s:^[^/]:${item.subdir}\\0:`
    : `s:^${item.base}:${item.subdir}\\0:`;
}

/** Writes qubes.xml into its own folder under `stage` and returns it as an item. */
export async function stageQubesXml(plan: Plan, stage: string): Promise<PlannedItem> {
  const dir = join(stage, ".qubes-xml");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "qubes.xml"), plan.qubesXml);
  return { owner: "", dir, base: "qubes.xml", subdir: "", isDom0Home: false };
}
