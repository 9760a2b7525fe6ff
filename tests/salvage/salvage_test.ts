/**
 * Issue 10, phase 2: `restore --salvage` on uncompressed format 3 (unencrypted) and format 4
 * backups, where a chunk is exactly a byte range of the item's inner tar stream. The tests
 * state the lost range each damage costs: exactly the damaged chunk's bytes (`C` = chunk size,
 * `D` = where the image's data starts in the inner tar stream, found from the intact backup):
 * chunk k lost -> file bytes [k*C - D, (k+1)*C - D). The salvaged file equals the original
 * outside its listed lost ranges and is zero inside them; nothing is under the real name.
 */

import assert from "node:assert/strict";
import { runCli, sh } from "../e2e/_cli.ts";
import { flipByte, repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, withSmallWorld } from "../integrity/_small.ts";
import { seededBytes } from "../support/vm_tree.ts";

const C = 65536;
/**
 * `cbc`: format 3 encrypted: the plaintext stream starts 16 bytes (openssl's salt header)
 * before the ciphertext, and the block after a lost chunk is lost too (CBC restarts on it).
 */
const VARIANTS = [
  { label: "format 3 plain", spec: { format: 3, chunkBytes: C }, cbc: false },
  { label: "format 3 encrypted", spec: { format: 3, encrypted: true, chunkBytes: C }, cbc: true },
  {
    label: "format 4 uncompressed",
    spec: { format: 4, chunkBytes: C, scryptLogN: 10 },
    cbc: false,
  },
] as const;

/** Where `needle` starts in `hay`, or -1. */
function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

interface Lost {
  offset: number;
  length: number;
  reason: string;
  chunk: string | null;
}

/** The salvaged file equals `original` outside `lost`, and is zero inside. */
function assertSalvaged(salvaged: Uint8Array, original: Uint8Array, lost: Lost[]): void {
  assert.equal(salvaged.length, original.length);
  const inLost = (i: number) => lost.some((r) => i >= r.offset && i < r.offset + r.length);
  for (let i = 0; i < original.length; i++) {
    const want = inLost(i) ? 0 : original[i];
    if (salvaged[i] !== want) assert.fail(`byte ${i}: ${salvaged[i]} instead of ${want}`);
  }
}

