/**
 * Fuzz cases that found `restore --salvage` bugs, run again (`main.ts` runs its cases round-robin
 * over the seeds, so a case seed is run on its seed by starting the run that many seeds before).
 *
 * - v4-plain, case 400639: chunk `vm5/private.img.001.enc` copied twice (once after itself, once
 *   after `.002.enc`). The salvage reader placed each copy (it verifies under its own name) at
 *   the next chunk's offset, so `work/private.img.salvaged` differed from the original from
 *   chunk 2 on while its `.json` listed no lost range. A chunk that belongs before is now
 *   skipped (`lib/salvage/chunks.ts`).
 * - v3-plain, case 404565: the contents of chunks `work/private.img.001` and `.002` swapped
 *   (with their `.hmac`), then the `.hmac` of `.002` flipped. Uncompressed format 3 does not
 *   authenticate a chunk's place, so chunk 2's bytes were placed at chunk 1's offset, outside
 *   the lost ranges and without a notice. The bytes of every chunk after the first are now
 *   listed as `unchecked` in the `.salvaged.json`, with the restore's "cannot be checked"
 *   notice (`lib/salvage/lost.ts`).
 * - v2-plain, case 500810 (`backup-header` deleted) and v2-gzip, case 600827 (the header's
 *   version edited to 5, not re-authenticated): the header that stands in for a damaged one
 *   guessed version 3, and format-2 volumes read as one format-3 stream put their `M` headers
 *   (or a new gzip member) into the image's data while every HMAC verified: a wrong
 *   `work/private.img` under its real name. With a guessed version, a chunk after the first
 *   that starts like a volume of its own is now refused (`notStandaloneVolumes` in
 *   `lib/format/format3.ts`).
 * - v3-enc-gzip, case 600286: chunks 001 and 002 of `vm5/private.img` swapped. Salvage of the
 *   compressed item fed the garbage to node:zlib, whose plain `Error` ("invalid distance too far
 *   back") came out as exit 1. A decoder's own error is now a break in the item's data
 *   (`lib/salvage/compressed.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { SEED_SPECS } from "./_corpus.ts";

/** `salvages`: the case's salvage writes `.salvaged` files. */
const CASES: ReadonlyArray<{ label: string; caseSeed: number; salvages: boolean }> = [
  { label: "v4-plain", caseSeed: 400639, salvages: true },
  { label: "v3-plain", caseSeed: 404565, salvages: true },
  { label: "v2-plain", caseSeed: 500810, salvages: false },
  { label: "v2-gzip", caseSeed: 600827, salvages: false },
  { label: "v3-enc-gzip", caseSeed: 600286, salvages: false },
];

for (const { label, caseSeed, salvages } of CASES) {
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
    if (salvages) assert.match(stdout, /wrote \.salvaged files: [1-9]/, report);
  });
}
