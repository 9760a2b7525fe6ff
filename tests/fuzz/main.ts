// deno-lint-ignore-file no-console
/**
 * `deno task fuzz [CASES] [FIRST_SEED]`: the seeded mutation fuzzer at length (default 100 000
 * cases from seed 1). Prints progress every 1000 cases, the figures at the end, and every
 * failure with the seed that reproduces it; exits 1 when there was any, and 2 when the run
 * itself broke (an error outside a case, printed with the case it stopped at).
 *
 * `_run.ts` takes every unhandled rejection as a case's failure (it must, to judge cases), which
 * also stops Deno from reporting an error that escapes this module; so everything here is caught
 * and printed explicitly, and an `unload` listener refuses to end with status 0 before the
 * summary was printed.
 *
 * @module
 */

import { buildSeeds } from "./_corpus.ts";
import { fuzz, summary } from "./_run.ts";

let finished = false;
globalThis.addEventListener("unload", () => {
  if (finished || Deno.exitCode !== 0) return;
  console.error("fuzz: internal error: the run ended before its summary");
  Deno.exitCode = 2;
});

const count = Number(Deno.args[0] ?? 100_000);
const first = Number(Deno.args[1] ?? 1);
const work = await Deno.makeTempDir({ prefix: "qr-fuzz-" });
const started = performance.now();
let reached = 0;
try {
  const seeds = await buildSeeds(work);
  let shown = 0;
  const stats = await fuzz(seeds, count, first, work, (s) => {
    const seconds = Math.round((performance.now() - started) / 1000);
    console.log(`${s.cases} cases, ${s.failures.length} failures, ${seconds} s`);
    if (s.cases % 1000 === 0) console.log(`  ${summary(s).join("; ")}`);
    for (; shown < s.failures.length; shown++) console.log(`FAIL ${s.failures[shown]}`);
  }, (caseSeed) => reached = caseSeed);
  for (const line of summary(stats)) console.log(line);
  console.log(`seeds ${first}..${first + count - 1}, ${seeds.length} seed backups`);
  console.log(`time: ${Math.round((performance.now() - started) / 1000)} s`);
  for (const failure of stats.failures.slice(shown)) console.log(`FAIL ${failure}`);
  Deno.exitCode = stats.failures.length > 0 ? 1 : 0;
  finished = true;
} catch (error) {
  const what = error instanceof Error ? error.stack : String(error);
  console.log(`RUN BROKE at case seed ${reached}: ${what}`);
  console.error(`fuzz: the run broke at case seed ${reached}: ${what}`);
  Deno.exitCode = 2;
} finally {
  await new Deno.Command("rm", { args: ["-rf", work] }).output();
}
