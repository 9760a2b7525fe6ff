/**
 * `restore BACKUP --vm NAME --files PATH... --output DIR` end to end through the CLI, on
 * backups of every format made by the real tools, whose VM's private.img holds a home tree.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { buildBackup, type FixtureSpec } from "../support/backup_builder.ts";
import { makeExt4Image } from "../support/ext4.ts";
import { makeVmTree } from "../support/vm_tree.ts";
import { runCli } from "../e2e/_cli.ts";
import { describeFull } from "./_images.ts";

const PASS = "files from a backup";

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("restore --files copies /home/user out of a VM's private.img in backups of formats 1-4", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "qr-files-e2e-" });
  try {
    const vmDir = join(root, "var", "appvms", "work");
    const tree = join(root, "tree");
    await Deno.mkdir(vmDir, { recursive: true });
    await makeVmTree(join(tree, "home", "user"), 5);
    await Deno.mkdir(join(tree, "usrlocal"));
    await Deno.mkdir(join(tree, "config"));
    await Deno.writeTextFile(join(tree, "config", "rc.local"), "#!/bin/sh\n");
    await makeExt4Image(join(vmDir, "private.img"), tree, 48 * 1024 * 1024);
    await Deno.writeTextFile(join(vmDir, "firewall.xml"), '<QubesFirewallRules policy="allow"/>\n');
    const expected = await describeFull(join(tree, "home"));
    const specs: Array<[string, FixtureSpec]> = [1, 2, 3, 4].map((format) => [
      `format ${format}`,
      {
        format: format as 1 | 2 | 3 | 4,
        passphrase: PASS,
        // Format 2 as R2 made it: encrypted or compressed, not both.
        encrypted: format !== 1,
        compressed: format !== 2,
        vms: [{ name: "work", qid: 5, kind: "app", dir: vmDir }],
        ...(format === 4 ? { scryptLogN: 10 } : {}),
      },
    ]);
    for (const [name, spec] of specs) {
      await t.step(name, async () => {
        const built = await buildBackup(spec, root);
        const out = `${built.path}.out`;
        // Nothing goes to the temporary folder either: the spool lies inside --output.
        const tmp = `${built.path}.tmp`;
        await Deno.mkdir(tmp);
        const result = await runCli(
          ["restore", built.path, "--vm", "work", "--files", "/home/user", "--output", out],
          { passphrase: PASS, env: { TMPDIR: tmp } },
        );
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /Restored \d+ files .* from work's private\.img into/);
        // Only DIR/work/user: no spool file, no qubes.xml, nothing else.
        assert.deepEqual(await listAll(out), ["work"]);
        assert.deepEqual(await listAll(join(out, "work")), ["user"]);
        assert.deepEqual(await describeFull(join(out, "work")), expected);
        assert.deepEqual(await listAll(tmp), []);
        await Deno.remove(tmp);

        // A path that is not there: a one-line error with the hint, and the spool is gone.
        const missing = await runCli(
          ["restore", built.path, "--vm", "work", "--files", "/home/user/nope", "--output", out],
          { passphrase: PASS },
        );
        assert.equal(missing.code, 2, missing.stderr);
        assert.match(
          missing.stderr,
          /Cannot find "\/home\/user\/nope" in "work's private\.img": "\/home\/user" has no "nope" \(the image's top level holds: config, home, lost\+found, usrlocal;/,
        );
        assert.deepEqual(await listAll(out), ["work"]);
        await Deno.remove(out, { recursive: true });
        await Deno.remove(built.path, { recursive: true });
      });
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
