/**
 * Issue 10, format 2: "the next volume's GNU tar `M` continuation header (member name and
 * offset) lets the inner tar stream resynchronise, also inside sparse members and when the lost
 * volume held headers", and a lost first volume (docs/salvage.md).
 *
 * A dom0 home of many small files, a sparse file (an old-GNU `S` member) and a file with a name
 * over 100 bytes (an `L` header, a truncated `M` name), written by GNU tar as Qubes ran it, in
 * 10 KiB volumes, loses each of its volumes in turn. What the lost volume held is read from the
 * intact volume with GNU tar itself (`tar -tv` of one volume lists the members whose headers lie
 * in it, and the `M` header it starts with). For each:
 *
 * - every member whose header is not in the lost volume, other than the one the lost volume
 *   began inside, is recovered whole and bit-exact;
 * - the member the lost volume began inside (its `M` header) keeps its data outside the lost
 *   range, exactly, and lists the rest as lost;
 * - the member the next volume continues, when its header was in the lost volume, is listed
 *   lost by name (its data cannot be placed);
 * - the other members whose headers were in the lost volume are inside a listed break (never
 *   recovered, never missing from the list).
 *
 * A one-file item whose first volume is lost: a plain image's data after the lost volumes is
 * placed at its `M` offset (the lost range is exactly `[0, k * (V - 512))`); a sparse image is
 * not salvaged, and the reason says that its map was lost.
 */

import assert from "node:assert/strict";
import { restoreBackup } from "../../lib/commands/restore.ts";
import { RecoverError } from "../../lib/errors.ts";
import type { SalvagedFile, SalvagedFolder } from "../../lib/salvage/mod.ts";
import { sh } from "../e2e/_cli.ts";
import { repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, makeSmallWorld, PASS } from "../integrity/_small.ts";
import { LONG_NAME, seededBytes, writeSparseFile } from "../support/vm_tree.ts";
import { type Placed, walkTar } from "./_tar_walk.ts";

const V = 10 * 1024;

interface Outcome {
  error: unknown;
  salvaged: SalvagedFile[];
  folders: SalvagedFolder[];
  notSalvaged: string[];
}

async function salvage(backup: string, out: string): Promise<Outcome> {
  const outcome: Outcome = { error: undefined, salvaged: [], folders: [], notSalvaged: [] };
  try {
    await restoreBackup(backup, {
      passphrase: () => Promise.resolve(new TextEncoder().encode(PASS)),
      reporter: { info() {}, warn() {} },
      output: out,
      salvage: true,
      onSalvaged: (file) => void outcome.salvaged.push(file),
      onSalvagedFolder: (folder) => void outcome.folders.push(folder),
      onNotSalvaged: (item, why) => void outcome.notSalvaged.push(`${item}: ${why}`),
    });
  } catch (error) {
    outcome.error = error;
  }
  return outcome;
}

/** `salvaged` equals `original` outside the lost ranges, zero inside them. */
function assertSalvaged(salvaged: Uint8Array, original: Uint8Array, record: SalvagedFile): void {
  assert.equal(salvaged.length, original.length, record.file);
  const mark = new Uint8Array(original.length);
  for (const r of record.lost) mark.fill(1, r.offset, r.offset + r.length);
  for (let i = 0; i < original.length; i++) {
    const want = mark[i] === 1 ? 0 : original[i];
    if (salvaged[i] !== want) assert.fail(`${record.file} byte ${i}: ${salvaged[i]} not ${want}`);
  }
}

