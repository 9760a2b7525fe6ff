/**
 * Issue 10, phase 3: `restore --salvage` on COMPRESSED format-3 and format-4 backups (the Qubes
 * defaults), built with the real tools as Qubes ran them (`tar --use-compress-program=<filter>`
 * over the whole item, then `openssl enc` and `split` (format 3) or `split` and `scrypt enc`
 * per chunk (format 4)).
 *
 * The expected lost ranges are computed with the real tools, never with our decoder: `P` =
 * the compressed bytes that verify before the damaged chunk k (`k*C` of the compressed stream;
 * format 3 encrypted: `k*C - 16`, the openssl salt header comes first), `R` = how many bytes
 * the real decompressor (`gzip -dc`, `bzip2 -dc`, `xz -dc`, `zstd -dc`) gives for those `P`
 * bytes, `D` = where the image's data starts in the inner tar stream. The image then loses
 * exactly `[R - D, size)`: everything up to the damage is recovered, and nothing after it can
 * be placed (a single-file item has no later tar header). In the dom0 home (a folder item),
 * members whose data ends before `R` are recovered whole, the member `R` falls in is salvaged
 * up to `R`, members after it are listed as lost (not known by name); with bzip2, decoding
 * restarts at the next block and members whose headers are found again are recovered whole.
 */

import assert from "node:assert/strict";
import { runCli, sh } from "../e2e/_cli.ts";
import { repack, untar } from "../e2e/_surgery.ts";
import { buildBackup, type BuiltBackup, type FixtureSpec } from "../support/mod.ts";
import { seededBytes } from "../support/vm_tree.ts";
import { bzip2PrefixLength } from "./_bzip2.ts";

const PASS = "salvage";
const C = 256 * 1024;
const IMAGE_SIZE = 3 * 1024 * 1024 + 1234;

type Kind = "gzip" | "bzip2" | "xz" | "zstd";

/** The input size of each gzip member or zstd frame a `units` filter writes. */
const UNIT = 128 * 1024;

const VARIANTS: ReadonlyArray<{
  label: string;
  spec: Partial<FixtureSpec>;
  kind: Kind;
  /**
   * The compress filter is a program named after the codec (given to Qubes by its path, as
   * `qvm-backup -Z` allows) that compresses every {@linkcode UNIT} bytes with this command on
   * its own: one gzip member or zstd frame each (GNU `split --filter`).
   */
  units?: string;
}> = [
  {
    label: "format 3, encrypted, gzip (the R3 default)",
    spec: { format: 3, encrypted: true, compressed: true, compressionFilter: "gzip" },
    kind: "gzip",
  },
  {
    label: "format 3, plain, bzip2",
    spec: { format: 3, compressed: true, compressionFilter: "bzip2" },
    kind: "bzip2",
  },
  {
    label: "format 3, plain, xz",
    spec: { format: 3, compressed: true, compressionFilter: "xz" },
    kind: "xz",
  },
  {
    label: "format 4, gzip (the R4 default)",
    spec: { format: 4, compressed: true, compressionFilter: "gzip" },
    kind: "gzip",
  },
  {
    label: "format 4, bzip2",
    spec: { format: 4, compressed: true, compressionFilter: "bzip2" },
    kind: "bzip2",
  },
  {
    label: "format 4, pbzip2",
    spec: { format: 4, compressed: true, compressionFilter: "pbzip2" },
    kind: "bzip2",
  },
  {
    label: "format 4, xz",
    spec: { format: 4, compressed: true, compressionFilter: "xz" },
    kind: "xz",
  },
  {
    label: "format 4, zstd",
    spec: { format: 4, compressed: true, compressionFilter: "zstd" },
    kind: "zstd",
  },
  {
    label: "format 3, encrypted, gzip members (a filter writing one member per 128 KiB)",
    spec: { format: 3, encrypted: true, compressed: true },
    kind: "gzip",
    units: "gzip -c",
  },
  {
    label: "format 4, gzip members (a filter writing one member per 128 KiB)",
    spec: { format: 4, compressed: true },
    kind: "gzip",
    units: "gzip -c",
  },
  {
    label: "format 4, zstd frames (a filter writing one frame per 128 KiB)",
    spec: { format: 4, compressed: true },
    kind: "zstd",
    units: "zstd -q -c",
  },
];

