/**
 * RECOVERY.txt must stay true: the manual procedure it prints for formats 2, 3 and 4 is
 * extracted from the file and run, with the real tools, on backups made by the real tools, for
 * every item of the backup (qubes.xml first, as the text says), through the generic commands
 * with only the ITEM line changed; and its debugfs lines are run on real ext4 images, a
 * partitioned root.img among them. (Section 3, the qvm-* steps, needs a Qubes dom0.)
 */

import assert from "node:assert/strict";
import { buildBackup, type FixtureSpec } from "./support/backup_builder.ts";
import { makeExt4Image } from "./support/ext4.ts";
import { sh } from "./e2e/_cli.ts";
import { assertRestored, withWorld } from "./e2e/_world.ts";

const text = await Deno.readTextFile(new URL("../RECOVERY.txt", import.meta.url));

/** The indented command lines between the line starting with `from` and the one with `to`. */
function commands(from: string, to: string): string {
  const start = text.indexOf(`\n${from}`);
  assert.ok(start >= 0, `RECOVERY.txt has "${from}"`);
  const rest = text.slice(start + 1);
  const end = rest.indexOf(`\n${to}`);
  assert.ok(end >= 0, `RECOVERY.txt has "${to}" after "${from}"`);
  return rest.slice(0, end).split("\n")
    .filter((line) => line.startsWith("    "))
    .map((line) => line.slice(4))
    .join("\n");
}

/** The commands of `from` for one item: the ITEM line set to `item`. */
function forItem(block: string, item: string): string {
  assert.match(block, /^ITEM=qubes\.xml$/m, "the commands start with ITEM=qubes.xml");
  return block.replace(/^ITEM=qubes\.xml$/m, `ITEM='${item}'`);
}

async function bash(script: string, cwd: string, env: Record<string, string>, stdin = "") {
  const child = new Deno.Command("bash", {
    args: ["-c", script],
    cwd,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const out = await child.output();
  const decoded = {
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  assert.ok(out.success, `${script}\n${decoded.stderr}`);
  return decoded;
}

Deno.test("RECOVERY.txt: the manual procedure restores every item of formats 2, 3 and 4", async (t) => {
  const unpack = commands("Work in an empty folder.", "Which format?");
  assert.match(unpack, /^tar -i -xvf BACKUP$/m);
  assert.match(unpack, /^read -rs PASS; export PASS$/m);
  const check = commands("Formats 2 and 3 - check", "Every line must say");
  await withWorld("qr-recovery-txt-", async (root, world) => {
    const cases: Array<[string, string, Partial<FixtureSpec> & { format: 2 | 3 | 4 }]> = [
      ["FORMAT 2", "The result is the item", { format: 2, encrypted: true, volumeKiB: 64 }],
      ["FORMAT 3", "(leave out the openssl", {
        format: 3,
        encrypted: true,
        compressed: true,
        chunkBytes: 100000,
      }],
      ["FORMAT 4", "(use zstd -d", {
        format: 4,
        compressed: true,
        chunkBytes: 100000,
        scryptLogN: 10,
      }],
    ];
    for (const [heading, next, spec] of cases) {
      await t.step(heading, async () => {
        const pass = "manual pass! with spaces";
        const built = await buildBackup({
          passphrase: pass,
          vms: world.vms,
          dom0Home: world.dom0Home,
          ...spec,
        }, root);
        const dir = `${built.path}.manual`;
        await Deno.mkdir(dir);
        const block = commands(heading, next);
        const items = [
          ...new Set(
            built.chunkNames
              .map((name) => /^(.*)\.\d{3,}(\.enc)?$/.exec(name)?.[1])
              .filter((item): item is string => item !== undefined),
          ),
        ];
        assert.equal(items[0], "qubes.xml");
        assert.ok(items.length >= 4, items.join());
        let script = `set -e\n${unpack.replace("BACKUP", `'${built.path}'`)}\n`;
        for (const item of items) {
          if (spec.format !== 4) script += `${forItem(check, item)}\n`;
          script += `${forItem(block, item)}\n`;
        }
        const out = await bash(script, dir, { PATH: Deno.env.get("PATH") ?? "" }, `${pass}\n`);
        if (spec.format !== 4) {
          assert.doesNotMatch(out.stdout, /^BAD /m, out.stdout);
          assert.match(out.stdout, /^ok {2}vm5\/private\.img\.002$/m, out.stdout);
        }
        // qubes.xml came out first, and it names the VMs' backup paths.
        assert.match(await Deno.readTextFile(`${dir}/qubes.xml`), /vm5/);
        // The items under their backup paths are the VMs' files, bit for bit.
        // (The pieces stay next to them; they are not part of the comparison.)
        await sh(
          `cd '${dir}' && find . -regextype posix-extended -regex '.*\\.[0-9]{3,}(\\.hmac|\\.enc)?$' -delete && mv vm5 work && mv vm3 my-tpl`,
        );
        // Qubes' tar rewrote relative link targets in template folders (vm3/...), as the
        // text says; undo that the way it says the program does.
        await sh(
          `cd '${dir}/my-tpl' && find . -type l | while read -r l; do t=$(readlink "$l"); case "$t" in vm3/*) ln -sfn "\${t#vm3/}" "$l";; esac; done`,
        );
        await assertRestored(dir, world, { format4: spec.format === 4 });
        // More than one chunk, or the procedure was not tested on what matters.
        assert.ok(built.chunkNames.filter((n) => n.startsWith("vm5/private.img.")).length > 2);
      });
    }
  });
});

Deno.test("RECOVERY.txt: the debugfs lines copy files out of private.img and a partitioned root.img", async () => {
  const home = await Deno.makeTempDir({ prefix: "qr-recovery-home-" });
  try {
    await sh(`mkdir -p '${home}/tree/home/user/Documents' '${home}/tpl/etc'`);
    await Deno.writeTextFile(`${home}/tree/home/user/Documents/letter.txt`, "Dear reader\n");
    await Deno.writeTextFile(`${home}/tpl/etc/hostname`, "my-template\n");
    await Deno.mkdir(`${home}/restored/work`, { recursive: true });
    await makeExt4Image(`${home}/restored/work/private.img`, `${home}/tree`, 16 * 1024 * 1024);
    // A Qubes 4 root.img: GPT, a small BIOS boot partition, then the Linux file system.
    const img = `${home}/restored/my-template/root.img`;
    await Deno.mkdir(`${home}/restored/my-template`);
    await sh(
      `truncate -s 40M '${img}' && printf 'label: gpt\\nstart=2048, size=4096, type=21686148-6449-6E6F-744E-656564494649\\nstart=6144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\n' | sfdisk -q '${img}' && mkfs.ext4 -q -F -E offset=${
        6144 * 512
      } -d '${home}/tpl' '${img}' 30M`,
    );
    const script = commands("2. GET YOUR FILES OUT OF THE IMAGES", "3. PUT A VM BACK");
    assert.match(script, /^mkdir -p ~\/work-files$/m, "mkdir before debugfs rdump");
    await bash(`set -e\n${script}\n`, home, {
      HOME: home,
      PATH: `/usr/sbin:/sbin:${Deno.env.get("PATH") ?? ""}`,
    });
    assert.equal(
      await Deno.readTextFile(`${home}/work-files/user/Documents/letter.txt`),
      "Dear reader\n",
    );
    assert.equal(await Deno.readTextFile(`${home}/template-files/etc/hostname`), "my-template\n");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