Deno.test("format 2 salvage: each volume of a folder item lost in turn, also ones that held headers", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-vsalvage-v2-" });
  try {
    const world = await makeSmallWorld(`${root}/w`);
    const home = world.dom0Home.dir;
    for (let i = 0; i < 24; i++) {
      await Deno.writeFile(
        `${home}/f${String(i).padStart(2, "0")}.bin`,
        seededBytes(700 + i * 131, 40 + i),
      );
    }
    await writeSparseFile(`${home}/sparse.img`, 300 * 1024, [
      [0, seededBytes(6000, 80)],
      [128 * 1024, seededBytes(9000, 81)],
    ]);
    await Deno.writeFile(`${home}/${LONG_NAME}`, seededBytes(5000, 82));
    const built = await buildSmall(world, { format: 2, volumeKiB: V / 1024 }, `${root}/b`);
    const names = await untar(built.path, `${root}/entries`);
    const chunks = built.items.find((i) => i.owner === "dom0")!.chunks;
    assert.ok(chunks.length >= 10, `${chunks.length} volumes`);
    const { members: placed, starts } = walkTar(
      await Promise.all(chunks.map((c) => Deno.readFile(`${root}/entries/${c}`))),
      true,
    );
    // The home's members, by output path (the item `dom0-home/alice` restores to the same path).
    const members = (await sh(`cd '${home}' && find . | sort`)).trim().split("\n")
      .map((p) => p === "." ? "dom0-home/alice" : `dom0-home/alice/${p.slice(2)}`);
    const source = (member: string) => `${home}/${member.slice("dom0-home/alice/".length)}`;
    assert.deepEqual(placed.map((p) => p.name).toSorted(), members.toSorted());
    const at = (position: number) => starts.findIndex((_, i) => position < starts[i + 1]!);
    // Among the cases: a volume boundary inside the sparse member's data, and inside the data
    // of a member whose header is in the volume before.
    const sparse = placed.find((p) => p.name.endsWith("/sparse.img"))!;
    assert.ok(at(sparse.data + sparse.stored - 1) > at(sparse.header));

    /** What the cases covered: members continued by name, members lost with their header. */
    const seen = { continued: new Set<string>(), began: new Set<string>(), headers: 0, across: 0 };
    // Each volume alone; then two volumes side by side, and two with one between them (a
    // member passed over whose data crosses a second lost volume).
    const cases = [
      ...chunks.map((_, k) => [k]),
      ...chunks.slice(1, -2).map((_, i) => [i + 1, i + 2]).filter((_, i) => i % 3 === 0),
      ...chunks.slice(1, -3).map((_, i) => [i + 1, i + 3]).filter((_, i) => i % 3 === 1),
    ];
    // The volume with the header of the largest member, and one inside its data after that.
    const photo = placed.find((p) => p.name.endsWith("/photo.bin"))!;
    assert.ok(at(photo.data + photo.stored - 1) >= at(photo.header) + 3);
    cases.push([at(photo.header), at(photo.header) + 2]);
    for (const lose of cases) {
      const label = lose.map((k) => k + 1).join(" and ");
      await t.step(`volume ${label} of ${chunks.length} missing`, async () => {
        const gone = lose.map((k) => chunks[k]!);
        const out = `${root}/out${label}`;
        const backup = `${root}/case${label}.backup`;
        await repack(
          `${root}/entries`,
          names.filter((n) => !gone.some((c) => n === c || n === `${c}.hmac`)),
          backup,
        );
        const outcome = await salvage(backup, out);
        // The lost stream ranges, a run of lost volumes as one.
        const ranges = lose.filter((k) => !lose.includes(k - 1)).map((k) => {
          let end = k;
          while (lose.includes(end + 1)) end++;
          return { from: starts[k]!, to: starts[end + 1]! };
        });
        const inside = (p: Placed, position: number) =>
          p.data <= position && position < p.data + p.stored;
        // A member some of whose header material lay in a lost range.
        const headerLost = (p: Placed) => ranges.some((r) => p.header < r.to && p.data > r.from);
        // One whose header was lost and whose data the next volume continues (named by its
        // `M` header when its name fits there).
        const continued = (p: Placed) =>
          new TextEncoder().encode(p.name).length < 100 &&
          ranges.some((r) => p.header >= r.from && p.header < r.to && inside(p, r.to));
        // One whose header was read and part of whose data was lost.
        const partial = (p: Placed) =>
          !headerLost(p) && ranges.some((r) => p.data < r.to && p.data + p.stored > r.from);
        const what = JSON.stringify({ lose, ranges, outcome });
        assert.ok(outcome.error instanceof RecoverError, what);
        assert.equal(outcome.error.exitCode, 5, what);
        const list = outcome.folders.find((f) => f.folder === "dom0-home/alice")!;
        assert.ok(list !== undefined, what);
        const named = new Map(
          list.lost.filter((l) => l.member !== null).map((l) => [l.member!, l]),
        );
        const unnamed = list.lost.filter((l) => l.member === null);
        for (const member of members) {
          const p = placed.find((p) => p.name === member)!;
          if (partial(p)) {
            // Lost inside its data: kept outside the lost range, exactly.
            seen.began.add(member);
            assert.ok(named.has(member), `${member} listed: ${what}`);
            const record = outcome.salvaged.find((f) => f.file === member)!;
            assert.ok(record !== undefined && record.lost.length > 0, what);
            assertSalvaged(
              await Deno.readFile(`${out}/${member}.salvaged`),
              await Deno.readFile(source(member)),
              record,
            );
          } else if (headerLost(p) && continued(p)) {
            seen.continued.add(member);
            // Passed over across a second lost volume.
            if (
              ranges.length > 1 && p.data + p.stored > ranges[1]!.from && p.header < ranges[0]!.to
            ) {
              seen.across++;
            }
            assert.equal(named.get(member)?.salvaged, null, `${member} lost by name: ${what}`);
            assert.ok(!list.recovered.includes(member));
          } else if (headerLost(p)) {
            seen.headers++;
            assert.ok(!list.recovered.includes(member), `${member} not recovered: ${what}`);
            assert.ok(unnamed.length > 0, `a break is listed: ${what}`);
          } else {
            assert.ok(list.recovered.includes(member), `${member} recovered: ${what}`);
            const info = await Deno.lstat(source(member));
            if (info.isFile) {
              assert.deepEqual(
                await Deno.readFile(`${out}/${member}.salvaged`),
                await Deno.readFile(source(member)),
                member,
              );
            }
          }
        }
        // Nothing else is listed: recovered, lost by name, or inside a break.
        assert.ok(list.recovered.length + named.size <= members.length, what);
        for (const [member] of named) assert.ok(members.includes(member), member);
        // Every other item is restored.
        assert.deepEqual(
          await Deno.readFile(`${out}/work/private.img`),
          await Deno.readFile(`${world.workDir}/private.img`),
        );
        await Deno.remove(out, { recursive: true });
        await Deno.remove(backup);
      });
    }
    // The sparse member was lost inside its data (its map known) and with its header (then
    // listed by name); members were lost whole with the headers of a lost volume.
    assert.ok(seen.began.has(sparse.name), JSON.stringify([...seen.began]));
    assert.ok(seen.continued.has(sparse.name), JSON.stringify([...seen.continued]));
    assert.ok(seen.continued.size >= 3 && seen.headers >= 10, JSON.stringify(seen.headers));
    assert.ok(seen.across >= 1, "a member passed over across a second lost volume");
  } finally {
    await sh(`chmod -R u+w '${root}'; rm -rf '${root}'`);
  }
});

