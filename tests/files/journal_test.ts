/**
 * Images whose journal needs recovery, made with debugfs's journal commands (jo/jw/jc): read
 * with the committed transactions applied in memory, as e2fsck would apply them; the image
 * itself is never changed.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { catFile, getFiles, listFiles } from "../../lib/commands/files.ts";
import { run, runText } from "../support/_run.ts";
import { sha256File } from "../support/ext4.ts";
import { debugfsRdump, describeFull, makeImage } from "./_images.ts";

const MiB = 1024 * 1024;

async function cat(image: string, path: string, notices: string[] = []): Promise<string> {
  const parts: number[] = [];
  await catFile(image, path, (b) => Promise.resolve(void parts.push(...b)), {
    reporter: { info: (m) => notices.push(m), warn: (m) => notices.push(`warning: ${m}`) },
  });
  return new TextDecoder().decode(new Uint8Array(parts));
}

Deno.test("files reads an image whose journal needs recovery as e2fsck would replay it", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "ext-journal-test-" });
  try {
    const src = join(work, "src");
    await Deno.mkdir(join(src, "home", "user"), { recursive: true });
    await Deno.writeTextFile(join(src, "home", "user", "a.txt"), "old a\n");
    await Deno.writeTextFile(join(src, "home", "user", "b.txt"), "old b\n");
    const block = new Uint8Array(4096);
    const cases: Array<[string, (a: number, b: number) => string[]]> = [
      ["one transaction", (a) => ["jo", `jw -b ${a} ${join(work, "new-a")}`, "jc"]],
      ["checksums (v3)", (a) => ["jo -c", `jw -b ${a} ${join(work, "new-a")}`, "jc"]],
      ["a later transaction revokes a block", (a, b) => [
        "jo",
        `jw -b ${a},${b} ${join(work, "new-ab")}`,
        "jc",
        "jo",
        `jw -r ${b}`,
        "jc",
      ]],
    ];
    await Deno.writeFile(join(work, "new-a"), block.map((_, i) => "NEW A\n".charCodeAt(i) || 0));
    const two = new Uint8Array(8192);
    two.set(new TextEncoder().encode("NEW A\n"), 0);
    two.set(new TextEncoder().encode("NEW B\n"), 4096);
    await Deno.writeFile(join(work, "new-ab"), two);
    for (const [name, commands] of cases) {
      await t.step(name, async () => {
        const image = join(work, "j.img");
        await makeImage(image, src, 32 * MiB, ["-t", "ext4", "-b", "4096"]);
        const blockOf = async (path: string) =>
          Number((await runText("debugfs", ["-R", `blocks ${path}`, image])).trim());
        const a = await blockOf("/home/user/a.txt");
        const b = await blockOf("/home/user/b.txt");
        await Deno.writeTextFile(join(work, "cmds"), commands(a, b).join("\n") + "\n");
        await run("debugfs", ["-w", "-f", join(work, "cmds"), image]);
        assert.match(await runText("dumpe2fs", ["-h", image]), /needs_recovery/);
        const before = await sha256File(image);

        const notices: string[] = [];
        const gotA = await cat(image, "/home/user/a.txt", notices);
        assert.match(
          notices[0]!,
          /was not cleanly unmounted: applied \d committed journal transactions/,
        );
        // The truth: a copy replayed by e2fsck, read by debugfs.
        const fixed = join(work, "fixed.img");
        await Deno.copyFile(image, fixed);
        // Exit code 1: errors corrected (the journal replayed).
        const fsck = await new Deno.Command("e2fsck", {
          args: ["-fy", fixed],
          stdout: "null",
          stderr: "null",
        }).output();
        assert.ok(fsck.code <= 1, `e2fsck exit code ${fsck.code}`);
        const theirs = join(work, "theirs");
        const ours = join(work, "ours");
        await Deno.mkdir(theirs);
        await debugfsRdump(fixed, "/home", theirs);
        await getFiles(image, ["/home"], { output: ours });
        assert.deepEqual(await describeFull(ours), await describeFull(theirs));
        assert.equal(gotA, "NEW A\n");
        if (name.includes("revokes")) {
          assert.equal(await cat(image, "/home/user/b.txt"), "old b\n");
        }
        assert.equal((await listFiles(image, "/home/user")).kind, "entries");
        assert.equal(await sha256File(image), before, "the image was changed");
        for (const path of [ours, theirs, fixed, image]) {
          await Deno.remove(path, { recursive: true });
        }
      });
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
