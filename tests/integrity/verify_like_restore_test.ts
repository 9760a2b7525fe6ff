/**
 * Issue 9, points 3 and 8: `verify` and `restore --dry-run` run every check `restore` runs (the
 * same writer, on a file system in memory) and give the same verdict, exit code and message; exit codes and
 * messages of hostile members and hostile output folders.
 */

import assert from "node:assert/strict";
import { runCli, sh } from "../e2e/_cli.ts";
import { assertOneLineError, listFiles, untar, withoutSalvageHint } from "../e2e/_surgery.ts";
import { type CraftMember, craftTar, replaceChunk } from "./_craft.ts";
import { buildSmall, PASS, withSmallWorld } from "./_small.ts";

const text = (s: string) => new TextEncoder().encode(s);
const HOME = "dom0-home/alice";

const CASES: Array<{ label: string; members: CraftMember[]; code: number; message: RegExp }> = [
  {
    label: "a `..` member",
    members: [{ name: `${HOME}/../../escape`, data: text("x") }],
    code: 4,
    message: /unsafe path/,
  },
  {
    label: "a file written through a symlink the backup made",
    members: [
      { name: `${HOME}/ln`, type: "2", linkname: "/tmp" },
      { name: `${HOME}/ln/evil`, data: text("x") },
    ],
    code: 4,
    message: /"dom0-home\/alice\/ln" is a symbolic link/,
  },
  {
    label: "a hard link to /etc/passwd",
    members: [{ name: `${HOME}/pw`, type: "1", linkname: "/etc/passwd" }],
    code: 4,
    message: /hard link target "\/etc\/passwd"/,
  },
  {
    label: "a hard link to an empty name",
    members: [{ name: `${HOME}/pw`, type: "1", linkname: "" }],
    code: 4,
    message: /unsafe path/,
  },
  {
    label: "a duplicated member",
    members: [{ name: `${HOME}/f`, data: text("one") }, { name: `${HOME}/f`, data: text("two") }],
    code: 4,
    message: /"dom0-home\/alice\/f": the backup holds it twice/,
  },
  {
    label: "a member below a file the backup made",
    members: [{ name: `${HOME}/f`, data: text("one") }, { name: `${HOME}/f/x`, data: text("two") }],
    code: 4,
    message: /the backup holds "dom0-home\/alice\/f" as a file/,
  },
  {
    label: "a 1 PiB sparse member",
    members: [{ name: `${HOME}/huge.img`, type: "S", realsize: 2 ** 50, data: text("end") }],
    code: 6,
    message: /claims 1125899906842624 bytes, more than/,
  },
  {
    label: "a sparse member with data near 2^53",
    members: [{ name: `${HOME}/far.img`, type: "S", realsize: 2 ** 53 - 512, data: text("x") }],
    code: 6,
    message: /more than the 17592186044416 bytes/,
  },
];

Deno.test("verify and restore --dry-run refuse what restore refuses, with the same exit code and message", async (t) => {
  await withSmallWorld("qr-verify-restore-", async (root, world) => {
    const built = await buildSmall(world, { format: 3, chunkBytes: 1 << 20 }, `${root}/b`);
    const entries = `${root}/entries`;
    const names = await untar(built.path, entries);
    const home = built.items.find((i) => i.owner === "dom0")!;
    const evilBefore = await Deno.lstat("/tmp/evil").then(() => true, () => false);
    assert.equal(home.chunks.length, 1);
    let n = 0;
    for (const { label, members, code, message } of CASES) {
      await t.step(label, async () => {
        const dir = `${root}/case${++n}`;
        await sh(`cp -a '${entries}' '${dir}'`);
        const file = `${dir}.backup`;
        await replaceChunk(dir, names, home.chunks[0]!, craftTar(members), PASS, file);
        const verify = await runCli(["verify", file], { passphrase: PASS });
        const out = `${root}/out${n}`;
        const restore = await runCli(["restore", file, "-o", out], { passphrase: PASS });
        const dryRun = await runCli(["restore", file, "-o", `${out}-dry`, "--dry-run"], {
          passphrase: PASS,
        });
        const line = withoutSalvageHint(assertOneLineError(restore, code));
        assert.match(line, message);
        assert.equal(assertOneLineError(verify, code), line);
        assert.equal(assertOneLineError(dryRun, code), line);
        // Written through the link, "evil" would be a FILE in /tmp (listing it as a folder
        // found nothing either way); it was not there before (or is another program's).
        if (!evilBefore) await assert.rejects(Deno.lstat("/tmp/evil"), "nothing written in /tmp");
        assert.ok(!(await listFiles(out)).some((f) => f.includes("partial")));
      });
    }

    await t.step(
      "an existing symlink DIR/work is the output folder's problem: exit 7",
      async () => {
        const out = `${root}/out-link`;
        const elsewhere = `${root}/elsewhere`;
        await Deno.mkdir(out);
        await Deno.mkdir(elsewhere);
        await Deno.symlink(elsewhere, `${out}/work`);
        const result = await runCli(["restore", built.path, "-o", out], { passphrase: PASS });
        assert.match(
          assertOneLineError(result, 7),
          /"work" in the output folder is a symbolic link/,
        );
        assert.deepEqual(await listFiles(elsewhere), []);
      },
    );
  });
});
