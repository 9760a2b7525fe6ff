// deno-lint-ignore-file no-console
/**
 * `deno task bench`: builds Qubes backups with the real tools and times our restore against the
 * emergency page's manual procedure and the best native one-pass pipeline, in alternating
 * rounds; prints medians, ratios, peak RSS and bit-exactness, then one PASS/FAIL line per
 * target of the performance issue. Figures are recorded in docs/performance.md.
 *
 * Usage: `deno task bench [--size 1G,4G] [--formats 2,3,4] [--rounds 3] [--v4-size 512M]
 * [--quick] [--keep]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { sha256sum } from "./_check.ts";
import { runConvertBench } from "./convert.ts";
import {
  type BenchInput,
  buildInput,
  type Geometry,
  QUBES_GEOMETRY,
  sourceImage,
} from "./_inputs.ts";
import { machineReport } from "./_machine.ts";
import { judgeTargets, renderTable, sizeLabel } from "./_report.ts";
import { type CaseResult, runCase } from "./_run_case.ts";
import { benchFiles } from "./files.ts";

const USAGE = `deno task bench [options]

  --size LIST      format 2 and 3 image sizes (default 1G,4G)
  --formats LIST   formats to run (default 2,3,4)
  --rounds N       alternating rounds per case (default 3)
  --v4-size SIZE   format 4 image size (default 512M: every chunk costs a ~5 s scrypt KDF)
  --quick          small images, small volumes, cheap scrypt, 1 round (tests the harness)
  --keep           keep the work folder
  --convert        instead: convert of a format-2 backup against restore of it
                   (tests/bench/convert.ts; --size one size, default 1G)
  --files          only the files case: files get vs debugfs rdump of a home
                   tree (--files-size, default 1G; --quick: 64M)
  --files-size SIZE
  --fresh-fs       files case: each run writes into a new ext4 file system
                   (a loop device over an image in /dev/shm; needs root), so that
                   files deleted before and the disk's writeback do not time the
                   runs (tests/bench/files.ts)`;

/** `512M`, `1G`, `4G` -> bytes. */
function parseSize(text: string): number {
  const m = /^(\d+)([MG])$/i.exec(text.trim());
  if (m === null) throw new Error(`Cannot read the size "${text}": use e.g. 512M or 4G`);
  return Number(m[1]) * 1024 ** (m[2]!.toUpperCase() === "G" ? 3 : 2);
}

async function ensureGnuTime(): Promise<void> {
  try {
    await Deno.stat("/usr/bin/time");
  } catch {
    console.error("Installing GNU time (apt-get install -y time) for peak RSS ...");
    const out = await new Deno.Command("apt-get", { args: ["install", "-y", "time"] }).output();
    if (!out.success) throw new Error("Cannot measure peak RSS: /usr/bin/time is missing");
  }
}

async function main(): Promise<number> {
  if (Deno.args.includes("--convert")) return await runConvertBench(Deno.args);
  const { values } = parseArgs({
    options: {
      size: { type: "string", default: "1G,4G" },
      formats: { type: "string", default: "2,3,4" },
      rounds: { type: "string" },
      "v4-size": { type: "string", default: "512M" },
      quick: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      files: { type: "boolean", default: false },
      "files-size": { type: "string", default: "1G" },
      "fresh-fs": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const quick = values.quick;
  const sizes = quick ? [48 * 1024 ** 2] : values.size.split(",").map(parseSize);
  const v4Size = quick ? 48 * 1024 ** 2 : parseSize(values["v4-size"]);
  const formats = values.formats.split(",").map(Number) as Array<2 | 3 | 4>;
  const rounds = Number(values.rounds ?? (quick ? 1 : 3));
  const geometry: Geometry = quick
    ? { volumeKiB: 8000, chunkBytes: 8 * 1024 ** 2, scryptLogN: 14 }
    : QUBES_GEOMETRY;

  await ensureGnuTime();
  console.error(await machineReport());
  if (values.files) {
    const lines = await benchFiles({
      treeBytes: quick ? 64 * 1024 ** 2 : parseSize(values["files-size"]),
      rounds,
      keep: values.keep,
      log: (l) => console.error(l),
      backupFormats: formats.filter((f): f is 2 | 3 => f === 2 || f === 3),
      geometry,
      freshFs: values["fresh-fs"],
    });
    for (const l of lines) console.log(l);
    return lines.at(-1)!.startsWith("PASS") ? 0 : 1;
  }
  console.error("Caching the CLI's modules (deno cache main.ts) ...");
  await new Deno.Command(Deno.execPath(), {
    args: ["cache", new URL("../../main.ts", import.meta.url).pathname],
    stderr: "null",
  }).output();

  const root = await Deno.makeTempDir({ prefix: "qr-bench-" });
  console.error(`Work folder: ${root}`);
  const results: CaseResult[] = [];
  try {
    const cases: Array<[2 | 3 | 4, number]> = [];
    for (const f of formats) {
      if (f === 4) cases.push([4, v4Size]);
      else for (const s of sizes) cases.push([f, s]);
    }
    for (const [format, size] of cases) {
      const image = await sourceImage(root, size);
      const sha256 = await sha256sum(image.path);
      const input: BenchInput = await buildInput(root, format, image, geometry);
      console.error(
        `v${format} ${sizeLabel(size)}: backup ${(input.backupBytes / 1e6).toFixed(0)} MB, ` +
          `${input.chunks} chunks of ${input.item}, built in ${input.buildSeconds.toFixed(0)} s`,
      );
      results.push(await runCase(input, sha256, rounds, root, (l) => console.error(l)));
      if (!values.keep) {
        await Deno.remove(input.backup.slice(0, input.backup.lastIndexOf("/")), {
          recursive: true,
        });
      }
    }
  } finally {
    if (values.keep) console.error(`Kept ${root}`);
    else await Deno.remove(root, { recursive: true });
  }

  console.log(`\nRounds: ${rounds}${quick ? " (--quick: sizes are not the targets')" : ""}`);
  for (const r of results) {
    console.log(
      `v${r.input.format} ${sizeLabel(r.input.image.size)}: backup ` +
        `${(r.input.backupBytes / 1e6).toFixed(0)} MB in ${r.input.chunks} chunks; ` +
        `image sha256 ${r.sha256.slice(0, 16)}…`,
    );
  }
  console.log(`\n${renderTable(results)}\n`);
  const verdicts = judgeTargets(results);
  for (const v of verdicts) console.log(v.line);
  return verdicts.every((v) => v.pass) ? 0 : 1;
}

Deno.exit(await main());
