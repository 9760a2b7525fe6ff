/**
 * Damaged and incomplete format 3 and 4 backups fail like format 2 ones: one line naming the
 * file and the reason, a distinct exit code, nothing half-written.
 */

import assert from "node:assert/strict";
import { buildBackup, type FixtureSpec } from "../support/backup_builder.ts";
import { runCli, sh } from "./_cli.ts";
import { assertOneLineError, listFiles, repack, untar } from "./_surgery.ts";
import { withWorld } from "./_world.ts";

const PASS = "three and four";

for (
  const [format, spec] of [
    [3, { encrypted: true, compressed: true, chunkBytes: 200_000 }],
    [4, { compressed: true, chunkBytes: 200_000, scryptLogN: 10 }],
  ] as const
) {
  Deno.test(`broken format ${format} backups fail with one line and a distinct code`, async (t) => {
    await withWorld(`qr-e2e-err${format}-`, async (root, world) => {
      const built = await buildBackup({
        format,
        passphrase: PASS,
        vms: world.vms,
        dom0Home: world.dom0Home,
        ...spec,
      } as FixtureSpec, root);
      const entriesDir = `${root}/entries`;
      const names = await untar(built.path, entriesDir);
      const suffix = format === 4 ? ".enc" : "";
      const chunks = names.filter((n) => new RegExp(`^vm5/private\\.img\\.\\d+${suffix}$`).test(n));
      assert.ok(chunks.length >= 3, `private.img spans ${chunks.length} chunks`);
      let case_ = 0;
      const variant = async (edit: (dir: string, names: string[]) => Promise<string[]>) => {
        const dir = `${root}/case${++case_}`;
        await sh(`cp -a '${entriesDir}' '${dir}'`);
        const file = `${dir}.backup`;
        await repack(dir, await edit(dir, [...names]), file);
        return file;
      };

      await t.step("wrong passphrase: exit 3", async () => {
        const result = await runCli(["verify", built.path], { passphrase: "not it" });
        assert.match(assertOneLineError(result, 3), /wrong passphrase/);
      });

      await t.step("a flipped byte in a middle chunk: exit 4, names the chunk", async () => {
        const file = await variant(async (dir, kept) => {
          const path = `${dir}/${chunks[1]}`;
          const bytes = await Deno.readFile(path);
          bytes[Math.floor(bytes.length / 2)]! ^= 0x04;
          await Deno.writeFile(path, bytes);
          return kept;
        });
        const out = `${root}/o-flip`;
        const line = assertOneLineError(
          await runCli(["restore", file, "-o", out], { passphrase: PASS }),
          4,
        );
        assert.ok(line.includes(`"${chunks[1]}"`), line);
        assert.ok(
          !(await listFiles(out)).some((f) => f === "./work/private.img" || f.includes("partial")),
        );
      });

      await t.step("the last chunk of an item missing: exit 5", async () => {
        const last = chunks.at(-1)!;
        const file = await variant((_, kept) =>
          Promise.resolve(kept.filter((n) => n !== last && n !== `${last}.hmac`))
        );
        const out = `${root}/o-last`;
        const line = assertOneLineError(
          await runCli(["restore", file, "-o", out], { passphrase: PASS }),
          5,
        );
        assert.match(line, /"vm5\/private\.img".*(ends early|last chunk may be missing)/);
        assert.ok(
          !(await listFiles(out)).some((f) => f === "./work/private.img" || f.includes("partial")),
        );
      });

      await t.step("a chunk in the middle missing: exit 5, names it", async () => {
        const file = await variant((_, kept) =>
          Promise.resolve(kept.filter((n) => n !== chunks[1] && n !== `${chunks[1]}.hmac`))
        );
        const line = assertOneLineError(await runCli(["verify", file], { passphrase: PASS }), 5);
        assert.ok(line.includes(`"${chunks[1]}" is missing`), line);
      });

      await t.step("the header's authentication missing: exit 5", async () => {
        const file = await variant((_, kept) =>
          Promise.resolve(kept.filter((n) => n !== "backup-header.hmac"))
        );
        const line = assertOneLineError(await runCli(["info", file], { passphrase: PASS }), 5);
        assert.match(line, /"backup-header\.hmac" is missing/);
      });
    });
  });
}
