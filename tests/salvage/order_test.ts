/**
 * Issue 10: the place of a chunk in uncompressed format 3 is not authenticated (its name is
 * not covered by its HMAC), so `restore --salvage` lists the bytes of every chunk after the
 * first as `unchecked` in the `.salvaged.json` and gives the restore's "cannot be checked"
 * notice (fuzz case 404565: chunks swapped and one `.hmac` flipped put a swapped chunk's bytes
 * outside the lost ranges, with no notice). And the check of the rest of a failed item tells
 * each missing chunk once, at its root (`checkRemainingChunks` knows the gap the failed read
 * told).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { RecoverError } from "../../lib/errors.ts";
import { openBackup } from "../../lib/format/open.ts";
import { restoreBackup } from "../../lib/commands/restore.ts";
import type { SalvagedFile } from "../../lib/salvage/writer.ts";
import { sh } from "../e2e/_cli.ts";
import { repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, withSmallWorld } from "../integrity/_small.ts";
import { seededBytes } from "../support/vm_tree.ts";

const C = 65536;
const passphrase = () => Promise.resolve(new TextEncoder().encode(PASS));

/** Bytes of `salvaged` that differ from `original` outside every listed range. */
function outsideRanges(salvaged: Uint8Array, original: Uint8Array, record: SalvagedFile): number[] {
  const mark = new Uint8Array(original.length);
  for (const r of [...record.lost, ...(record.unchecked ?? [])]) {
    mark.fill(1, r.offset, r.offset + r.length);
  }
  const wrong: number[] = [];
  for (let i = 0; i < original.length && wrong.length < 5; i++) {
    if (mark[i] === 0 && salvaged[i] !== original[i]) wrong.push(i);
  }
  return wrong;
}

for (const encrypted of [false, true]) {
  Deno.test(
    `restore --salvage, format 3 uncompressed${
      encrypted ? " encrypted" : ""
    }: chunks swapped and one .hmac flipped: their place is listed as unchecked, with the notice`,
    async () => {
      await withSmallWorld("qr-salvage-order-", async (root, world) => {
        const original = seededBytes(5 * C + 1234, 21);
        await Deno.writeFile(`${world.workDir}/private.img`, original);
        const built = await buildSmall(
          world,
          { format: 3, encrypted, chunkBytes: C },
          `${root}/b`,
        );
        const names = await untar(built.path, `${root}/e`);
        const chunks = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
          .chunks;
        // The fuzzer's case: contents of .001 and .002 swapped with their .hmac, then the
        // .hmac of .002 flipped.
        const [a, b] = [chunks[1]!, chunks[2]!];
        await sh(`cd '${root}/e' && mv '${a}' t && mv '${b}' '${a}' && mv t '${b}'`);
        await sh(
          `cd '${root}/e' && mv '${a}.hmac' t && mv '${b}.hmac' '${a}.hmac' && mv t '${b}.hmac'`,
        );
        const hmac = await Deno.readTextFile(`${root}/e/${b}.hmac`);
        const at = hmac.length - 4;
        await Deno.writeTextFile(
          `${root}/e/${b}.hmac`,
          hmac.slice(0, at) + (hmac[at] === "0" ? "1" : "0") + hmac.slice(at + 1),
        );
        await repack(`${root}/e`, names, `${root}/damaged`);

        const warnings: string[] = [];
        const salvaged: SalvagedFile[] = [];
        await assert.rejects(
          restoreBackup(`${root}/damaged`, {
            passphrase,
            output: `${root}/out`,
            salvage: true,
            reporter: { info() {}, warn: (message) => void warnings.push(message) },
            onSalvaged: (file) => void salvaged.push(file),
          }),
          (error: RecoverError) => error.exitCode === 4,
        );
        assert.ok(
          warnings.some((w) =>
            w.includes(`"${chunks[0]!.replace(/\.000$/, "")}"`) && w.includes("cannot be checked")
          ),
          warnings.join("\n"),
        );
        const record = JSON.parse(
          await Deno.readTextFile(`${root}/out/work/private.img.salvaged.json`),
        ) as SalvagedFile;
        assert.deepEqual(salvaged.find((f) => f.file === "work/private.img"), record);
        const bytes = await Deno.readFile(`${root}/out/work/private.img.salvaged`);
        // The swapped chunk's bytes are there, but inside a range listed as unchecked.
        assert.deepEqual(outsideRanges(bytes, original, record), []);
        const unchecked = record.unchecked ?? [];
        assert.ok(unchecked.length > 0, JSON.stringify(record));
        assert.ok(unchecked.every((r) => r.reason === "order-unchecked"));
        assert.ok(unchecked.some((r) => r.chunk === a), JSON.stringify(record));
        // Everything after the first chunk is either lost or unchecked; the first chunk's
        // bytes (its place is proven by the tar header it starts with) are neither.
        const covered = [...record.lost, ...unchecked].sort((x, y) => x.offset - y.offset);
        assert.ok(covered[0]!.offset <= C, JSON.stringify(record));
        let end = covered[0]!.offset;
        for (const r of covered) {
          assert.equal(r.offset, end, `no gap between listed ranges: ${JSON.stringify(record)}`);
          end = r.offset + r.length;
        }
        assert.equal(end, original.length);
        // The lost range is chunk .002's (the one whose .hmac fails), the CBC block after it.
        const lost = record.lost.reduce((sum, r) => sum + r.length, 0);
        assert.equal(lost, encrypted ? C + 16 : C, JSON.stringify(record));
      });
    },
  );
}