for (const { label, spec, cbc } of VARIANTS) {
  Deno.test(`restore --salvage: ${label}`, async (t) => {
    await withSmallWorld("qr-salvage2-", async (root, world) => {
      // An image without holes: its data lies in one run in the inner tar stream.
      const original = seededBytes(5 * C + 1234, 9);
      await Deno.writeFile(`${world.workDir}/private.img`, original);
      const built = await buildSmall(world, spec, `${root}/b`);
      const names = await untar(built.path, `${root}/entries`);
      const chunks = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
        .chunks;
      assert.ok(chunks.length >= 5, `private.img has ${chunks.length} chunks`);
      // D: where the image's bytes start in the item's inner tar stream (chunk 0's plaintext).
      let first: Uint8Array;
      if (spec.format === 4) {
        const password = `${built.backupId}!${chunks[0]!.replace(/\.enc$/, "")}!${PASS}`;
        await sh(
          `PW='${password}' scrypt dec --passphrase env:PW '${root}/entries/${
            chunks[0]
          }' '${root}/chunk0'`,
        );
        first = await Deno.readFile(`${root}/chunk0`);
      } else if (cbc) {
        const all = chunks.map((chunk) => `'${root}/entries/${chunk}'`).join(" ");
        await sh(
          `cat ${all} | openssl enc -d -aes-256-cbc -md md5 -pass pass:${PASS} > '${root}/plain'`,
        );
        first = await Deno.readFile(`${root}/plain`);
      } else {
        first = await Deno.readFile(`${root}/entries/${chunks[0]}`);
      }
      // Where chunk k's bytes start in the file, and how much a lost chunk costs.
      const D = indexOf(first, original.subarray(0, 64)) + (cbc ? 16 : 0);
      const L = cbc ? C + 16 : C;
      assert.ok(D > 0 && D < 4096, `data starts at ${D}`);
      const chunkAt = (k: number) => k * C - D;

      let n = 0;
      const variant = async (edit: (dir: string, kept: string[]) => Promise<string[]>) => {
        const dir = `${root}/case${++n}`;
        await sh(`cp -a '${root}/entries' '${dir}'`);
        await repack(dir, await edit(dir, [...names]), `${dir}.backup`);
        return `${dir}.backup`;
      };
      const without = (kept: string[], chunk: string) =>
        kept.filter((name) => name !== chunk && name !== `${chunk}.hmac`);
      const salvage = async (file: string, code: number) => {
        const out = `${root}/out${n}`;
        const result = await runCli(["restore", file, "-o", out, "--salvage", "--json"], {
          passphrase: PASS,
        });
        assert.equal(result.code, code, result.stderr);
        assert.doesNotMatch(result.stderr, /add --salvage/, "no hint to add what is there");
        await assert.rejects(Deno.lstat(`${out}/work/private.img`), "nothing under the real name");
        const record = JSON.parse(
          await Deno.readTextFile(`${out}/work/private.img.salvaged.json`),
        ) as { file: string; size: number; lost: Lost[] };
        assert.equal(record.file, "work/private.img");
        assert.equal(record.size, original.length);
        assertSalvaged(
          await Deno.readFile(`${out}/work/private.img.salvaged`),
          original,
          record.lost,
        );
        // Every other file is restored whole, under its real name.
        assert.deepEqual(
          await Deno.readFile(`${out}/work/firewall.xml`),
          await Deno.readFile(`${world.workDir}/firewall.xml`),
        );
        assert.deepEqual(
          await Deno.readFile(`${out}/dom0-home/alice/photo.bin`),
          await Deno.readFile(`${world.dom0Home.dir}/photo.bin`),
        );
        const events = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
        assert.ok(events.some((e) => e.type === "salvaged" && e.file === "work/private.img"));
        return record.lost;
      };

      await t.step(
        "a flipped byte in chunk 2: exactly chunk 2's bytes lost (and one block, CBC)",
        async () => {
          const file = await variant(async (dir, kept) => {
            await flipByte(`${dir}/${chunks[2]}`, 1000);
            return kept;
          });
          const lost = await salvage(file, 4);
          assert.deepEqual(lost, [{
            offset: chunkAt(2),
            length: L,
            reason: "hmac-mismatch",
            chunk: chunks[2],
          }]);
        },
      );

      await t.step(
        "chunk 3 missing: exactly chunk 3's bytes lost (and one block, CBC)",
        async () => {
          const file = await variant((_, kept) => Promise.resolve(without(kept, chunks[3]!)));
          const lost = await salvage(file, 5);
          assert.deepEqual(lost, [{
            offset: chunkAt(3),
            length: L,
            reason: "missing",
            chunk: chunks[3],
          }]);
        },
      );

      await t.step("chunks 1 and 3 damaged: two ranges", async () => {
        const file = await variant(async (dir, kept) => {
          await sh(`truncate -s -7 '${dir}/${chunks[1]}'`);
          await flipByte(`${dir}/${chunks[3]}`, 99);
          return kept;
        });
        const lost = await salvage(file, 4);
        assert.deepEqual(lost.map((r) => [r.offset, r.length, r.chunk]), [
          [chunkAt(1), L, chunks[1]],
          [chunkAt(3), L, chunks[3]],
        ]);
      });

      await t.step("the last chunk missing: the rest of the file lost", async () => {
        const last = chunks.length - 1;
        const file = await variant((_, kept) => Promise.resolve(without(kept, chunks[last]!)));
        const lost = await salvage(file, 5);
        assert.equal(lost.length, 1, JSON.stringify(lost));
        // CBC: the block before the missing end cannot be told from one cut short (its
        // padding is not there), so it is listed as lost too.
        assert.equal(lost[0]!.offset, chunkAt(last) - (cbc ? 16 : 0));
        assert.equal(lost[0]!.offset + lost[0]!.length, original.length);
      });

      await t.step("from standard input: nothing salvaged, said so", async () => {
        const file = `${root}/case1.backup`;
        const out = `${root}/out-stdin`;
        const result = await runCli(["restore", "-", "-o", out, "--salvage"], {
          passphrase: PASS,
          stdin: await Deno.readFile(file),
        });
        assert.equal(result.code, 4, result.stderr);
        assert.match(result.stderr, /not salvaged .*standard input/);
        await assert.rejects(Deno.lstat(`${out}/work/private.img.salvaged`));
      });
    });
  });
}
