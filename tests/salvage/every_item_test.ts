/**
 * Issue 10, phase 1: every item is tried. A damaged, missing or undecodable chunk stops only
 * its item; every other VM is restored bit-exact, the damaged item leaves no file under its
 * real name, the summary lists every problem (item, chunk, reason), the exit code is the
 * worst one's, and `verify` lists every damaged or missing chunk. Real-tool fixtures of
 * formats 2, 3 and 4, damaged by surgery on their outer entries; format 1 by a FIFO in one
 * VM's folder.
 */

import assert from "node:assert/strict";
import { runCli, sh } from "../e2e/_cli.ts";
import { flipByte, repack, untar } from "../e2e/_surgery.ts";
import {
  buildSmall,
  PASS,
  type SmallWorld,
  VARIANTS,
  withSmallWorld,
} from "../integrity/_small.ts";

/** Whether two files have the same bytes. */
async function same(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((byte, i) => byte === y[i]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Every file but the work VM's private.img came out bit-exact; that one is not there. */
async function assertOthersExact(out: string, world: SmallWorld, root: string): Promise<void> {
  const pairs: Array<[string, string]> = [
    [`${out}/tpl/root.img`, `${root}/src/vm-templates/tpl/root.img`],
    [`${out}/tpl/private.img`, `${root}/src/vm-templates/tpl/private.img`],
    [`${out}/work/firewall.xml`, `${world.workDir}/firewall.xml`],
    [`${out}/dom0-home/alice/photo.bin`, `${world.dom0Home.dir}/photo.bin`],
    [`${out}/dom0-home/alice/docs/notes.txt`, `${world.dom0Home.dir}/docs/notes.txt`],
  ];
  for (const [got, want] of pairs) assert.ok(await same(got, want), `${got} is exact`);
  assert.ok(!await exists(`${out}/work/private.img`), "no damaged file under its real name");
  const leftovers = (await sh(`find '${out}' -name '*partial*' -o -name '.qr-*'`)).trim();
  assert.equal(leftovers, "", "no unfinished files left");
}

/** The summary lines (`  item "...": reason: message`) of a failed run. */
function summaryLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) =>
    line.startsWith("  item ") || line.startsWith("  the ")
  );
}

