/**
 * One benchmark case: our CLI, the native one-pass pipeline and the emergency page's manual
 * procedure restoring the same backup, in alternating rounds, each run in fresh folders and
 * checked bit-exact afterwards (outside the timed part).
 *
 * @module
 */

import { recoverFlags } from "../e2e/_cli.ts";
import { checkOutput, type OutputCheck } from "./_check.ts";
import { type BenchInput, PASSPHRASE } from "./_inputs.ts";
import { measure, type Measurement } from "./_measure.ts";
import { type Competitor, scriptFor } from "./_scripts.ts";

/** Who restores. */
export type Tool = "ours" | Competitor;

/** The order tools run in within a round. */
export const TOOLS: readonly Tool[] = ["ours", "native", "manual"];

/** Every run of one tool in one case. */
export interface ToolRuns {
  tool: Tool;
  runs: Measurement[];
  checks: OutputCheck[];
}

/** The result of {@link runCase}. */
export interface CaseResult {
  input: BenchInput;
  /** Source image SHA-256. */
  sha256: string;
  tools: ToolRuns[];
}

const root = new URL("../../", import.meta.url).pathname;

/** The command line of one tool's run. */
async function commandFor(
  tool: Tool,
  input: BenchInput,
  work: string,
  out: string,
): Promise<{ cmd: string; args: string[]; env: Record<string, string> }> {
  if (tool === "ours") {
    return {
      cmd: Deno.execPath(),
      args: [
        "run",
        ...await recoverFlags(),
        `${root}main.ts`,
        "restore",
        input.backup,
        "--output",
        out,
      ],
      env: { QUBES_BACKUP_PASSPHRASE: PASSPHRASE, NO_COLOR: "1" },
    };
  }
  return {
    cmd: "bash",
    args: ["-c", scriptFor(input.format, tool)],
    env: {
      BACKUP: input.backup,
      WORK: work,
      OUT: out,
      ITEM: input.item,
      BENCH_PASS: PASSPHRASE,
      NPROC: String(navigator.hardwareConcurrency),
    },
  };
}

/** Runs `tool` once on `input` in fresh folders under `scratch`, then checks and cleans up. */
async function runOnce(
  tool: Tool,
  input: BenchInput,
  sha256: string,
  scratch: string,
): Promise<{ run: Measurement; check: OutputCheck }> {
  const work = await Deno.makeTempDir({ dir: scratch, prefix: `${tool}-work-` });
  const out = await Deno.makeTempDir({ dir: scratch, prefix: `${tool}-out-` });
  try {
    const { cmd, args, env } = await commandFor(tool, input, work, out);
    const run = await measure(cmd, args, { env, cwd: work });
    const check: OutputCheck = run.code === 0
      ? await checkOutput(out, input.image.size, sha256)
      : { bitExact: false, problem: `exit code ${run.code}: ${run.stderr.trim().slice(-400)}` };
    return { run, check };
  } finally {
    await Deno.remove(work, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
}

/**
 * Runs every tool `rounds` times on `input`, alternating (ours, native, manual, ours, …).
 * `log` receives one line per run.
 */
export async function runCase(
  input: BenchInput,
  sha256: string,
  rounds: number,
  scratch: string,
  log: (line: string) => void,
): Promise<CaseResult> {
  const tools: ToolRuns[] = TOOLS.map((tool) => ({ tool, runs: [], checks: [] }));
  for (let round = 1; round <= rounds; round++) {
    for (const entry of tools) {
      const { run, check } = await runOnce(entry.tool, input, sha256, scratch);
      entry.runs.push(run);
      entry.checks.push(check);
      log(
        `  round ${round} ${entry.tool.padEnd(6)} ${run.seconds.toFixed(2)} s, ` +
          `RSS ${run.rssProcMiB.toFixed(0)} MiB (tree ${run.rssTreeMiB.toFixed(0)}), ` +
          (check.bitExact ? "bit-exact" : `NOT bit-exact: ${check.problem}`),
      );
    }
  }
  return { input, sha256, tools };
}