interface Lost {
  offset: number;
  length: number;
  reason: string;
  chunk: string | null;
}

interface FolderList {
  folder: string;
  recovered: string[];
  lost: {
    member: string | null;
    reason: string;
    chunk: string | null;
    salvaged?: string | null;
    after?: string | null;
    before?: string | null;
  }[];
  notMade: { member: string; kind: string; target: string }[];
}

/** The salvaged file equals `original` outside `lost`, and is zero inside. */
function assertSalvaged(salvaged: Uint8Array, original: Uint8Array, lost: Lost[], what: string) {
  assert.equal(salvaged.length, original.length, what);
  const inLost = new Uint8Array(original.length);
  for (const r of lost) inLost.fill(1, r.offset, r.offset + r.length);
  for (let i = 0; i < original.length; i++) {
    const want = inLost[i] ? 0 : original[i];
    if (salvaged[i] !== want) assert.fail(`${what}: byte ${i} is ${salvaged[i]}, not ${want}`);
  }
}

/** Where `needle` starts in `hay`, or -1. */
function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  outer: for (let i = hay.indexOf(first); i >= 0 && i + needle.length <= hay.length;) {
    for (let j = 1; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) {
        i = hay.indexOf(first, i + 1);
        continue outer;
      }
    }
    return i;
  }
  return -1;
}

/** A member of the inner tar stream, as GNU tar lists it. */
interface Member {
  name: string;
  type: string;
  size: number;
  /** Where its data starts and ends in the inner tar stream. */
  start: number;
  end: number;
  target: string;
}

/** The members of tar stream `file`, with where their data lies (`tar -tvR`). */
async function members(file: string): Promise<Member[]> {
  const out = await sh(
    `tar -tvR --numeric-owner --quoting-style=literal -f '${file}' 2>/dev/null || true`,
  );
  const list: Member[] = [];
  for (const line of out.split("\n")) {
    const m = /^block (\d+): (\S)\S* \S+ +(\d+) \S+ \S+ (.*)$/.exec(line);
    if (m === null) continue;
    const block = Number(m[1]);
    const size = m[2] === "-" ? Number(m[3]) : 0;
    const [name, target] = m[2] === "l" ? m[4]!.split(" -> ") : [m[4]!, ""];
    const start = (block + 1) * 512;
    list.push({
      name: name!.replace(/\/$/, ""),
      type: m[2]!,
      size,
      start,
      end: start + size,
      target: target!,
    });
  }
  return list;
}

const DECOMPRESS: Record<Kind, string> = {
  gzip: "gzip -dc",
  bzip2: "bzip2 -dc",
  xz: "xz -dc",
  zstd: "zstd -dcq",
};

