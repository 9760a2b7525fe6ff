/**
 * RECOVERY.txt must stay true: the manual procedure it prints for formats 2, 3 and 4 is
 * extracted from the file and run, with the real tools, on backups made by the real tools.
 */

import assert from "node:assert/strict";
import { buildBackup, type FixtureSpec } from "./support/backup_builder.ts";
import { sha256File } from "./support/ext4.ts";
import { withWorld } from "./e2e/_world.ts";

const text = await Deno.readTextFile(new URL("../RECOVERY.txt", import.meta.url));

/** The indented command lines of the section that starts with `heading`. */
function commandsOf(heading: string): string {
  const start = text.indexOf(`\n${heading}`);
  assert.ok(start >= 0, `RECOVERY.txt has a "${heading}" section`);
  const rest = text.slice(start + 1);
  const end = rest.search(/\n(FORMAT \d|Important:)/);
  return rest.slice(0, end === -1 ? undefined : end).split("\n")
    .filter((line) => line.startsWith("    "))
    .map((line) => line.slice(4))
    .join("\n")
    .replaceAll('"PASS"', '"$PASS"');
}

Deno.test("RECOVERY.txt: the manual procedure restores formats 2, 3 and 4", async (t) => {
  await withWorld("qr-recovery-txt-", async (root, world) => {
    const work = world.vms.find((vm) => vm.name === "work")!;
    const { template: _, ...standalone } = work;
    const cases: Array<[string, Partial<FixtureSpec> & { format: 2 | 3 | 4 }]> = [
      ["FORMAT 2", { format: 2, encrypted: true, volumeKiB: 64 }],
      ["FORMAT 3", { format: 3, encrypted: true, compressed: true, chunkBytes: 100000 }],
      ["FORMAT 4", { format: 4, compressed: true, chunkBytes: 100000, scryptLogN: 10 }],
    ];
    for (const [heading, spec] of cases) {
      await t.step(heading, async () => {
        const built = await buildBackup({
          passphrase: "manual pass!",
          vms: [standalone],
          ...spec,
        }, root);
        const dir = `${built.path}.manual`;
        await Deno.mkdir(dir);
        const script = `set -e\ntar -i -xf '${built.path}'\n${commandsOf(heading)}\n`;
        const out = await new Deno.Command("bash", {
          args: ["-c", script],
          cwd: dir,
          env: { PASS: "manual pass!" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(out.success, `${script}\n${new TextDecoder().decode(out.stderr)}`);
        assert.equal(
          await sha256File(`${dir}/vm5/private.img`),
          await sha256File(`${work.dir}/private.img`),
        );
        assert.ok((await Deno.stat(`${built.path}.manual/vm5`)).isDirectory);
        // More than one chunk, or the procedure was not tested on what matters.
        assert.ok(built.chunkNames.filter((n) => n.startsWith("vm5/private.img.")).length > 2);
      });
    }
  });
});
