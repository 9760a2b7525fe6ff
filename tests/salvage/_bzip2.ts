/**
 * The blocks of a bzip2 file as the real `bzip2recover` finds them: for expected values of
 * salvage tests (`bzip2 -dc` hands on whole 5000-byte buffers only, so a stream cut short
 * gives less than its whole blocks).
 *
 * @module
 */

import { sh } from "../e2e/_cli.ts";

/** The blocks of bzip2 file `name` in `dir`, in order (bit ranges, output lengths, output offsets). */
export async function bzip2Blocks(dir: string, name: string) {
  // bzip2recover names its blocks rec<NNNNN><name>, <name> ending in .bz2.
  await sh(`cp '${dir}/${name}' '${dir}/blocks.bz2'`);
  const report = await sh(`cd '${dir}' && bzip2recover blocks.bz2 2>&1`);
  const blocks: { start: number; end: number; length: number; output: number }[] = [];
  let output = 0;
  for (const m of report.matchAll(/block (\d+) runs from (\d+) to (\d+)/g)) {
    const file = `${dir}/rec${m[1]!.padStart(5, "0")}blocks.bz2`;
    const length = Number((await sh(`bzip2 -dc '${file}' | wc -c`)).trim());
    await Deno.remove(file);
    blocks.push({ start: Number(m[2]), end: Number(m[3]), length, output });
    output += length;
  }
  return blocks;
}

/**
 * How many bytes libbzip2 (through Python's `bz2`) decodes from the first `bytes` bytes of the
 * bzip2 file `file`, every stream of a multi-stream file (pbzip2): the whole blocks.
 */
export async function bzip2PrefixLength(file: string, bytes: number): Promise<number> {
  const script = [
    "import bz2, sys",
    `data = open(sys.argv[1], "rb").read()[:int(sys.argv[2])]`,
    "total = 0",
    "while data:",
    "    d = bz2.BZ2Decompressor()",
    "    total += len(d.decompress(data))",
    "    if not d.eof: break",
    "    data = d.unused_data.lstrip(bytes(1))",
    "print(total)",
  ].join("\n");
  return Number((await sh(`python3 -c '${script}' '${file}' ${bytes}`)).trim());
}