for (const { label, spec: given, kind, units } of VARIANTS) {
  Deno.test(`restore --salvage, compressed: ${label}`, async (t) => {
    const root = await Deno.makeTempDir({ prefix: "qr-zsalvage-" });
    try {
      let spec = given;
      if (units !== undefined) {
        const filter = `${root}/bin/${kind}`;
        await Deno.mkdir(`${root}/bin`);
        await Deno.writeTextFile(
          filter,
          `#!/bin/sh\nexec split -b ${UNIT} --filter='exec ${units}' -\n`,
        );
        await Deno.chmod(filter, 0o755);
        spec = { ...given, compressionFilter: filter };
      }
      // An image without holes (incompressible, so chunks hold its data in order) and a dom0
      // home of 14 files (a folder item that spans several chunks and bzip2 blocks).
      const work = `${root}/src/appvms/work`;
      const home = `${root}/src/home/alice`;
      await Deno.mkdir(work, { recursive: true });
      await Deno.mkdir(`${home}/docs`, { recursive: true });
      const image = seededBytes(IMAGE_SIZE, 21);
      await Deno.writeFile(`${work}/private.img`, image);
      await Deno.writeTextFile(`${work}/firewall.xml`, `<QubesFirewallRules policy="allow"/>\n`);
      for (let i = 0; i < 14; i++) {
        await Deno.writeFile(
          `${home}/file${String(i).padStart(2, "0")}.bin`,
          seededBytes(230_000 + i * 977, 40 + i),
        );
      }
      await Deno.writeTextFile(`${home}/docs/notes.txt`, "my notes\n");
      await Deno.symlink("docs/notes.txt", `${home}/notes-link`);
      await Deno.mkdir(`${root}/b`);
      const built: BuiltBackup = await buildBackup({
        passphrase: PASS,
        vms: [{ name: "work", qid: 5, kind: "app", dir: work }],
        dom0Home: { user: "alice", dir: home },
        chunkBytes: C,
        scryptLogN: 10,
        ...spec,
      } as FixtureSpec, `${root}/b`);
      const names = await untar(built.path, `${root}/entries`);
      const entries = `${root}/entries`;
      const cbc = spec.format === 3 && spec.encrypted === true;

      /** The item's compressed stream (decrypted), as the real tools give it. */
      const stream = async (chunks: string[], out: string) => {
        if (spec.format === 4) {
          await Deno.writeFile(out, new Uint8Array(0));
          for (const chunk of chunks) {
            const password = `${built.backupId}!${chunk.replace(/\.enc$/, "")}!${PASS}`;
            await sh(
              `PW='${password}' scrypt dec --passphrase env:PW '${entries}/${chunk}' >> '${out}'`,
            );
          }
        } else {
          const all = chunks.map((chunk) => `'${entries}/${chunk}'`).join(" ");
          await sh(
            cbc
              ? `cat ${all} | openssl enc -d -aes-256-cbc -md md5 -pass pass:${PASS} > '${out}'`
              : `cat ${all} > '${out}'`,
          );
        }
      };
      /**
       * Bytes the real decompressor gives for the first `p` compressed bytes of `file` (for
       * bzip2: its whole blocks, as libbzip2 decodes them).
       */
      const prefix = async (file: string, p: number) => {
        if (kind === "bzip2") return await bzip2PrefixLength(file, p);
        return Number(
          (await sh(`head -c ${p} '${file}' | ${DECOMPRESS[kind]} 2>/dev/null | wc -c`)).trim(),
        );
      };
      /** Compressed bytes that verify before chunk k. */
      const verifiedBefore = (k: number) => k * C - (cbc ? 16 : 0);

      const itemOf = (owner: string, base: string) =>
        built.items.find((i) => i.owner === owner && i.base === base)!.chunks;
      const imageChunks = itemOf("work", "private.img");
      const homeChunks = itemOf("dom0", "alice");
      assert.ok(imageChunks.length >= 12, `the image has ${imageChunks.length} chunks`);
      assert.ok(homeChunks.length >= 12, `the home has ${homeChunks.length} chunks`);
      await stream(imageChunks, `${root}/image.stream`);
      await sh(`${DECOMPRESS[kind]} '${root}/image.stream' > '${root}/image.tar'`);
      const D = indexOf(await Deno.readFile(`${root}/image.tar`), image.subarray(0, 64));
      assert.ok(D > 0 && D < 4096, `the image data starts at ${D}`);
      await stream(homeChunks, `${root}/home.stream`);
      await sh(`${DECOMPRESS[kind]} '${root}/home.stream' > '${root}/home.tar'`);
      const homeMembers = await members(`${root}/home.tar`);
      assert.ok(homeMembers.length >= 17, JSON.stringify(homeMembers));
      /** Where each unit of the home's stream starts (compressed), for a `units` filter. */
      const unitStarts: number[] = [];
      if (units !== undefined) {
        const sizes = (await sh(
          `split -b ${UNIT} --filter='${units} | wc -c' '${root}/home.tar'`,
        )).trim().split("\n").map(Number);
        for (let i = 0, at = 0; i < sizes.length; at += sizes[i++]!) unitStarts.push(at);
        assert.equal(
          (await Deno.stat(`${root}/home.stream`)).size,
          sizes.reduce((n, size) => n + size, 0),
          "the filter's units, made again one by one",
        );
      }

      let n = 0;
      /** The backup with a byte of each of `chunks` flipped; its `--salvage` restore. */
      const damaged = async (chunks: string[], code: number) => {
        const dir = `${root}/case${++n}`;
        await sh(`cp -a '${entries}' '${dir}'`);
        for (const chunk of chunks) {
          // Flip the byte (setting it to a fixed value would change nothing 1 time in 256).
          const bytes = await Deno.readFile(`${dir}/${chunk}`);
          bytes[1000] = bytes[1000]! ^ 0xff;
          await Deno.writeFile(`${dir}/${chunk}`, bytes);
        }
        await repack(dir, names, `${dir}.backup`);
        const out = `${root}/out${n}`;
        const result = await runCli(["restore", `${dir}.backup`, "-o", out, "--salvage"], {
          passphrase: PASS,
        });
        assert.equal(result.code, code, result.stderr);
        // Every other item is restored whole; nothing damaged is under its real name.
        assert.deepEqual(
          await Deno.readTextFile(`${out}/work/firewall.xml`),
          `<QubesFirewallRules policy="allow"/>\n`,
        );
        return { out, stderr: result.stderr };
      };
      const readJson = async <T>(path: string) => JSON.parse(await Deno.readTextFile(path)) as T;

      type Run = { out: string; stderr: string };

      /** The image's chunk k damaged: exactly [R - D, size) lost. */
      const imageCase = async (k: number, { out, stderr }: Run) => {
        await assert.rejects(Deno.lstat(`${out}/work/private.img`), "nothing under the real name");
        const R = k === 0 ? 0 : await prefix(`${root}/image.stream`, verifiedBefore(k));
        if (R <= D) {
          // Not even the image's header decodes before the damage: nothing to place.
          await assert.rejects(Deno.lstat(`${out}/work/private.img.salvaged`));
          assert.match(stderr, /not salvaged "(vm5|appvms\/work)\/private\.img"/);
          return;
        }
        const record = await readJson<
          { file: string; size: number; lost: Lost[]; unchecked?: Lost[] }
        >(`${out}/work/private.img.salvaged.json`);
        if (spec.format === 3 && kind !== "bzip2") {
          // Format 3 does not authenticate a chunk's place: what the chunks after the first
          // decode to is listed as unchecked, from no later than the end of what the first
          // chunk alone decodes to, up to the damage, in one run.
          const unchecked = record.unchecked ?? [];
          const alone = await prefix(`${root}/image.stream`, verifiedBefore(1));
          assert.ok(unchecked.length > 0, JSON.stringify(record));
          assert.ok(unchecked[0]!.offset <= Math.max(0, alone - D), JSON.stringify(unchecked));
          for (let i = 1; i < unchecked.length; i++) {
            const before = unchecked[i - 1]!;
            assert.equal(unchecked[i]!.offset, before.offset + before.length);
          }
          const last = unchecked.at(-1)!;
          assert.equal(last.offset + last.length, R - D);
          for (const range of unchecked) {
            assert.equal(range.reason, "order-unchecked");
            assert.ok(imageChunks.slice(1, k).includes(range.chunk!), range.chunk!);
          }
        } else assert.equal(record.unchecked, undefined);
        assert.equal(record.file, "work/private.img");
        assert.equal(record.size, IMAGE_SIZE);
        assert.deepEqual(record.lost, [{
          offset: R - D,
          length: IMAGE_SIZE - (R - D),
          reason: "hmac-mismatch",
          chunk: imageChunks[k],
        }]);
        assertSalvaged(
          await Deno.readFile(`${out}/work/private.img.salvaged`),
          image,
          record.lost,
          "work/private.img.salvaged",
        );
        assert.match(stderr, /salvaged work\/private\.img\.salvaged: /);
      };

      /** The home's chunk k damaged: the folder list and every salvaged member checked. */
      const homeCase = async (k: number, { out }: Run) => {
        const list = await readJson<FolderList>(`${out}/dom0-home/alice.salvaged.json`);
        assert.equal(list.folder, "dom0-home/alice");
        const R = k === 0 ? 0 : await prefix(`${root}/home.stream`, verifiedBefore(k));
        const original = async (member: string) =>
          await Deno.readFile(`${root}/src/home/${member.slice("dom0-home/".length)}`);
        // Every salvaged file: exact where it says so, zero in its lost ranges.
        for (const rel of list.recovered) {
          const member = homeMembers.find((m) => m.name === rel);
          assert.ok(member !== undefined, `recovered "${rel}" is a member`);
          if (member.type !== "-") continue;
          const record = await readJson<{ lost: Lost[] }>(`${out}/${rel}.salvaged.json`);
          assert.deepEqual(record.lost, [], rel);
          assert.deepEqual(await Deno.readFile(`${out}/${rel}.salvaged`), await original(rel), rel);
        }
        for (const lost of list.lost) {
          if (lost.member === null || lost.salvaged === null) continue;
          const record = await readJson<{ lost: Lost[] }>(`${out}/${lost.member}.salvaged.json`);
          assert.ok(record.lost.length > 0);
          assertSalvaged(
            await Deno.readFile(`${out}/${lost.member}.salvaged`),
            await original(lost.member),
            record.lost,
            lost.member,
          );
        }
        for (const link of list.notMade) {
          assert.deepEqual(link, {
            member: "dom0-home/alice/notes-link",
            kind: "symlink",
            target: "docs/notes.txt",
          });
        }
        // Up to the damage, exactly what the real decompressor gives: members whose data ends
        // before R are recovered whole, the one R falls in is salvaged up to R.
        const gap = list.lost.find((l) => l.member === null);
        assert.ok(gap !== undefined, JSON.stringify(list));
        assert.equal(gap.chunk, homeChunks[k]);
        assert.equal(gap.reason, "hmac-mismatch");
        const seen = homeMembers.filter((m) => m.start <= R);
        for (const m of seen) {
          const where = `${m.name} (data ${m.start}-${m.end}, R ${R})`;
          if (m.end <= R || m.type !== "-") {
            assert.ok(
              list.recovered.includes(m.name) || list.notMade.some((x) => x.member === m.name),
              `${where} recovered`,
            );
          } else {
            const lost = list.lost.find((l) => l.member === m.name);
            assert.ok(lost !== undefined, `${where} listed as lost`);
            const record = await readJson<{ lost: Lost[] }>(`${out}/${m.name}.salvaged.json`);
            assert.deepEqual(record.lost, [{
              offset: R - m.start,
              length: m.size - (R - m.start),
              reason: "hmac-mismatch",
              chunk: homeChunks[k],
            }], where);
          }
        }
        assert.equal(gap.after, seen.at(-1)?.name ?? null);
        // After the damage: members are found again only where the codec restarts (bzip2,
        // units).
        const after = homeMembers.slice(seen.length);
        const found = after.filter((m) => list.recovered.includes(m.name));
        if (units !== undefined) {
          // Decoding restarts at the first unit that starts after the damaged chunk (and, in
          // encrypted format 3, the CBC block after it): its data starts at `U` of the tar
          // stream; every member whose header is at or after `U` is recovered whole.
          const next = unitStarts.findIndex((start) => start >= (k + 1) * C);
          const U = next < 0 ? Infinity : next * UNIT;
          const whole = homeMembers.filter((m) => m.start - 512 >= U);
          for (const m of whole) {
            assert.ok(
              list.recovered.includes(m.name) || list.notMade.some((x) => x.member === m.name),
              `${m.name} (header at ${m.start - 512}, restart at ${U}) recovered`,
            );
          }
          assert.equal(gap.before, whole[0]?.name ?? null, JSON.stringify(list.lost));
          // Members between the damage and the restart are not recovered.
          const between = after.filter((m) => m.start - 512 < U && m.type === "-");
          for (const m of between) assert.ok(!list.recovered.includes(m.name), m.name);
          assert.equal(list.lost.filter((l) => l.member === null).length, 1);
        } else if (kind === "bzip2" && k < homeChunks.length - 1) {
          assert.ok(found.length > 0, `bzip2 restarts: ${JSON.stringify(list)}`);
          assert.equal(
            gap.before,
            list.recovered.find((r) => after.some((m) => m.name === r)) ?? found[0]!.name,
          );
          // Every member is recovered, salvaged, or lies inside a listed break.
          const order = homeMembers.map((m) => m.name);
          for (const m of after) {
            if (list.recovered.includes(m.name) || list.lost.some((l) => l.member === m.name)) {
              continue;
            }
            if (list.notMade.some((x) => x.member === m.name)) continue;
            const i = order.indexOf(m.name);
            assert.ok(
              list.lost.some((l) =>
                l.member === null && order.indexOf(l.after ?? "") < i &&
                (l.before === null || l.before === undefined || order.indexOf(l.before) > i)
              ),
              `${m.name} is inside a listed break: ${JSON.stringify(list.lost)}`,
            );
          }
        } else {
          assert.deepEqual(found, [], "nothing after the damage is placed");
          assert.equal(gap.before, null);
        }
      };

      // Each run damages a chunk of the image and one of the home, at the same place.
      await t.step("the first chunks damaged", async () => {
        const run = await damaged([imageChunks[0]!, homeChunks[0]!], 4);
        await assert.rejects(Deno.lstat(`${run.out}/work/private.img.salvaged`));
        assert.match(run.stderr, /not salvaged "(vm5|appvms\/work)\/private\.img"/);
        const list = await readJson<FolderList>(`${run.out}/dom0-home/alice.salvaged.json`);
        assert.equal(list.lost[0]!.member, null);
        if ((kind !== "bzip2" && units === undefined) || cbc) {
          // Nothing decodes after the damage (encrypted format 3: the salt is in it).
          assert.deepEqual(list.recovered, []);
          return;
        }
        // bzip2, units: decoding restarts at the next block or unit, members are found again.
        assert.ok(list.recovered.length > 0, JSON.stringify(list));
        assert.equal(list.lost[0]!.after, null);
        for (const rel of list.recovered) {
          if (!rel.endsWith(".bin")) continue;
          assert.deepEqual(
            await Deno.readFile(`${run.out}/${rel}.salvaged`),
            await Deno.readFile(`${root}/src/home/${rel.slice("dom0-home/".length)}`),
          );
        }
      });
      await t.step("a middle chunk damaged", async () => {
        const [i, h] = [Math.floor(imageChunks.length / 2), Math.floor(homeChunks.length / 2)];
        const run = await damaged([imageChunks[i]!, homeChunks[h]!], 4);
        await imageCase(i, run);
        await homeCase(h, run);
      });
      await t.step("the last chunks damaged", async () => {
        const [i, h] = [imageChunks.length - 1, homeChunks.length - 1];
        const run = await damaged([imageChunks[i]!, homeChunks[h]!], 4);
        await imageCase(i, run);
        await homeCase(h, run);
      });
    } finally {
      await sh(`chmod -R u+w '${root}'; rm -rf '${root}'`);
    }
  });
}