Deno.test("the rest of a failed item: a missing chunk is told once, by the read that met it", async (t) => {
  await withSmallWorld("qr-salvage-rest-", async (root, world) => {
    const original = seededBytes(6 * C + 99, 22);
    await Deno.writeFile(`${world.workDir}/private.img`, original);
    for (const format of [3, 4] as const) {
      const spec = format === 3
        ? { format, chunkBytes: C }
        : { format, chunkBytes: C, scryptLogN: 10 };
      const built = await buildSmall(world, spec, `${root}/b${format}`);
      const names = await untar(built.path, `${root}/e${format}`);
      const chunks = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
        .chunks;
      const cases: { label: string; drop: string[]; told: string[] }[] = [
        {
          label: "a chunk and its .hmac missing",
          drop: [chunks[2]!, `${chunks[2]}.hmac`],
          told: [],
        },
        {
          label: "two chunks missing",
          drop: [chunks[2]!, `${chunks[2]}.hmac`, chunks[4]!, `${chunks[4]}.hmac`],
          told: [chunks[4]!],
        },
      ];
      if (format === 3) {
        cases.push({ label: "a chunk missing, its .hmac there", drop: [chunks[2]!], told: [] });
      }
      for (const c of cases) {
        await t.step(`format ${format}: ${c.label}`, async () => {
          const file = `${root}/f${format}-${c.label.replaceAll(" ", "-")}`;
          await repack(`${root}/e${format}`, names.filter((n) => !c.drop.includes(n)), file);
          const backup = await openBackup(file, { passphrase });
          const told: RecoverError[] = [];
          let stopped: RecoverError | undefined;
          try {
            for await (const item of backup.items()) {
              if (item.name !== chunks[0]!.replace(/\.000(\.enc)?$/, "")) {
                await item.skip();
                continue;
              }
              try {
                for await (const _ of item.events()) { /* read */ }
              } catch (error) {
                stopped = error as RecoverError;
                await item.drain!((more) => void told.push(more));
              }
            }
          } finally {
            await backup.close();
          }
          assert.ok(stopped?.message.includes(chunks[2]!.replace(/\.enc$/, "")), String(stopped));
          // Not the stopping problem again; every other missing chunk once.
          assert.deepEqual(
            told.map((e) => e.message),
            c.told.map((name) =>
              told.find((e) => e.message.includes(`"${name}" is missing`))?.message
            ),
            told.map((e) => e.message).join("\n"),
          );
          assert.equal(told.length, c.told.length, told.map((e) => e.message).join("\n"));
        });
      }
    }
  });
});