for (const { label, spec } of VARIANTS) {
  Deno.test(`every item is tried: ${label}`, async (t) => {
    await withSmallWorld("qr-salvage-", async (root, world) => {
      const built = await buildSmall(world, spec, `${root}/b`);
      const names = await untar(built.path, `${root}/entries`);
      const enc = spec.format === 4 ? ".enc" : "";
      const chunksOf = (item: string) =>
        names.filter((n) => n.startsWith(`${item}.`) && /\.\d{3}(\.enc)?$/.test(n));
      // The work VM's private.img: the item with the most chunks.
      const item = names.filter((name) => /\/private\.img\.000(\.enc)?$/.test(name))
        .map((name) => name.replace(/\.000(\.enc)?$/, ""))
        .sort((a, b) => chunksOf(b).length - chunksOf(a).length)[0]!;
      const chunks = chunksOf(item);
      assert.ok(chunks.length >= 4, `${item} spans ${chunks.length} chunks`);
      // The template's first item: its folder (`vm3/.`, formats 2 and 3) or its root.img.
      const tplItem = names.find((name) => /(\/\.|\/root\.img)\.000(\.enc)?$/.test(name))!
        .replace(/\.000(\.enc)?$/, "");
      let n = 0;
      const variant = async (edit: (dir: string, kept: string[]) => Promise<string[]>) => {
        const dir = `${root}/case${++n}`;
        await sh(`cp -a '${root}/entries' '${dir}'`);
        const file = `${dir}.backup`;
        await repack(dir, await edit(dir, [...names]), file);
        await sh(`rm -rf '${dir}'`);
        return file;
      };
      const flip = (dir: string, chunk: string) => flipByte(`${dir}/${chunk}`, "middle");
      const without = (kept: string[], chunk: string) =>
        kept.filter((name) => name !== chunk && name !== `${chunk}.hmac`);

      await t.step("a flipped byte in a middle chunk: the rest restored, exit 4", async () => {
        const file = await variant(async (dir, kept) => {
          await flip(dir, chunks[1]!);
          return kept;
        });
        const out = `${root}/out${n}`;
        const result = await runCli(["restore", file, "-o", out], { passphrase: PASS });
        assert.equal(result.code, 4, result.stderr);
        await assertOthersExact(out, world, root);
        const lines = summaryLines(result.stderr);
        assert.equal(lines.length, 1, result.stderr);
        assert.ok(lines[0]!.includes(`item "${item}"`), lines[0]);
        if (spec.format !== 3 || !spec.compressed) {
          // Format 3 compressed: the flip may show only as undecodable data further on.
          assert.ok(lines[0]!.includes(`"${chunks[1]}"`), lines[0]);
        }
        // The way to the rest of the damaged item: --salvage (a backup file, not stdin).
        assert.match(result.stderr, /every other item is restored; add --salvage/);
      });

      await t.step("the same backup on standard input: read past, the rest restored", async () => {
        const file = `${root}/case${n}.backup`;
        const out = `${root}/out-stdin`;
        const result = await runCli(["restore", "-", "-o", out], {
          passphrase: PASS,
          stdin: await Deno.readFile(file),
        });
        assert.equal(result.code, 4, result.stderr);
        await assertOthersExact(out, world, root);
        assert.doesNotMatch(result.stderr, /--salvage/, "salvage needs a file");
      });

      await t.step("verify lists every damaged or missing chunk of the backup", async () => {
        const file = await variant(async (dir, kept) => {
          await flip(dir, chunks[1]!);
          await flip(dir, chunks[3]!);
          await flip(dir, `${tplItem}.000${enc}`);
          return without(kept, chunks[2]!);
        });
        const result = await runCli(["verify", file, "--json"], { passphrase: PASS });
        assert.equal(result.code, 4, result.stderr);
        const events = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
        const problems = events.filter((e) => e.type === "problem");
        const text = problems.map((p) => `${p.chunk} ${p.reason} ${p.message}`).join("\n");
        // The first problem of the item names its chunk (format 3 compressed may first
        // stumble on undecodable data); the rest are each checked on their own.
        for (const chunk of [chunks[2]!, chunks[3]!, `${tplItem}.000${enc}`]) {
          assert.ok(
            text.includes(`"${chunk}"`) || text.includes(`${chunk} `),
            `${chunk}:\n${text}`,
          );
        }
        assert.ok(problems.some((p) => p.reason === "missing"), text);
        const summary = events.at(-1);
        assert.equal(summary.type, "summary");
        assert.equal(summary.exitCode, 4);
        assert.equal(summary.problems, problems.length);
        assert.ok(events.some((e) => e.type === "item"), "intact items verified");
      });

      await t.step("a chunk missing: exit 5, every other item restored", async () => {
        const file = await variant((_, kept) => Promise.resolve(without(kept, chunks[2]!)));
        const out = `${root}/out${n}`;
        const result = await runCli(["restore", file, "-o", out], { passphrase: PASS });
        assert.equal(result.code, 5, result.stderr);
        await assertOthersExact(out, world, root);
        assert.match(result.stderr, new RegExp(`"${chunks[2]!.replace(/\./g, "\\.")}" is missing`));
        // Told once, although checking the rest of the item meets the gap again.
        const told = result.stderr.split("\n").filter((line) => line.startsWith("problem: "));
        assert.equal(told.length, 1, result.stderr);
      });

      if (spec.format !== 4) {
        await t.step("a chunk's .hmac missing: exit 5, every other item restored", async () => {
          const file = await variant((_, kept) =>
            Promise.resolve(kept.filter((name) => name !== `${chunks[1]}.hmac`))
          );
          const out = `${root}/out${n}`;
          const result = await runCli(["restore", file, "-o", out], { passphrase: PASS });
          assert.equal(result.code, 5, result.stderr);
          await assertOthersExact(out, world, root);
          assert.ok(result.stderr.includes(`"${chunks[1]}.hmac" is missing`), result.stderr);
        });
      }

      await t.step("a truncated chunk and a missing one: the worst (damaged, 4) wins", async () => {
        const file = await variant(async (dir, kept) => {
          await sh(`truncate -s -100 '${dir}/${chunks[1]}'`);
          return without(kept, `${tplItem}.000${enc}`);
        });
        const out = `${root}/out${n}`;
        const result = await runCli(["restore", file, "-o", out], { passphrase: PASS });
        assert.equal(result.code, 4, result.stderr);
        const lines = summaryLines(result.stderr);
        assert.ok(lines.length >= 2, result.stderr);
        assert.ok(lines.some((l) => l.includes(`item "${item}"`)), result.stderr);
        // A one-chunk item without its chunk is not in the backup at all (format 4 root.img).
        assert.ok(lines.some((l) => l.includes(`"${tplItem}"`)), result.stderr);
        assert.ok(await same(`${out}/work/firewall.xml`, `${world.workDir}/firewall.xml`));
        assert.ok(!await exists(`${out}/work/private.img`));
        // The template's item lost its first chunk: nothing of it.
        assert.ok(!await exists(`${out}/tpl/root.img`));
        const tplPrivate = `${out}/tpl/private.img`;
        if (tplItem.endsWith("/.")) assert.ok(!await exists(tplPrivate));
        else assert.ok(await same(tplPrivate, `${root}/src/vm-templates/tpl/private.img`));
        assert.ok(
          await same(`${out}/dom0-home/alice/photo.bin`, `${world.dom0Home.dir}/photo.bin`),
        );
      });
    });
  });
}

Deno.test("every item is tried: format 1, a FIFO in one VM's folder", async () => {
  await withSmallWorld("qr-salvage1-", async (root, world) => {
    const built = await buildSmall(world, { format: 1 }, `${root}/b`);
    const dir = `${root}/case`;
    await sh(`cp -a '${built.path}' '${dir}'`);
    await Deno.remove(`${dir}/appvms/work/private.img`);
    await sh(`mkfifo '${dir}/appvms/work/private.img'`);
    const out = `${root}/out`;
    const result = await runCli(["restore", dir, "-o", out], {});
    assert.equal(result.code, 4, result.stderr);
    assert.ok(summaryLines(result.stderr).some((l) => l.includes(`item "appvms/work"`)));
    assert.ok(!await exists(`${out}/work/private.img`));
    for (
      const [got, want] of [
        [`${out}/tpl/root.img`, `${root}/src/vm-templates/tpl/root.img`],
        [`${out}/dom0-home/alice/photo.bin`, `${world.dom0Home.dir}/photo.bin`],
      ] as const
    ) {
      assert.ok(await same(got, want), got);
    }
  });
});
