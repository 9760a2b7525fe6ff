// deno-lint-ignore-file no-console
/**
 * `deno task fuzz-ext [CASES] [FIRST_SEED]`: the ext reader fuzzer for longer runs (default
 * 100 000 cases per variant from seed 1_000_000). Prints the first failing seed, if any.
 *
 * @module
 */

import { fuzz, fuzzImages } from "./_fuzz.ts";

const cases = Number(Deno.args[0] ?? 100_000);
const first = Number(Deno.args[1] ?? 1_000_000);
const work = await Deno.makeTempDir({ prefix: "ext-fuzz-" });
try {
  const images = await fuzzImages(work);
  const started = performance.now();
  const totals = await fuzz(images, first, cases);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${
      cases * images.size
    } cases in ${seconds} s: ${totals.read} read (with notices where damaged), ${totals.refused} refused; largest data read ${totals.maxDataBytes} bytes`,
  );
} finally {
  await Deno.remove(work, { recursive: true });
}
