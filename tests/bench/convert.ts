// deno-lint-ignore-file no-console
/**
 * The `convert` benchmark (issue 14): a format-2 backup of one image (built like the main
 * bench's v2 input: gzip then openssl enc per 102 400 000-byte volume) converted to format 3,
 * against `restore` of the same backup and against writing the converted file's bytes
 * (`dd conv=fsync` of it). Target: convert takes no longer than restore plus that write.
 * Rounds alternate restore, convert, write, and convert `--no-compress` (gzip is the costly
 * stage). Every conversion is restored afterwards (not timed) and checked bit-exact against the
 * source image.
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
    const times: Record<"restore" | "convert" | "write" | "plain", number[]> = {
      restore: [],
      convert: [],
      write: [],
      plain: [],
    };
    let exact = true;
    for (let round = 1; round <= rounds; round++) {
      const out = `${scratch}/restored-${round}`;
      const restore = await cli(["restore", input.backup, "--output", out]);
      const r = await measure(restore.cmd, restore.args, { env: ENV });
      const rCheck = r.code === 0
        ? await checkOutput(out, image.size, sha256)
        : { bitExact: false, problem: r.stderr };
      await Deno.remove(out, { recursive: true }).catch(() => {});

      const converted = `${scratch}/converted-${round}.v3`;
      const convert = await cli(["convert", input.backup, "--output", converted]);
      const c = await measure(convert.cmd, convert.args, { env: ENV });
      let cCheck = { bitExact: false, problem: c.stderr } as {
        bitExact: boolean;
        problem?: string;
      };
      let w: Measurement | undefined;
      if (c.code === 0) {
        w = await measure("dd", [
          `if=${converted}`,
          `of=${converted}.copy`,
          "bs=4M",
          "conv=fsync",
          "status=none",
        ]);
        await Deno.remove(`${converted}.copy`);
        const back = `${scratch}/converted-restored-${round}`;
        const again = await cli(["restore", converted, "--output", back]);
        const a = await measure(again.cmd, again.args, { env: ENV });
        cCheck = a.code === 0
          ? await checkOutput(back, image.size, sha256)
          : { bitExact: false, problem: a.stderr };
        await Deno.remove(back, { recursive: true }).catch(() => {});
        await Deno.remove(converted);
      }
      const plainFile = `${scratch}/converted-plain-${round}.v3`;
      const plain = await cli(["convert", input.backup, "--output", plainFile, "--no-compress"]);
      const p = await measure(plain.cmd, plain.args, { env: ENV });
      if (p.code === 0) times.plain.push(p.seconds);
      else exact = false;
      await Deno.remove(plainFile).catch(() => {});
      times.restore.push(r.seconds);
      times.convert.push(c.seconds);
      if (w) times.write.push(w.seconds);
      exact &&= rCheck.bitExact && cCheck.bitExact;
      console.error(
        `  round ${round}: restore ${r.seconds.toFixed(2)} s (RSS ${r.rssProcMiB.toFixed(0)} MiB, ${
          rCheck.bitExact ? "bit-exact" : `NOT bit-exact: ${rCheck.problem}`
        }), convert ${c.seconds.toFixed(2)} s (RSS ${c.rssProcMiB.toFixed(0)} MiB, ${
          cCheck.bitExact ? "restores bit-exact" : `NOT bit-exact: ${cCheck.problem}`
        }), write ${w ? w.seconds.toFixed(2) : "-"} s, convert --no-compress ${
          p.seconds.toFixed(2)
        } s (RSS ${p.rssProcMiB.toFixed(0)} MiB)`,
      );
    }
    const restore = median(times.restore);
    const convert = median(times.convert);
    const write = times.write.length > 0 ? median(times.write) : Number.NaN;
    const plainMedian = times.plain.length > 0 ? median(times.plain) : Number.NaN;
    const pass = exact && convert <= restore + write;
    console.log(
      `\nconvert v2 ${sizeLabel(size)} (median of ${rounds}): restore ${restore.toFixed(2)} s, ` +
        `convert ${convert.toFixed(2)} s (${(convert / restore).toFixed(2)}x restore; ` +
        `includes reading the result back), writing the output ${write.toFixed(2)} s, ` +
        `convert --no-compress ${plainMedian.toFixed(2)} s (${
          (plainMedian / restore).toFixed(2)
        }x)`,
    );
    console.log(
      `${pass ? "PASS" : "FAIL"}: convert <= restore + writing the output (${
        convert.toFixed(2)
      } s vs ${(restore + write).toFixed(2)} s)${exact ? "" : "; a result was NOT bit-exact"}`,
    );
    return pass ? 0 : 1;
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await runConvertBench(Deno.args));
