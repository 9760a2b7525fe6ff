/**
 * Issue 9: the seeded mutation fuzzer in the normal suite (a short run; `deno task fuzz` runs
 * 100 000 cases). Every case must end in a correct restore or one clean error line; see
 * `_run.ts` for what is judged.
 *
 * The run is a process of its own (`main.ts`): `deno test --parallel` runs every test file in
 * one process, where the resident memory the fuzzer bounds would be the other tests' too.
 */

import assert from "node:assert/strict";

/**
 * Cases in the normal suite. Measured: 800 cases cost 23 s user + 7 s sys CPU (67 s wall at a
 * load average of 17 on 2 cores), so 2000 take about 75 s of CPU; with the `--salvage` pass of
 * failed cases, 2000 cost 102 s user + 28 s sys (172 s wall at a load average of 7-8).
 */
const CASES = 2000;

/** The count after `label: ` in the run's figures (0 when the line is not there). */
function figure(output: string, label: string): number {
  const line = output.split("\n").find((l) => l.startsWith(`${label}: `));
  return line === undefined ? 0 : Number(line.slice(label.length + 2));
}

Deno.test(`fuzz: ${CASES} seeded mutants of real backups of every format end cleanly`, async () => {
  const main = new URL("./main.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", main, String(CASES), "1"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const report = `${stdout}\n${new TextDecoder().decode(out.stderr)}`;
  assert.equal(out.code, 0, report);
  assert.equal(figure(stdout, "failures"), 0, report);
  assert.equal(figure(stdout, "cases"), CASES, report);
  // Both outcomes were exercised: the corpus is not all broken or all intact.
  const restored = figure(stdout, "restored identical to the seed") +
    figure(stdout, "restored after a re-authenticated change");
  assert.ok(restored > CASES / 20, report);
  const refused = stdout.split("\n").find((l) => l.startsWith("refused with one clean line: "));
  const errors = [...(refused ?? "").matchAll(/exit \d+: (\d+)/g)]
    .reduce((n, m) => n + Number(m[1]), 0);
  assert.ok(errors > CASES / 2, report);
});
