/**
 * Issue 10, a lost FIRST chunk in uncompressed formats 3 and 4 (docs/salvage.md): the chunk held
 * the item's first tar headers, so the stream after it is placed only through the next header
 * that is certainly the item's (`lib/salvage/resync.ts`).
 *
 * A dom0 home of small files in 16 KiB chunks, built by the real tools, loses its first chunk
 * (a flipped byte, or the chunk missing). Where each member lies in the inner tar stream is
 * walked from the intact format-3 chunks (plain, they are the tar stream itself); format 4 runs
 * the same GNU tar command on the same folder, so its stream is the same. Then:
 *
 * - every member whose header lies after the first chunk is recovered whole, bit-exact;
 * - every member whose header lay in it is not, and a break is listed before the first member
 *   found (`"after": null`);
 * - encrypted format 3 is not salvaged (the first chunk held the salt), and says so;
 * - the VM image (one file, its header in the first chunk) is not salvaged, and says why.
 */

import assert from "node:assert/strict";
import { restoreBackup } from "../../lib/commands/restore.ts";
import { RecoverError } from "../../lib/errors.ts";
import type { SalvagedFile, SalvagedFolder } from "../../lib/salvage/mod.ts";
import { sh } from "../e2e/_cli.ts";
import { repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, makeSmallWorld, PASS } from "../integrity/_small.ts";
import type { FixtureSpec } from "../support/mod.ts";
import { seededBytes } from "../support/vm_tree.ts";
import { walkTar } from "./_tar_walk.ts";

const C = 16 * 1024;

const VARIANTS: { label: string; spec: Partial<FixtureSpec> }[] = [
  { label: "format 3 plain", spec: { format: 3, chunkBytes: C } },
  { label: "format 3 encrypted", spec: { format: 3, encrypted: true, chunkBytes: C } },
  { label: "format 4 uncompressed", spec: { format: 4, chunkBytes: C, scryptLogN: 10 } },
];

Deno.test("salvage: the first chunk of an uncompressed format-3/4 item lost", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-vsalvage-first-chunk-" });
  try {
    const world = await makeSmallWorld(`${root}/w`);
    const home = world.dom0Home.dir;
    for (let i = 0; i < 30; i++) {
      const name = `${home}/f${String(i).padStart(2, "0")}.bin`;
      await Deno.writeFile(name, seededBytes(900 + i * 113, 60 + i));
    }
    const members = (await sh(`cd '${home}' && find . | sort`)).trim().split("\n")
      .map((p) => p === "." ? "dom0-home/alice" : `dom0-home/alice/${p.slice(2)}`);
    const source = (member: string) => `${home}/${member.slice("dom0-home/alice/".length)}`;
    const builds = new Map<string, Awaited<ReturnType<typeof buildSmall>>>();
    for (const [i, v] of VARIANTS.entries()) {
      builds.set(v.label, await buildSmall(world, v.spec, `${root}/b${i}`));
    }
    // Where each member's header lies, from the intact format-3 plain chunks.
    const plain = builds.get("format 3 plain")!;
    const homeChunks = plain.items.find((i) => i.owner === "dom0")!.chunks;
    await untar(plain.path, `${root}/plain`);
    const { members: placed } = walkTar(
      await Promise.all(homeChunks.map((c) => Deno.readFile(`${root}/plain/${c}`))),
      false,
    );
    assert.deepEqual(placed.map((p) => p.name).toSorted(), members.toSorted());
    const after = placed.filter((p) => p.header >= C).map((p) => p.name);
    assert.ok(after.length >= 10 && after.length < members.length - 3, `${after.length}`);

    let n = 0;
    for (const variant of VARIANTS) {
      for (const how of ["flipped", "missing"] as const) {
        await t.step(`${variant.label}: first chunk ${how}`, async () => {
          const built = builds.get(variant.label)!;
          const dir = `${root}/e${++n}`;
          const names = await untar(built.path, dir);
          const first = (owner: string, base?: string) =>
            built.items.find((i) => i.owner === owner && (base === undefined || i.base === base))!
              .chunks[0]!;
          let kept = names;
          for (const chunk of [first("dom0"), first("work", "private.img")]) {
            if (how === "flipped") {
              const bytes = await Deno.readFile(`${dir}/${chunk}`);
              bytes[3000] = bytes[3000]! ^ 0x5a;
              await Deno.writeFile(`${dir}/${chunk}`, bytes);
            } else kept = kept.filter((name) => name !== chunk && name !== `${chunk}.hmac`);
          }
          await repack(dir, kept, `${dir}.backup`);
          const out = `${root}/out${n}`;
          const salvaged: SalvagedFile[] = [];
          const folders: SalvagedFolder[] = [];
          const notSalvaged: string[] = [];
          let error: unknown;
          try {
            await restoreBackup(`${dir}.backup`, {
              passphrase: () => Promise.resolve(new TextEncoder().encode(PASS)),
              reporter: { info() {}, warn() {} },
              output: out,
              salvage: true,
              onSalvaged: (file) => void salvaged.push(file),
              onSalvagedFolder: (folder) => void folders.push(folder),
              onNotSalvaged: (item, why) => void notSalvaged.push(`${item}: ${why}`),
            });
          } catch (caught) {
            error = caught;
          }
          const what = JSON.stringify({ error, folders, notSalvaged });
          assert.ok(error instanceof RecoverError, what);
          assert.equal(error.exitCode, how === "flipped" ? 4 : 5, what);
          // The other files of the backup are restored.
          assert.ok((await Deno.lstat(`${out}/work/firewall.xml`)).isFile);
          // The image (its header was in the first chunk): not salvaged, and why.
          const image = notSalvaged.find((line) => line.includes("private.img"));
          assert.ok(image !== undefined, what);
          assert.ok(!salvaged.some((f) => f.file.endsWith("private.img")), what);
          if (variant.spec.encrypted) {
            assert.match(image, /first chunk .* held the salt/);
            assert.ok(notSalvaged.some((line) => /^dom0-home\/alice: .*held the salt/.test(line)));
            assert.equal(salvaged.length, 0, what);
            return;
          }
          assert.match(image, /breaks before its first member's data/);
          const list = folders.find((f) => f.folder === "dom0-home/alice")!;
          assert.ok(list !== undefined, what);
          assert.deepEqual(list.recovered.toSorted(), after.toSorted(), what);
          assert.equal(list.lost.length, 1, what);
          assert.equal(list.lost[0]!.member, null);
          assert.equal(list.lost[0]!.after, null);
          assert.equal(list.lost[0]!.before, after[0]);
          assert.equal(list.lost[0]!.chunk, first("dom0"));
          for (const member of after) {
            if (!(await Deno.lstat(source(member))).isFile) continue;
            assert.deepEqual(
              await Deno.readFile(`${out}/${member}.salvaged`),
              await Deno.readFile(source(member)),
              member,
            );
          }
          await Deno.remove(out, { recursive: true });
        });
      }
    }
  } finally {
    await sh(`chmod -R u+w '${root}'; rm -rf '${root}'`);
  }
});
