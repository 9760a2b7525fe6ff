/**
 * Format 2 (R2-beta3 … R2): every item is a GNU tar multi-volume archive
 * (`tar -Pc --sparse -f … --tape-length <KiB> -C <dir> --xform … <base>`, spec §8.1); each
 * volume becomes one chunk, stored plain, gzipped, `openssl enc`-encrypted (its own process, so
 * its own salt), gzipped then encrypted ("emergency-doc"), or encrypted with `-z` ("beta3"),
 * each followed by its `.hmac` (spec §2.2, §6.4, §7, §8.7.1).
 *
 * Qubes read each volume from a FIFO; here a `--new-volume-script` sends every volume to its
 * own file. The volume bytes are the same.
 *
 * @module
 */

import { join } from "node:path";
import type { BuiltBackup, BuiltItem } from "./backup_builder.ts";
import { encryptStep, opensslHasZlib, writeHmac } from "./_openssl.ts";
import { OuterArchive } from "./_outer_archive.ts";
import type { Plan, PlannedItem } from "./_plan.ts";
import { mapLimit, TOOL_PARALLELISM } from "./_pool.ts";
import { run, runPipeline, type Step } from "./_run.ts";
import { chunkSuffix, stageQubesXml, xformExpression } from "./_item_names.ts";

/** The new-volume script: names volume N `<FIXTURE_VOLDIR>/<NNN>` (N from 1). */
const NEW_VOLUME_SCRIPT = `#!/bin/sh
printf '%s/%03d\\n' "$FIXTURE_VOLDIR" "$TAR_VOLUME" >&"$TAR_FD"
`;

/** The filters one volume goes through on its way to being a chunk. */
async function volumeSteps(plan: Plan): Promise<Step[]> {
  const gzip: Step = { cmd: "gzip", args: [] };
  if (plan.v2Variant === "beta3" && plan.encrypted && plan.compressed) {
    if (await opensslHasZlib()) return [encryptStep(plan, ["-z"])];
    if (plan.zlibEmulation) return [encryptStep(plan), { cmd: "pigz", args: ["-z"] }];
    throw new Error(
      'Cannot build format 2 "beta3" encrypted and compressed: this openssl has no "enc -z" (set zlibEmulation to pipe through "pigz -z")',
    );
  }
  const steps: Step[] = [];
  if (plan.compressed) steps.push(gzip);
  if (plan.encrypted) steps.push(encryptStep(plan));
  return steps;
}

/**
 * Packs one item into tar volumes and appends them as chunks with HMACs.
 *
 * @returns the item's chunk names
 */
async function packItem(
  plan: Plan,
  outer: OuterArchive,
  item: PlannedItem,
  script: string,
  steps: Step[],
): Promise<string[]> {
  const volumes = await Deno.makeTempDir({ dir: outer.stage, prefix: ".volumes-" });
  await run("tar", [
    "-Pc",
    "--sparse",
    "-f",
    join(volumes, "001"),
    "--tape-length",
    String(plan.volumeKiB),
    "-F",
    script,
    "-C",
    item.dir,
    "--xform",
    xformExpression(plan, item),
    item.base,
  ], { env: { FIXTURE_VOLDIR: volumes } });
  const files: string[] = [];
  for await (const e of Deno.readDir(volumes)) files.push(e.name);
  files.sort((a, b) => Number(a) - Number(b));
  const chunks = files.map((_, k) => `${item.subdir}${item.base}.${chunkSuffix(k)}`);
  await mapLimit(files, TOOL_PARALLELISM, async (file, k) => {
    const volume = join(volumes, file);
    const chunk = await outer.prepare(chunks[k]!);
    if (steps.length === 0) await Deno.rename(volume, chunk);
    else await runPipeline(steps, { stdinFile: volume, stdoutFile: chunk });
    await writeHmac(plan, chunk);
  });
  await outer.appendAll(chunks.flatMap((c) => [c, `${c}.hmac`]));
  await Deno.remove(volumes, { recursive: true });
  return chunks;
}

/** Writes a format-2 backup file at `path`, staging in `stage`. */
export async function writeFormat2(plan: Plan, path: string, stage: string): Promise<BuiltBackup> {
  const outer = new OuterArchive(path, stage);
  if (plan.header !== undefined) {
    await Deno.writeTextFile(outer.stagePath("backup-header"), plan.header);
    await writeHmac(plan, outer.stagePath("backup-header"));
    await outer.append("backup-header");
    await outer.append("backup-header.hmac");
  }
  const script = join(stage, ".new-volume.sh");
  await Deno.writeTextFile(script, NEW_VOLUME_SCRIPT, { mode: 0o755 });
  const steps = await volumeSteps(plan);
  const items: BuiltItem[] = [];
  for (const item of [await stageQubesXml(plan, stage), ...plan.items]) {
    const chunks = await packItem(plan, outer, item, script, steps);
    items.push({ owner: item.owner, subdir: item.subdir, base: item.base, chunks });
  }
  return {
    path,
    ...(plan.header !== undefined ? { header: plan.header } : {}),
    chunkNames: outer.names,
    items,
    qubesXml: plan.qubesXml,
  };
}
