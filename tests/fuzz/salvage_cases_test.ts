/**
 * Fuzz cases that found `restore --salvage` bugs, run again (`main.ts` runs its cases round-robin
 * over the seeds, so a case seed is run on its seed by starting the run that many seeds before).
 *
 * - v4-plain, case 400639: chunk `vm5/private.img.001.enc` copied twice (once after itself, once
 *   after `.002.enc`). The salvage reader placed each copy (it verifies under its own name) at
 *   the next chunk's offset, so `work/private.img.salvaged` differed from the original from
 *   chunk 2 on while its `.json` listed no lost range. A chunk that belongs before is now
 *   skipped (`lib/salvage/chunks.ts`).
 * - v3-enc-gzip, case 600286: chunks 001 and 002 of `vm5/private.img` swapped. Salvage of the
 *   compressed item fed the garbage to node:zlib, whose plain `Error` ("invalid distance too far
 *   back") came out as exit 1. A decoder's own error is now a break in the item's data
 *   (`lib/salvage/compressed.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { SEED_SPECS } from "./_corpus.ts";

/** `wrote`: the case's salvage writes `.salvaged` files. */
const CASES: ReadonlyArray<{ label: string; caseSeed: number; wrote: boolean }> = [
  { label: "v4-plain", caseSeed: 400639, wrote: true },
  { label: "v3-enc-gzip", caseSeed: 600286, wrote: false },
];

for (const { label, caseSeed, wrote } of CASES) {
  Deno.test(`fuzz --salvage: ${label} case ${caseSeed} ends cleanly`, async () => {
    const at = SEED_SPECS.findIndex((s) => s.label === label);
    const main = new URL("./main.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", main, String(at + 1), String(caseSeed - at)],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const report = `${stdout}\n${new TextDecoder().decode(out.stderr)}`;
    assert.equal(out.code, 0, report);
    assert.match(stdout, /^failures: 0$/m, report);
    if (wrote) assert.match(stdout, /wrote \.salvaged files: [1-9]/, report);
  });
}
