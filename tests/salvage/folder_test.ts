/**
 * Issue 10: "A dom0 home or template folder gets every member that was fully recovered, and a
 * list of the members that were not." `FOLDER.salvaged.json` (docs/salvage.md) for a
 * template folder in format 1 (a FIFO where a file should be) and format 2 (a lost volume
 * inside one member): every member that was read whole is written (`NAME.salvaged` with
 * `"lost": []`, bit-exact), the others are listed with why.
 */

import assert from "node:assert/strict";
import { runCli, sh } from "../e2e/_cli.ts";
import { repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, withSmallWorld } from "../integrity/_small.ts";
import { seededBytes } from "../support/vm_tree.ts";

interface FolderList {
  folder: string;
  recovered: string[];
  lost: { member: string | null; reason: string; chunk: string | null; salvaged?: string | null }[];
  notMade: { member: string; kind: string; target: string }[];
}

async function same(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((byte, i) => byte === y[i]);
}

Deno.test("restore --salvage: format 1, a template folder with a FIFO where a file was", async () => {
  await withSmallWorld("qr-zsalvage-f1-", async (root, world) => {
    await Deno.writeFile(`${root}/src/vm-templates/tpl/volatile.img`, seededBytes(70_000, 8));
    const built = await buildSmall(world, { format: 1 }, `${root}/b`);
    const dir = `${root}/case`;
    await sh(`cp -a '${built.path}' '${dir}'`);
    await Deno.remove(`${dir}/vm-templates/tpl/private.img`);
    await sh(`mkfifo '${dir}/vm-templates/tpl/private.img'`);
    const out = `${root}/out`;
    const result = await runCli(["restore", dir, "-o", out, "--salvage", "--json"], {});
    assert.equal(result.code, 4, result.stderr);
    const list = JSON.parse(await Deno.readTextFile(`${out}/tpl.salvaged.json`)) as FolderList;
    assert.equal(list.folder, "tpl");
    assert.deepEqual(list.lost, [{
      member: "tpl/private.img",
      reason: "damaged",
      chunk: null,
      salvaged: null,
    }]);
    assert.deepEqual(list.recovered.toSorted(), ["tpl", "tpl/root.img", "tpl/volatile.img"]);
    for (const name of ["root.img", "volatile.img"]) {
      assert.ok(await same(`${out}/tpl/${name}.salvaged`, `${root}/src/vm-templates/tpl/${name}`));
      const record = JSON.parse(await Deno.readTextFile(`${out}/tpl/${name}.salvaged.json`));
      assert.deepEqual(record.lost, []);
    }
    await assert.rejects(Deno.lstat(`${out}/tpl/private.img.salvaged`));
    const events = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.ok(events.some((e) => e.type === "salvaged-folder" && e.folder === "tpl"));
    assert.match(result.stderr, /salvaged folder tpl: 3 members recovered whole, 1 loss/);
    // Every other item is restored as usual.
    assert.ok(await same(`${out}/dom0-home/alice/photo.bin`, `${world.dom0Home.dir}/photo.bin`));
  });
});

Deno.test("restore --salvage: format 2, a template folder with a lost volume", async () => {
  await withSmallWorld("qr-zsalvage-f2-", async (root, world) => {
    const tpl = `${root}/src/vm-templates/tpl`;
    await Deno.writeFile(`${tpl}/volatile.img`, seededBytes(70_000, 8));
    await Deno.writeFile(`${tpl}/big.img`, seededBytes(200_000, 9));
    const built = await buildSmall(world, { format: 2, volumeKiB: 40 }, `${root}/b`);
    const names = await untar(built.path, `${root}/entries`);
    const chunks = built.items.find((i) => i.owner === "tpl")!.chunks;
    // A volume in the middle of the folder's stream, inside big.img (the largest member).
    const lostChunk = chunks[Math.floor(chunks.length / 2)]!;
    const bytes = await Deno.readFile(`${root}/entries/${lostChunk}`);
    bytes[3000] = bytes[3000]! ^ 0xff; // A flip, never a no-op.
    await Deno.writeFile(`${root}/entries/${lostChunk}`, bytes);
    await repack(`${root}/entries`, names, `${root}/damaged.backup`);
    const out = `${root}/out`;
    const result = await runCli(["restore", `${root}/damaged.backup`, "-o", out, "--salvage"], {
      passphrase: PASS,
    });
    assert.equal(result.code, 4, result.stderr);
    const list = JSON.parse(await Deno.readTextFile(`${out}/tpl.salvaged.json`)) as FolderList;
    assert.equal(list.lost.length, 1, JSON.stringify(list));
    const lost = list.lost[0]!;
    assert.equal(lost.reason, "hmac-mismatch");
    assert.equal(lost.chunk, lostChunk);
    assert.equal(lost.salvaged, `${lost.member}.salvaged`);
    const members = (await sh(`cd '${tpl}' && find . -type f | sort`)).trim().split("\n")
      .map((path) => `tpl/${path.slice(2)}`);
    assert.deepEqual(
      [...list.recovered.filter((m) => m !== "tpl"), lost.member].toSorted(),
      members,
    );
    for (const member of list.recovered.filter((m) => m !== "tpl")) {
      assert.ok(await same(`${out}/${member}.salvaged`, `${tpl}/${member.slice(4)}`), member);
    }
    // The damaged member: exact outside its lost range, zero inside.
    const record = JSON.parse(await Deno.readTextFile(`${out}/${lost.member}.salvaged.json`));
    const salvaged = await Deno.readFile(`${out}/${lost.member}.salvaged`);
    const original = await Deno.readFile(`${tpl}/${lost.member!.slice(4)}`);
    assert.equal(record.lost.length, 1);
    const { offset, length } = record.lost[0];
    assert.deepEqual(salvaged.subarray(0, offset), original.subarray(0, offset));
    assert.ok(salvaged.subarray(offset, offset + length).every((b) => b === 0));
    assert.deepEqual(salvaged.subarray(offset + length), original.subarray(offset + length));
  });
});
