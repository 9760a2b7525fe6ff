/**
 * Slicing an item stream into chunks for formats 3 and 4: the stream comes out of a pipeline of
 * real tools and is cut by `split --bytes=<chunkBytes>` (spec §2.4, [CLI-T] `handle_v3_file`).
 *
 * @module
 */

import { join } from "node:path";
import type { Plan } from "./_plan.ts";
import { runPipeline, type Step } from "./_run.ts";

/**
 * Runs `steps | split --numeric-suffixes --suffix-length=6 --bytes=<chunkBytes> - <dir>/piece.`
 * and returns the pieces in order. split is given 6 suffix digits (its `--suffix-length=3`
 * would stop at 1000 pieces); the caller names chunks `%03d` as Qubes did.
 *
 * An empty piece is added at the end when the stream length is an exact multiple of
 * `chunkBytes` (what Qubes wrote, trap T12), or always / never per `plan.trailingEmptyChunk`.
 */
export async function splitStream(plan: Plan, steps: Step[], dir: string): Promise<string[]> {
  await runPipeline([
    ...steps,
    {
      cmd: "split",
      args: [
        "--numeric-suffixes",
        "--suffix-length=6",
        `--bytes=${plan.chunkBytes}`,
        "-",
        join(dir, "piece."),
      ],
    },
  ]);
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.startsWith("piece.")) names.push(e.name);
  names.sort();
  const pieces = names.map((n) => join(dir, n));
  let total = 0;
  for (const p of pieces) total += (await Deno.stat(p)).size;
  const addEmpty = plan.trailingEmptyChunk ?? (total > 0 && total % plan.chunkBytes === 0);
  if (addEmpty) {
    const empty = join(dir, "piece.empty");
    await Deno.writeFile(empty, new Uint8Array(0));
    pieces.push(empty);
  }
  return pieces;
}
