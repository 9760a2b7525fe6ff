/**
 * The benchmark's results as a table (medians, MB/s, ratios, peak RSS, bit-exactness) and the
 * issue's targets as PASS/FAIL lines.
 *
 * @module
 */

import type { CaseResult, Tool, ToolRuns } from "./_run_case.ts";

const TOOL_NAMES: Record<Tool, string> = {
  ours: "qubes-recover",
  native: "native one-pass",
  manual: "emergency page",
};

/** The median of `values` (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median wall seconds of one tool. */
export function medianSeconds(runs: ToolRuns): number {
  return median(runs.runs.map((r) => r.seconds));
}

/** Highest peak RSS (largest single process, MiB) over the tool's runs. */
export function peakRss(runs: ToolRuns): number {
  return Math.max(...runs.runs.map((r) => r.rssProcMiB));
}

function toolRuns(result: CaseResult, tool: Tool): ToolRuns {
  return result.tools.find((t) => t.tool === tool)!;
}

/** Ratio of our median to `tool`'s median. */
export function ratio(result: CaseResult, tool: Tool): number {
  return medianSeconds(toolRuns(result, "ours")) / medianSeconds(toolRuns(result, tool));
}

/** `1 GiB`, `512 MiB`. */
export function sizeLabel(bytes: number): string {
  const gib = bytes / 1024 ** 3;
  return gib >= 1 ? `${+gib.toFixed(2)} GiB` : `${+(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** A short name of a case: `v2 1 GiB`. */
export function caseLabel(result: CaseResult): string {
  return `v${result.input.format} ${sizeLabel(result.input.image.size)}`;
}

/** The results table as Markdown (one row per case and tool). */
export function renderTable(results: readonly CaseResult[]): string {
  const rows = [
    "| case | tool | median s | MB/s | ours / this | peak RSS MiB (process) | peak RSS MiB (tree) | bit-exact |",
    "|---|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const result of results) {
    for (const runs of result.tools) {
      const seconds = medianSeconds(runs);
      const mbps = result.input.image.size / 1e6 / seconds;
      const exact = runs.checks.every((c) => c.bitExact) ? "yes" : "NO";
      rows.push(
        `| ${caseLabel(result)} | ${TOOL_NAMES[runs.tool]} | ${seconds.toFixed(2)} | ` +
          `${mbps.toFixed(0)} | ${ratio(result, runs.tool).toFixed(3)} | ` +
          `${peakRss(runs).toFixed(0)} | ` +
          `${Math.max(...runs.runs.map((r) => r.rssTreeMiB)).toFixed(0)} | ${exact} |`,
      );
    }
  }
  return rows.join("\n");
}

/** One target line. */
export interface Verdict {
  pass: boolean;
  line: string;
}

function verdict(pass: boolean, what: string, measured: string): Verdict {
  return { pass, line: `${pass ? "PASS" : "FAIL"} ${what}: ${measured}` };
}

/**
 * The targets, judged on the smallest case of each format (1 GiB by default) and, for
 * memory growth, the largest format-2 case against the smallest.
 */
export function judgeTargets(results: readonly CaseResult[]): Verdict[] {
  const verdicts: Verdict[] = [];
  const byFormat = (f: number) =>
    results.filter((r) => r.input.format === f).sort((a, b) =>
      a.input.image.size - b.input.image.size
    );
  const exact = results.every((r) => r.tools.every((t) => t.checks.every((c) => c.bitExact)));
  verdicts.push(verdict(exact, "every output bit-exact", exact ? "yes" : "no"));
  const [v2, v2big] = [byFormat(2)[0], byFormat(2).at(-1)];
  if (v2 !== undefined) {
    const l = caseLabel(v2);
    const n = ratio(v2, "native");
    const m = ratio(v2, "manual");
    const rss = peakRss(toolRuns(v2, "ours"));
    verdicts.push(verdict(n <= 0.40, `${l}: ours <= 0.40x native one-pass`, `${n.toFixed(3)}x`));
    verdicts.push(verdict(m <= 0.15, `${l}: ours <= 0.15x emergency page`, `${m.toFixed(3)}x`));
    verdicts.push(verdict(rss <= 256, `${l}: ours peak RSS <= 256 MiB`, `${rss.toFixed(0)} MiB`));
    if (v2big !== undefined && v2big !== v2) {
      const big = peakRss(toolRuns(v2big, "ours"));
      verdicts.push(verdict(
        big <= rss * 1.10,
        `${caseLabel(v2big)}: ours peak RSS within 10% of ${l}`,
        `${big.toFixed(0)} vs ${rss.toFixed(0)} MiB (${((big / rss - 1) * 100).toFixed(1)}%)`,
      ));
    }
  }
  const v3 = byFormat(3)[0];
  if (v3 !== undefined) {
    const l = caseLabel(v3);
    const n = ratio(v3, "native");
    const rss = peakRss(toolRuns(v3, "ours"));
    verdicts.push(verdict(n <= 0.50, `${l}: ours <= 0.50x native one-pass`, `${n.toFixed(3)}x`));
    verdicts.push(verdict(rss <= 256, `${l}: ours peak RSS <= 256 MiB`, `${rss.toFixed(0)} MiB`));
  }
  const v4 = byFormat(4)[0];
  if (v4 !== undefined) {
    const m = ratio(v4, "manual");
    verdicts.push(
      verdict(
        m <= 0.60,
        `${caseLabel(v4)}: ours <= 0.60x the page's scrypt loop`,
        `${m.toFixed(3)}x`,
      ),
    );
  }
  return verdicts;
}
