// deno-lint-ignore-file no-console
/**
 * The `convert` benchmark (issue 14): a format-2 backup of one image (built like the main
 * bench's v2 input: gzip then openssl enc per 102 400 000-byte volume) converted to format 3,
 * against `restore` of the same backup and against writing the converted file's bytes
 * (`dd conv=fsync` of it). Target: convert takes no longer than restore plus that write.
 * Rounds alternate restore, convert, the write, and convert `--no-compress` (gzip is the costly
 * stage); each run records wall time, user+system CPU seconds, peak RSS and the load average.
 * Every conversion is restored afterwards (not timed) and checked bit-exact against the source
 * image.
 *
 * Usage: `deno task bench --convert [--size 1G] [--rounds 3]` (main.ts hands over here), or
 * `deno run --allow-all tests/bench/convert.ts [--size 256M] [--rounds 1] [--quick]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { recoverFlags } from "../e2e/_cli.ts";
import { checkOutput, sha256sum } from "./_check.ts";
import { buildInput, PASSPHRASE, QUBES_GEOMETRY, sourceImage } from "./_inputs.ts";
import { machineReport } from "./_machine.ts";
import { measure, type Measurement } from "./_measure.ts";
import { median, sizeLabel } from "./_report.ts";

const root = new URL("../../", import.meta.url).pathname;

function parseSize(text: string): number {
  const m = /^(\d+)([MG])$/i.exec(text.trim());
  if (m === null) throw new Error(`Cannot read the size "${text}": use e.g. 512M or 1G`);
  return Number(m[1]) * 1024 ** (m[2]!.toUpperCase() === "G" ? 3 : 2);
}

async function cli(args: string[]): Promise<{ cmd: string; args: string[] }> {
  return {
    cmd: Deno.execPath(),
    args: ["run", ...await recoverFlags(), `${root}main.ts`, ...args],
  };
}

const ENV = { QUBES_BACKUP_PASSPHRASE: PASSPHRASE, NO_COLOR: "1" };

/** Runs the convert case; returns 0 when the target is met and every result bit-exact. */
export async function runConvertBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: "string", default: "1G" },
      rounds: { type: "string", default: "3" },
      quick: { type: "boolean", default: false },
      convert: { type: "boolean" },
    },
    strict: false,
  });
  const size = values.quick ? 48 * 1024 ** 2 : parseSize(String(values.size));
  const rounds = values.quick ? 1 : Number(values.rounds);
  const geometry = values.quick
    ? { volumeKiB: 8000, chunkBytes: 8 * 1024 ** 2, scryptLogN: 14 }
    : QUBES_GEOMETRY;
  console.error(await machineReport());
  const scratch = await Deno.makeTempDir({ prefix: "qr-bench-convert-" });
  try {
    const image = await sourceImage(scratch, size);
    const sha256 = await sha256sum(image.path);
    const input = await buildInput(scratch, 2, image, geometry);
    console.error(
      `v2 ${sizeLabel(size)}: backup ${
        (input.backupBytes / 1e6).toFixed(0)
      } MB in ${input.chunks} chunks`,
    );
    type Kind = "restore" | "convert" | "plain" | "write";
    const runs: Record<Kind, Array<Measurement & { load: number }>> = {
      restore: [],
      convert: [],
      plain: [],
      write: [],
    };
    const load = async () => Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
    const timed = async (kind: Kind, cmd: string, args: string[], env?: Record<string, string>) => {
      const before = await load();
      const m = await measure(cmd, args, env ? { env } : {});
      const run = { ...m, load: Math.max(before, await load()) };
      runs[kind].push(run);
      return run;
    };
    const show = (run: Measurement & { load: number }) =>
      `${run.seconds.toFixed(2)} s (CPU ${run.cpuSeconds.toFixed(1)} s, RSS ${
        run.rssProcMiB.toFixed(0)
      } MiB, load ${run.load.toFixed(1)})`;
    /** Restores `backup` (not timed) and compares the image with the source. */
    const restoresExactly = async (backup: string, tag: string) => {
      const back = `${scratch}/check-${tag}`;
      const again = await cli(["restore", backup, "--output", back]);
      const a = await measure(again.cmd, again.args, { env: ENV });
      const check = a.code === 0
        ? await checkOutput(back, image.size, sha256)
        : { bitExact: false, problem: a.stderr };
      await Deno.remove(back, { recursive: true }).catch(() => {});
      return check;
    };
    let exact = true;
    for (let round = 1; round <= rounds; round++) {
      const out = `${scratch}/restored-${round}`;
      const restore = await cli(["restore", input.backup, "--output", out]);
      const r = await timed("restore", restore.cmd, restore.args, ENV);
      const rCheck = r.code === 0
        ? await checkOutput(out, image.size, sha256)
        : { bitExact: false, problem: r.stderr };
      await Deno.remove(out, { recursive: true }).catch(() => {});

      const converted = `${scratch}/converted-${round}.v3`;
      const convert = await cli(["convert", input.backup, "--output", converted]);
      const c = await timed("convert", convert.cmd, convert.args, ENV);
      let cCheck: { bitExact: boolean; problem?: string } = { bitExact: false, problem: c.stderr };
      let w: (Measurement & { load: number }) | undefined;
      if (c.code === 0) {
        w = await timed("write", "dd", [
          `if=${converted}`,
          `of=${converted}.copy`,
          "bs=4M",
          "conv=fsync",
          "status=none",
        ]);
        await Deno.remove(`${converted}.copy`);
        cCheck = await restoresExactly(converted, `c${round}`);
        await Deno.remove(converted);
      }
      const plainFile = `${scratch}/converted-plain-${round}.v3`;
      const plain = await cli(["convert", input.backup, "--output", plainFile, "--no-compress"]);
      const p = await timed("plain", plain.cmd, plain.args, ENV);
      const pCheck = p.code === 0
        ? await restoresExactly(plainFile, `p${round}`)
        : { bitExact: false, problem: p.stderr };
      await Deno.remove(plainFile).catch(() => {});
      exact &&= rCheck.bitExact && cCheck.bitExact && pCheck.bitExact;
      const verdict = (check: { bitExact: boolean; problem?: string }) =>
        check.bitExact ? "bit-exact" : `NOT bit-exact: ${check.problem}`;
      console.error(
        `  round ${round}: restore ${show(r)} ${verdict(rCheck)}; convert ${show(c)} ${
          verdict(cCheck)
        }; write ${w ? show(w) : "-"}; convert --no-compress ${show(p)} ${verdict(pCheck)}${
          w
            ? `; convert / (restore + write) ${(c.seconds / (r.seconds + w.seconds)).toFixed(2)}x`
            : ""
        }`,
      );
    }
    const med = (kind: Kind, pick: (run: Measurement) => number) =>
      runs[kind].length > 0 ? median(runs[kind].map(pick)) : Number.NaN;
    const wall = (kind: Kind) => med(kind, (run) => run.seconds);
    const loads = Object.values(runs).flat().map((run) => run.load);
    const restoreWall = wall("restore");
    const target = restoreWall + wall("write");
    console.log(
      `\nconvert v2 ${sizeLabel(size)}, median of ${rounds} alternating rounds, load average ${
        Math.min(...loads).toFixed(1)
      }-${Math.max(...loads).toFixed(1)} (shared machine: CPU seconds are steadier than wall)`,
    );
    const line = (label: string, kind: Kind) => {
      const cpu = med(kind, (run) => run.cpuSeconds);
      const rss = Math.max(...runs[kind].map((run) => run.rssProcMiB));
      const ratio = kind === "restore"
        ? ""
        : ` = ${(wall(kind) / restoreWall).toFixed(2)}x restore`;
      console.log(
        `  ${label.padEnd(22)} ${wall(kind).toFixed(2).padStart(7)} s wall${ratio}, ${
          cpu.toFixed(1)
        } s CPU, peak RSS ${rss.toFixed(0)} MiB`,
      );
    };
    line("restore", "restore");
    line("convert", "convert");
    line("convert --no-compress", "plain");
    line("writing the output", "write");
    const pass = exact && wall("convert") <= target;
    const cpuTarget = med("restore", (run) => run.cpuSeconds) +
      med("write", (run) => run.cpuSeconds);
    for (
      const [label, kind] of [["convert", "convert"], ["convert --no-compress", "plain"]] as const
    ) {
      const ok = wall(kind) <= target;
      const cpu = med(kind, (run) => run.cpuSeconds);
      console.log(
        `${ok ? "PASS" : "FAIL"}: ${label} <= restore + writing the output: ${
          wall(kind).toFixed(2)
        } s vs ${target.toFixed(2)} s = ${(wall(kind) / target).toFixed(2)}x (CPU s ${
          cpu.toFixed(1)
        } vs ${cpuTarget.toFixed(1)} = ${(cpu / cpuTarget).toFixed(2)}x)`,
      );
    }
    if (!exact) console.log("FAIL: a result was NOT bit-exact");
    return pass ? 0 : 1;
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await runConvertBench(Deno.args));
