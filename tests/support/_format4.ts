/**
 * Format 4 (R4.x): every item is one tar stream (`tar -Pc --sparse -C <dir> [--dereference]
 * [--use-compress-program=<filter>] --xform=s:^<base>:<subdir>\0: <base>`, spec §8.1), cut
 * into `chunkBytes` pieces, each encrypted by its own `scrypt enc` with the password
 * `<backup-id>!<chunk name>!<P>`; `backup-header.hmac` is the header encrypted with
 * `backup-header!<P>` (spec §11). The tool gets the password through
 * `--passphrase env:…` instead of a pseudo-terminal; the resulting file format is the same.
 *
 * @module
 */

import { join } from "node:path";
import type { BuiltBackup, BuiltItem } from "./backup_builder.ts";
import { chunkSuffix, stageQubesXml, xformExpression } from "./_item_names.ts";
import { OuterArchive } from "./_outer_archive.ts";
import type { Plan, PlannedItem } from "./_plan.ts";
import { mapLimit, TOOL_PARALLELISM } from "./_pool.ts";
import { run } from "./_run.ts";
import { splitStream } from "./_split.ts";

const PASSPHRASE_VARIABLE = "QUBES_FIXTURE_SCRYPT_PASSPHRASE";

/** `scrypt enc` of `input` into `output` with `password`. */
export async function scryptEncrypt(
  plan: Plan,
  input: string,
  output: string,
  password: string,
): Promise<void> {
  const args = ["enc"];
  if (plan.scryptLogN !== undefined) {
    args.push("--logN", String(plan.scryptLogN), "-r", "8", "-p", "1");
  } else if (plan.scryptMaxTime !== undefined) {
    args.push("-t", String(plan.scryptMaxTime));
  }
  args.push("--passphrase", `env:${PASSPHRASE_VARIABLE}`, input, output);
  await run("scrypt", args, { env: { [PASSPHRASE_VARIABLE]: password } });
}

async function packItem(plan: Plan, outer: OuterArchive, item: PlannedItem): Promise<string[]> {
  const tarArgs = ["-Pc", "--sparse"];
  if (plan.v4Tar === "pax-sparse" && item.base.endsWith(".img")) {
    tarArgs.push("--format=posix", "--sparse-version=1.0");
  }
  tarArgs.push("-C", item.dir);
  if (plan.dereference && !item.isDom0Home) tarArgs.push("--dereference");
  if (plan.compressed) tarArgs.push(`--use-compress-program=${plan.compressionFilter}`);
  tarArgs.push(`--xform=${xformExpression(plan, item)}`, item.base);
  const pieceDir = await Deno.makeTempDir({ dir: outer.stage, prefix: ".pieces-" });
  const pieces = await splitStream(plan, [{ cmd: "tar", args: tarArgs }], pieceDir);
  const names = pieces.map((_, i) => `${item.subdir}${item.base}.${chunkSuffix(i)}`);
  await mapLimit(pieces, TOOL_PARALLELISM, async (piece, i) => {
    const name = names[i]!;
    const chunk = await outer.prepare(`${name}.enc`);
    await scryptEncrypt(plan, piece, chunk, `${plan.backupId}!${name}!${plan.passphrase}`);
    await Deno.remove(piece);
  });
  const chunks = names.map((n) => `${n}.enc`);
  await outer.appendAll(chunks);
  await Deno.remove(pieceDir, { recursive: true });
  return chunks;
}

/** Writes a format-4 backup file at `path`, staging in `stage`. */
export async function writeFormat4(plan: Plan, path: string, stage: string): Promise<BuiltBackup> {
  const outer = new OuterArchive(path, stage);
  const header = plan.header!;
  const headerPath = outer.stagePath("backup-header");
  await Deno.writeTextFile(headerPath, header);
  await scryptEncrypt(
    plan,
    headerPath,
    outer.stagePath("backup-header.hmac"),
    `backup-header!${plan.passphrase}`,
  );
  await outer.append("backup-header");
  await outer.append("backup-header.hmac");
  const items: BuiltItem[] = [];
  const emptyDir = join(stage, ".empty");
  for (let item of [await stageQubesXml(plan, stage), ...plan.items]) {
    if (item.dir === "") {
      await Deno.mkdir(emptyDir, { recursive: true });
      await Deno.writeFile(join(emptyDir, item.base), new Uint8Array(0));
      item = { ...item, dir: emptyDir };
    }
    const chunks = await packItem(plan, outer, item);
    items.push({ owner: item.owner, subdir: item.subdir, base: item.base, chunks });
  }
  return {
    path,
    header,
    chunkNames: outer.names,
    items,
    qubesXml: plan.qubesXml,
    backupId: plan.backupId,
  };
}
