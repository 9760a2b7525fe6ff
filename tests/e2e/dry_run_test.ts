/**
 * `restore --dry-run` refuses what `restore` refuses. For each thing that can already be in the
 * output folder (a link where the backup puts a link, a folder where it puts a file or a link, a
 * file where it needs a folder, a link on the way, another qubes.xml), with no option, with
 * `--skip-existing` and with `--force`, the dry run and the restore end with the same exit code;
 * where the restore stops, the dry run tells the same reason (for things that exist: how many);
 * where the restore succeeds, the dry run does too and writes nothing. Runs the CLI on the sample
 * backup made by the real tools.
 */

import assert from "node:assert/strict";
import { runCli } from "./_cli.ts";
import { assertOneLineError } from "./_surgery.ts";
import { buildBackup } from "../support/backup_builder.ts";
import { makeVmTree } from "../support/vm_tree.ts";

const fixtures = new URL("../fixtures/", import.meta.url).pathname;
const sample = JSON.parse(await Deno.readTextFile(`${fixtures}sample-v2.json`));
const BACKUP = `${fixtures}${sample.file}`;
const PASS: string = sample.passphrase;

/** What is in the output folder before the restore (the sample puts `work/icon.png`, a link). */
const SETUPS: Record<string, (out: string) => Promise<void>> = {
  "a link where the backup puts a link": async (out) => {
    await Deno.mkdir(`${out}/work`);
    await Deno.symlink("/nowhere", `${out}/work/icon.png`);
  },
  "a folder where the backup puts a link": (out) =>
    Deno.mkdir(`${out}/work/icon.png`, { recursive: true }),
  "a folder where the backup puts a file": (out) =>
    Deno.mkdir(`${out}/work/private.img`, { recursive: true }),
  "a file where the backup needs a folder": (out) => Deno.writeTextFile(`${out}/dom0-home`, "mine"),
  "a file where the backup puts a folder": async (out) => {
    await Deno.mkdir(`${out}/dom0-home/user`, { recursive: true });
    await Deno.writeTextFile(`${out}/dom0-home/user/Documents`, "mine");
  },
  "a link on the way": (out) => Deno.symlink("/tmp", `${out}/work`),
  "another qubes.xml": (out) => Deno.writeTextFile(`${out}/qubes.xml`, "another backup's"),
};

async function listTree(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for await (const entry of Deno.readDir(dir)) {
      found.push(`${prefix}${entry.name}`);
      if (entry.isDirectory) await walk(`${dir}/${entry.name}`, `${prefix}${entry.name}/`);
    }
  };
  await walk(root, "");
  return found.sort();
}

for (const mode of [[], ["--skip-existing"], ["--force"]]) {
  Deno.test(`${["restore --dry-run", ...mode].join(" ")} refuses what restore refuses`, async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "qr-dry-run-" });
    try {
      for (const [name, setup] of Object.entries(SETUPS)) {
        await t.step(name, async () => {
          const dry = `${dir}/${Object.keys(SETUPS).indexOf(name)}-dry`;
          const real = `${dir}/${Object.keys(SETUPS).indexOf(name)}-real`;
          for (const out of [dry, real]) {
            await Deno.mkdir(out);
            await setup(out);
          }
          const before = await listTree(dry);
          const planned = await runCli(["restore", BACKUP, "-o", dry, "--dry-run", ...mode], {
            passphrase: PASS,
          });
          const restored = await runCli(["restore", BACKUP, "-o", real, ...mode], {
            passphrase: PASS,
          });
          assert.deepEqual(await listTree(dry), before, "the dry run wrote nothing");
          assert.equal(planned.code, restored.code, `${planned.stderr}\n${restored.stderr}`);
          if (restored.code === 0) return;
          const why = assertOneLineError(restored, 7);
          const told = assertOneLineError(planned, 7);
          if (/: it exists \(/.test(why)) {
            // The dry run goes on past what exists, and tells how many there are.
            assert.match(told, /Cannot restore into ".*": 1 file exists already/);
          } else {
            assert.equal(told, why);
          }
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("restore --dry-run --json lists links, and the links that exist", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qr-dry-run-" });
  try {
    await SETUPS["a link where the backup puts a link"]!(dir);
    const result = await runCli(["restore", BACKUP, "-o", dir, "--dry-run", "--json"], {
      passphrase: PASS,
    });
    assert.equal(result.code, 7, result.stderr);
    const records = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
    const links = records.filter((r) => r.type === "planned" && r.kind === "link");
    assert.deepEqual(links, [
      { type: "planned", path: "work/icon.png", kind: "link", size: 0, space: 0, exists: true },
      {
        type: "planned",
        path: "dom0-home/user/notes-link",
        kind: "link",
        size: 0,
        space: 0,
        exists: false,
      },
    ]);
    const summary = records.at(-1);
    assert.equal(summary.type, "summary");
    assert.equal(summary.links, 2);
    assert.equal(summary.files, 8);
    assert.equal(summary.existing, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore --skip-existing links a hard link to the kept file, and the dry run agrees", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "qr-dry-run-" });
  try {
    await makeVmTree(`${dir}/home/user`, 4);
    await Deno.mkdir(`${dir}/work`);
    await Deno.writeFile(`${dir}/work/private.img`, new Uint8Array(4096));
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: [{ name: "work", qid: 5, kind: "app", dir: `${dir}/work` }],
      dom0Home: { user: "user", dir: `${dir}/home/user` },
    }, dir);
    const out = `${dir}/out`;
    assert.equal((await runCli(["restore", built.path, "-o", out], { passphrase: PASS })).code, 0);
    const home = `${out}/dom0-home/user`;
    // A restore stopped between the two names of one file: either may be the one missing.
    // Missing the name tar stored as the file, that file is restored again (a second copy, as
    // `tar --skip-old-files` does); missing the one stored as a hard link, the link is made to
    // the file kept there.
    const shared: boolean[] = [];
    for (const missing of ["hardlink.txt", "hello.txt"]) {
      await t.step(`${missing} missing`, async () => {
        await Deno.remove(`${home}/${missing}`);
        const args = ["restore", built.path, "-o", out, "--skip-existing"];
        const planned = await runCli([...args, "--dry-run"], { passphrase: PASS });
        assert.equal(planned.code, 0, planned.stderr);
        const resumed = await runCli(args, { passphrase: PASS });
        assert.equal(resumed.code, 0, resumed.stderr);
        const text = await Deno.readTextFile(`${dir}/home/user/hello.txt`);
        for (const name of ["hello.txt", "hardlink.txt"]) {
          assert.equal(await Deno.readTextFile(`${home}/${name}`), text);
        }
        const one = await Deno.stat(`${home}/hello.txt`);
        shared.push(one.ino === (await Deno.stat(`${home}/hardlink.txt`)).ino);
      });
    }
    assert.ok(shared.includes(true), "the hard link was made to the kept file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
