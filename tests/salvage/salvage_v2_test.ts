/**
 * Issue 10, phase 2 for format 2: `restore --salvage` with a volume of a VM's image lost. Each
 * volume is a GNU tar volume of its own; the next volume's `M` continuation header (member and
 * offset) places the data after the lost one. The test states the lost range from the intact
 * backup's own `M` headers, read with the real tools: volume k lost -> file bytes
 * [offset(k), offset(k) + V - 512), where offset(k) is volume k's `M` header offset and V the
 * volume size (its 512-byte `M` header holds no data).
 */

import assert from "node:assert/strict";
import { runCli, sh } from "../e2e/_cli.ts";
import { flipByte, repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, withSmallWorld } from "../integrity/_small.ts";
import { seededBytes } from "../support/vm_tree.ts";

const V = 40 * 1024;

/** The `offset` field of a volume's `M` header (octal, bytes 369-380). */
function continuationOffset(volume: Uint8Array): number {
  assert.equal(String.fromCharCode(volume[156]!), "M", "the volume starts with an M header");
  const field = new TextDecoder().decode(volume.subarray(369, 381)).replace(/\0.*$/, "").trim();
  return parseInt(field, 8);
}

for (
  const { label, spec } of [
    { label: "format 2 plain", spec: { format: 2, volumeKiB: 40 } },
    { label: "format 2 encrypted", spec: { format: 2, encrypted: true, volumeKiB: 40 } },
  ] as const
) {
  Deno.test(`restore --salvage: ${label}, a lost volume`, async (t) => {
    await withSmallWorld("qr-salvage-v2-", async (root, world) => {
      const original = seededBytes(5 * V + 1234, 11);
      await Deno.writeFile(`${world.workDir}/private.img`, original);
      const built = await buildSmall(world, spec, `${root}/b`);
      const names = await untar(built.path, `${root}/entries`);
      const chunks = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
        .chunks;
      assert.ok(chunks.length >= 5, `private.img has ${chunks.length} volumes`);
      const volume = async (k: number) => {
        const path = `${root}/entries/${chunks[k]}`;
        if (!spec.encrypted) return await Deno.readFile(path);
        await sh(
          `openssl enc -d -aes-256-cbc -md md5 -pass pass:${PASS} -in '${path}' -out '${root}/v'`,
        );
        return await Deno.readFile(`${root}/v`);
      };
      let n = 0;
      const variant = async (edit: (dir: string, kept: string[]) => Promise<string[]>) => {
        const dir = `${root}/case${++n}`;
        await sh(`cp -a '${root}/entries' '${dir}'`);
        await repack(dir, await edit(dir, [...names]), `${dir}.backup`);
        return `${dir}.backup`;
      };
      const salvage = async (file: string, code: number) => {
        const out = `${root}/out${n}`;
        const result = await runCli(["restore", file, "-o", out, "--salvage"], {
          passphrase: PASS,
        });
        assert.equal(result.code, code, result.stderr);
        await assert.rejects(Deno.lstat(`${out}/work/private.img`), "nothing under the real name");
        const record = JSON.parse(
          await Deno.readTextFile(`${out}/work/private.img.salvaged.json`),
        ) as {
          file: string;
          size: number;
          lost: Array<{ offset: number; length: number; reason: string; chunk: string | null }>;
        };
        assert.equal(record.size, original.length);
        const salvaged = await Deno.readFile(`${out}/work/private.img.salvaged`);
        assert.equal(salvaged.length, original.length);
        const inLost = (i: number) =>
          record.lost.some((r) => i >= r.offset && i < r.offset + r.length);
        for (let i = 0; i < original.length; i++) {
          const want = inLost(i) ? 0 : original[i];
          if (salvaged[i] !== want) assert.fail(`byte ${i}: ${salvaged[i]} instead of ${want}`);
        }
        // Every other VM is restored whole.
        assert.deepEqual(
          await Deno.readFile(`${out}/tpl/root.img`),
          await Deno.readFile(`${root}/src/vm-templates/tpl/root.img`),
        );
        assert.deepEqual(
          await Deno.readFile(`${out}/dom0-home/alice/photo.bin`),
          await Deno.readFile(`${world.dom0Home.dir}/photo.bin`),
        );
        return record.lost;
      };

      await t.step("a flipped byte in volume 3: exactly its data lost", async () => {
        const offset = continuationOffset(await volume(2));
        const file = await variant(async (dir, kept) => {
          await flipByte(`${dir}/${chunks[2]}`, 700);
          return kept;
        });
        assert.deepEqual(await salvage(file, 4), [
          { offset, length: V - 512, reason: "hmac-mismatch", chunk: chunks[2] },
        ]);
      });

      await t.step("volume 4 missing: exactly its data lost", async () => {
        const offset = continuationOffset(await volume(3));
        const file = await variant((_, kept) =>
          Promise.resolve(kept.filter((x) => x !== chunks[3] && x !== `${chunks[3]}.hmac`))
        );
        assert.deepEqual(await salvage(file, 5), [
          { offset, length: V - 512, reason: "missing", chunk: chunks[3] },
        ]);
      });

      await t.step("volumes 2 and 4 lost: two ranges", async () => {
        const [a, b] = [continuationOffset(await volume(1)), continuationOffset(await volume(3))];
        const file = await variant(async (dir, kept) => {
          await sh(`truncate -s -3 '${dir}/${chunks[1]}'`);
          return kept.filter((x) => x !== chunks[3] && x !== `${chunks[3]}.hmac`);
        });
        const lost = await salvage(file, 4);
        assert.deepEqual(lost.map((r) => [r.offset, r.length]), [[a, V - 512], [b, V - 512]]);
      });
    });
  });
}

Deno.test("restore --salvage: format 2, a lost volume inside a sparse image", async () => {
  await withSmallWorld("qr-salvage-v2s-", async (root, world) => {
    // The small world's private.img: 3 MiB with two runs of data, stored by tar -S.
    const original = await Deno.readFile(`${world.workDir}/private.img`);
    const built = await buildSmall(
      world,
      { format: 2, encrypted: true, volumeKiB: 40 },
      `${root}/b`,
    );
    const names = await untar(built.path, `${root}/entries`);
    const chunks = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
      .chunks;
    await repack(
      `${root}/entries`,
      names.filter((x) => x !== chunks[2] && x !== `${chunks[2]}.hmac`),
      `${root}/d.backup`,
    );
    const out = `${root}/out`;
    const result = await runCli(["restore", `${root}/d.backup`, "-o", out, "--salvage"], {
      passphrase: PASS,
    });
    assert.equal(result.code, 5, result.stderr);
    const record = JSON.parse(await Deno.readTextFile(`${out}/work/private.img.salvaged.json`));
    // The volume's data, mapped through the sparse map: here one run of V - 512 bytes.
    assert.equal(
      record.lost.reduce((sum: number, r: { length: number }) => sum + r.length, 0),
      V - 512,
    );
    const salvaged = await Deno.readFile(`${out}/work/private.img.salvaged`);
    const inLost = (i: number) =>
      record.lost.some((r: { offset: number; length: number }) =>
        i >= r.offset && i < r.offset + r.length
      );
    for (let i = 0; i < original.length; i++) {
      const want = inLost(i) ? 0 : original[i];
      if (salvaged[i] !== want) assert.fail(`byte ${i}: ${salvaged[i]} instead of ${want}`);
    }
  });
});