Deno.test("format 2 salvage: the first volumes of a one-file item lost", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-vsalvage-first-" });
  try {
    // A plain image (no holes: a `0` member) and, in the other backup, the sparse one.
    const plainWorld = await makeSmallWorld(`${root}/pw`);
    const plain = seededBytes(200_000, 90);
    await Deno.writeFile(`${plainWorld.workDir}/private.img`, plain);
    const sparseWorld = await makeSmallWorld(`${root}/sw`);
    const builds = {
      plain: await buildSmall(plainWorld, { format: 2, volumeKiB: V / 1024 }, `${root}/pb`),
      sparse: await buildSmall(sparseWorld, { format: 2, volumeKiB: V / 1024 }, `${root}/sb`),
      encrypted: await buildSmall(
        plainWorld,
        { format: 2, encrypted: true, volumeKiB: V / 1024 },
        `${root}/eb`,
      ),
    };
    const cases: { label: string; build: keyof typeof builds; lose: number[]; flip?: boolean }[] = [
      { label: "plain image, first volume missing", build: "plain", lose: [0] },
      { label: "plain image, first volume damaged", build: "plain", lose: [0], flip: true },
      { label: "plain image, first two volumes missing", build: "plain", lose: [0, 1] },
      {
        label: "encrypted, plain image, first volume damaged",
        build: "encrypted",
        lose: [0],
        flip: true,
      },
      { label: "sparse image, first volume missing", build: "sparse", lose: [0] },
    ];
    let n = 0;
    for (const c of cases) {
      await t.step(c.label, async () => {
        const built = builds[c.build];
        const dir = `${root}/e${++n}`;
        const names = await untar(built.path, dir);
        const chunks = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
          .chunks;
        assert.ok(chunks.length >= 4);
        let kept = names;
        for (const k of c.lose) {
          if (c.flip) {
            const bytes = await Deno.readFile(`${dir}/${chunks[k]}`);
            bytes[2000] = bytes[2000]! ^ 0x5a;
            await Deno.writeFile(`${dir}/${chunks[k]}`, bytes);
          } else kept = kept.filter((name) => name !== chunks[k] && name !== `${chunks[k]}.hmac`);
        }
        await repack(dir, kept, `${dir}.backup`);
        const out = `${root}/out${n}`;
        const outcome = await salvage(`${dir}.backup`, out);
        const what = JSON.stringify(outcome);
        assert.ok(outcome.error instanceof RecoverError, what);
        assert.equal(outcome.error.exitCode, c.flip ? 4 : 5, what);
        await assert.rejects(Deno.lstat(`${out}/work/private.img`));
        // The other files of the backup are restored.
        assert.ok((await Deno.lstat(`${out}/work/firewall.xml`)).isFile);
        if (c.build === "sparse") {
          assert.equal(outcome.salvaged.length, 0, what);
          assert.equal(outcome.notSalvaged.length, 1, what);
          assert.match(
            outcome.notSalvaged[0]!,
            /first volume .* is lost .*sparse file.*map was in the lost header/,
          );
          return;
        }
        const record = outcome.salvaged.find((f) => f.file === "work/private.img")!;
        assert.ok(record !== undefined, what);
        assert.deepEqual(
          record.lost.map((r) => [r.offset, r.length, r.chunk]),
          c.lose.map((k) => [
            k * (V - 512),
            V - 512,
            chunks[k],
          ]),
        );
        assertSalvaged(await Deno.readFile(`${out}/work/private.img.salvaged`), plain, record);
      });
    }
  } finally {
    await sh(`chmod -R u+w '${root}'; rm -rf '${root}'`);
  }
});
