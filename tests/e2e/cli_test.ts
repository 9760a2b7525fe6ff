/**
 * The command line as a stressed user meets it (issue 11): no false success on folders that
 * are not backups, files that are not tar archives named as such, command words before
 * anything else, conventional options, and the small things. Runs the CLI as a subprocess
 * with the release permissions, on the sample backup made by the real tools.
 */

import assert from "node:assert/strict";
import { runCli, sh } from "./_cli.ts";
import { assertOneLineError, listFiles } from "./_surgery.ts";

const fixtures = new URL("../fixtures/", import.meta.url).pathname;
const sample = JSON.parse(await Deno.readTextFile(`${fixtures}sample-v2.json`));
const BACKUP = `${fixtures}${sample.file}`;
const PASS: string = sample.passphrase;
const ALL_FILES = [
  "./dom0-home/user/.bashrc",
  "./dom0-home/user/Documents/notes.txt",
  "./fedora-20-x64/private.img",
  "./fedora-20-x64/root.img",
  "./fedora-20-x64/whitelisted-appmenus.list",
  "./qubes.xml",
  "./work/firewall.xml",
  "./work/private.img",
];

async function withTemp(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "qr-e2e-cli-" });
  try {
    await test(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The sample untarred by hand, with qubes.xml.000 decrypted next to it as RECOVERY.txt does. */
async function untarredWithQubesXml(dir: string): Promise<string> {
  const untarred = `${dir}/untarred`;
  await Deno.mkdir(untarred);
  await sh(`cd '${untarred}' && tar -i -xf '${BACKUP}'`);
  await sh(
    `cd '${untarred}' && openssl enc -d -aes-256-cbc -md md5 -pass pass:'${PASS}' -in qubes.xml.000 | tar -xf -`,
  );
  assert.ok((await Deno.stat(`${untarred}/qubes.xml`)).isFile);
  return untarred;
}

Deno.test("wrong today 1: no false success on folders that are not what they seem", async (t) => {
  await withTemp(async (dir) => {
    const untarred = await untarredWithQubesXml(dir);
    await t.step("an untarred backup with a decrypted qubes.xml is format 2, not 1", async () => {
      const out = `${dir}/out1`;
      const restore = await runCli(["restore", untarred, "-o", out], { passphrase: PASS });
      assert.equal(restore.code, 0, restore.stderr);
      assert.match(restore.stderr, /Restored 8 files .* from a format-2 backup/);
      assert.deepEqual(await listFiles(out), ALL_FILES);
      const verify = await runCli(["verify", untarred], { passphrase: PASS });
      assert.equal(verify.code, 0, verify.stderr);
      assert.match(verify.stderr, /Verified: format 2, 5 items/);
      const info = await runCli(["info", untarred], { passphrase: PASS });
      assert.match(info.stdout, /Format:\s+2/);
    });
    await t.step(
      "a restored output folder is not a backup: exit 6 for info, verify, restore",
      async () => {
        const restored = `${dir}/out1`;
        for (
          const args of [["info", restored], ["verify", restored], [
            "restore",
            restored,
            "-o",
            `${dir}/o2`,
          ]]
        ) {
          const line = assertOneLineError(await runCli(args, { passphrase: PASS }), 6);
          assert.match(
            line,
            /is not a Qubes backup: it holds qubes\.xml, but no appvms\/ or vm-templates\/ \(format 1\) and no backup chunks/,
          );
          assert.doesNotMatch(line, /Format 1/);
        }
        assert.deepEqual(await listFiles(`${dir}/o2`), []);
      },
    );
    await t.step("an untarred backup without any VM data: exit 5, never success", async () => {
      const bare = `${dir}/bare`;
      await Deno.mkdir(bare);
      for (
        const name of ["backup-header", "backup-header.hmac", "qubes.xml.000", "qubes.xml.000.hmac"]
      ) {
        await Deno.copyFile(`${untarred}/${name}`, `${bare}/${name}`);
      }
      const verify = await runCli(["verify", bare], { passphrase: PASS });
      assertOneLineError(verify, 5);
      const restore = await runCli(["restore", bare, "-o", `${dir}/o3`], { passphrase: PASS });
      assertOneLineError(restore, 5);
      assert.doesNotMatch(restore.stderr, /Restored/);
    });
    await t.step("qubes.xml alone is not a format-1 backup: exit 6", async () => {
      const lone = `${dir}/lone`;
      await Deno.mkdir(lone);
      await Deno.copyFile(`${untarred}/qubes.xml`, `${lone}/qubes.xml`);
      assertOneLineError(await runCli(["verify", lone]), 6);
      assertOneLineError(await runCli(["restore", lone, "-o", `${dir}/o4`]), 6);
    });
  });
});

Deno.test("wrong today 2: a file that is not a tar archive is exit 6 and named", async (t) => {
  await withTemp(async (dir) => {
    await t.step("a text file", async () => {
      const readme = new URL("../../README.md", import.meta.url).pathname;
      const line = assertOneLineError(await runCli(["verify", readme], { passphrase: PASS }), 6);
      assert.match(
        line,
        /Cannot read ".*README\.md": it is not a Qubes backup \(not a tar archive\)/,
      );
    });
    await t.step("random bytes", async () => {
      const file = `${dir}/random.bin`;
      await Deno.writeFile(file, crypto.getRandomValues(new Uint8Array(4096)));
      const line = assertOneLineError(await runCli(["info", file], { passphrase: PASS }), 6);
      assert.match(line, /random\.bin/);
    });
    await t.step("a gzip-compressed backup says so and what to do", async () => {
      const file = `${dir}/backup.gz`;
      await sh(`gzip -c '${BACKUP}' > '${file}'`);
      const line = assertOneLineError(
        await runCli(["restore", file, "-o", `${dir}/o`], { passphrase: PASS }),
        6,
      );
      assert.match(line, /Cannot read ".*backup\.gz": it is gzip-compressed/);
      assert.match(line, /"gzip -dc .*backup\.gz \| qubes-recover COMMAND - \.\.\."/);
      // And the advice works.
      const piped = await runCli(["verify", "-"], {
        passphrase: PASS,
        stdin: await new Deno.Command("gzip", { args: ["-dc", file], stdout: "piped" }).output()
          .then((o) => o.stdout),
      });
      assert.equal(piped.code, 0, piped.stderr);
    });
    await t.step("compressed standard input", async () => {
      const gz = await new Deno.Command("gzip", { args: ["-c", BACKUP], stdout: "piped" }).output();
      const line = assertOneLineError(
        await runCli(["verify", "-"], { passphrase: PASS, stdin: gz.stdout }),
        6,
      );
      assert.match(line, /standard input: it is gzip-compressed/);
    });
    await t.step("an empty file is named", async () => {
      const file = `${dir}/empty.backup`;
      await Deno.writeFile(file, new Uint8Array(0));
      const line = assertOneLineError(await runCli(["verify", file], { passphrase: PASS }), 5);
      assert.match(line, /Cannot read ".*empty\.backup": it is empty/);
    });
  });
});

Deno.test("wrong today 3 and 4: command words first, unknown options with a pointer to --help", async (t) => {
  await t.step("help and version need no BACKUP", async () => {
    const help = await runCli(["help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Commands:\n\s+info .*\n\s+verify .*\n\s+restore/);
    assert.equal(help.stderr, "");
    const helpRestore = await runCli(["help", "restore"]);
    assert.equal(helpRestore.code, 0);
    assert.match(helpRestore.stdout, /Usage: qubes-recover restore BACKUP --output DIR/);
    assert.match(helpRestore.stdout, /Examples:\n/);
    const dashHelp = await runCli(["restore", "--help"]);
    assert.equal(dashHelp.stdout, helpRestore.stdout);
    assert.match(helpRestore.stdout, /BACKUP is the backup file, - for standard input/);
    // convert refuses standard input, and its help says so.
    const helpConvert = await runCli(["help", "convert"]);
    assert.equal(helpConvert.code, 0);
    assert.match(helpConvert.stdout, /OLD_BACKUP is the backup file, or a folder/);
    assert.match(helpConvert.stdout, /not standard input\./);
    assert.doesNotMatch(helpConvert.stdout, /BACKUP is the backup file, - for standard input/);
    for (const args of [["version"], ["--version"], ["-V"]]) {
      const version = await runCli(args);
      assert.equal(version.code, 0);
      assert.match(version.stdout, /^qubes-recover \d+\.\d+\.\d+\n/);
    }
  });
  await t.step("an unknown command says so and lists the commands", async () => {
    const line = assertOneLineError(await runCli(["frobnicate", BACKUP]), 2);
    assert.match(
      line,
      /Unknown command "frobnicate" \(commands: info, verify, restore, files, convert, help, version\)/,
    );
  });
  await t.step(
    "an unknown option: balanced quotes, usage on stderr, nothing on stdout",
    async () => {
      const result = await runCli(["verify", BACKUP, "--foo"]);
      const line = assertOneLineError(result, 2);
      assert.equal(line, 'qubes-recover: Unknown option "--foo"');
      assert.match(result.stderr, /Try "qubes-recover verify --help"/);
      assert.match(result.stderr, /Usage: qubes-recover verify BACKUP/);
      assert.equal(result.stdout, "");
    },
  );
  await t.step("options that do not apply are refused", async () => {
    const info = await runCli(["info", BACKUP, "-o", "X", "--force"]);
    assert.match(assertOneLineError(info, 2), /Option "-o" does not apply to "info"/);
    const force = await runCli(["verify", BACKUP, "--force"]);
    assert.match(assertOneLineError(force, 2), /Option "--force" does not apply to "verify"/);
    const both = await runCli(["restore", BACKUP, "-o", "X", "--force", "--skip-existing"]);
    assert.match(assertOneLineError(both, 2), /exclude each other/);
  });
});

Deno.test("wrong today 5: the small things", async (t) => {
  await withTemp(async (dir) => {
    await t.step("-v lists links too; the count is right and singular when one", async () => {
      const out = `${dir}/v`;
      const result = await runCli(["restore", BACKUP, "-o", out, "-v"], { passphrase: PASS });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /restored link work\/icon\.png/);
      assert.match(result.stderr, /restored link dom0-home\/user\/notes-link/);
      assert.match(result.stderr, /Restored 8 files \(7\.0 MiB\), 2 links and 3 folders/);
      const one = await runCli([
        "restore",
        BACKUP,
        "-o",
        `${dir}/one`,
        "--vm",
        "work",
        "--exclude",
        "work",
        "--vm",
        "dom0",
      ], { passphrase: PASS });
      assert.equal(one.code, 0, one.stderr);
      assert.match(one.stderr, /Restored 3 files .*, 1 link and 2 folders/);
    });
    await t.step("-o naming a file is 'not a folder', exit 7", async () => {
      const file = `${dir}/a-file`;
      await Deno.writeTextFile(file, "x");
      const line = assertOneLineError(
        await runCli(["restore", BACKUP, "-o", file], { passphrase: PASS }),
        7,
      );
      assert.match(line, /it exists and is not a folder/);
    });
    await t.step("info: aligned, the key derivation not repeated on stderr", async () => {
      const result = await runCli(["info", BACKUP], { passphrase: PASS });
      assert.equal(result.code, 0, result.stderr);
      const head = result.stdout.split("\n\n")[0]!.split("\n");
      const columns = head.map((line) => line.search(/(?<=:\s+)\S/));
      assert.ok(columns.every((c) => c === columns[0]), head.join("\n"));
      assert.doesNotMatch(result.stderr, /Key derivation/);
      assert.match(result.stderr, /Listed 2 VMs and the dom0 home of a format-2 backup in/);
    });
    await t.step("a missing BACKUP file: exit 2, named", async () => {
      const line = assertOneLineError(await runCli(["verify", `${dir}/nope`]), 2);
      assert.match(line, /Cannot open ".*nope": no such file or directory/);
    });
  });
});

Deno.test("options: --json, -q, --dry-run, --skip-existing, --exclude, --no-dom0-home", async (t) => {
  await withTemp(async (dir) => {
    await t.step("--json: JSON Lines with items, files and a summary; text on stderr", async () => {
      const out = `${dir}/json`;
      const result = await runCli(["restore", BACKUP, "-o", out, "--json"], { passphrase: PASS });
      assert.equal(result.code, 0, result.stderr);
      const records = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
      const files = records.filter((r) => r.type === "file" && r.kind === "file");
      assert.equal(files.length, 8);
      assert.ok(files.every((r) => typeof r.path === "string" && typeof r.size === "number"));
      const summary = records.at(-1);
      assert.equal(summary.type, "summary");
      assert.equal(summary.command, "restore");
      assert.equal(summary.ok, true);
      assert.equal(summary.exitCode, 0);
      assert.equal(summary.files, 8);
      assert.equal(summary.format, 2);
      assert.equal(typeof summary.bytes, "number");
      assert.equal(typeof summary.seconds, "number");
      assert.match(result.stderr, /Restored 8 files/);

      const verify = await runCli(["verify", BACKUP, "--json"], { passphrase: PASS });
      const vrecords = verify.stdout.trim().split("\n").map((line) => JSON.parse(line));
      const items = vrecords.filter((r) => r.type === "item");
      assert.deepEqual(items.map((r) => r.vm), ["work", "work", "work", "fedora-20-x64", "dom0"]);
      assert.equal(vrecords.at(-1).items, 5);
      assert.equal(records.filter((r) => r.type === "item").length, 5);

      const failed = await runCli(["verify", BACKUP, "--json"], { passphrase: "wrong" });
      assert.equal(failed.code, 3);
      const frecords = failed.stdout.trim().split("\n").map((line) => JSON.parse(line));
      assert.deepEqual(frecords.map((r) => r.type), ["error", "summary"]);
      assert.equal(frecords[1].exitCode, 3);
      assert.equal(frecords[1].ok, false);
    });
    await t.step("-q: nothing on stderr when all is well", async () => {
      const result = await runCli(["verify", BACKUP, "-q"], { passphrase: PASS });
      assert.equal(result.code, 0);
      assert.equal(result.stderr, "");
      assert.equal(result.stdout, "");
    });
    await t.step("--dry-run writes nothing and tells what and how much", async () => {
      const out = `${dir}/dry`;
      const result = await runCli(["restore", BACKUP, "-o", out, "--dry-run"], {
        passphrase: PASS,
      });
      assert.equal(result.code, 0, result.stderr);
      await assert.rejects(Deno.stat(out));
      assert.match(result.stderr, /would write work\/private\.img \(1\.0 MiB, .* on disk\)/);
      assert.match(
        result.stderr,
        /Dry run: verified 5 items in .*, wrote nothing\.\nA restore would write 8 files \(7\.0 MiB, .* on disk\) and 2 links into ".*dry", where .* are free\./,
      );
      // Against a folder that holds the files: it would stop, so exit 7.
      await runCli(["restore", BACKUP, "-o", out, "--vm", "work"], { passphrase: PASS });
      const clash = await runCli(["restore", BACKUP, "-o", out, "-n"], { passphrase: PASS });
      assert.match(assertOneLineError(clash, 7), /files exist already \(use --skip-existing/);
      const resumed = await runCli(["restore", BACKUP, "-o", out, "-n", "--skip-existing"], {
        passphrase: PASS,
      });
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr, /would write 5 files/);
    });
    await t.step("--skip-existing resumes: existing files left alone and named", async () => {
      const out = `${dir}/resume`;
      assert.equal((await runCli(["restore", BACKUP, "-o", out], { passphrase: PASS })).code, 0);
      await Deno.remove(`${out}/fedora-20-x64/root.img`);
      await Deno.writeTextFile(`${out}/work/firewall.xml`, "mine");
      const again = await runCli(["restore", BACKUP, "-o", out], { passphrase: PASS });
      assert.match(
        assertOneLineError(again, 7),
        /it exists \(use --skip-existing to keep it and restore the rest, or --force to replace it\)/,
      );
      const resumed = await runCli(["restore", BACKUP, "-o", out, "--skip-existing"], {
        passphrase: PASS,
      });
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr, /skipped work\/firewall\.xml: it exists/);
      assert.match(resumed.stderr, /Restored 1 file \(4\.0 MiB\)/);
      assert.equal(await Deno.readTextFile(`${out}/work/firewall.xml`), "mine");
      assert.deepEqual(await listFiles(out), ALL_FILES);
    });
    await t.step("--exclude and --no-dom0-home", async () => {
      const out = `${dir}/excl`;
      const result = await runCli([
        "restore",
        BACKUP,
        "-o",
        out,
        "--exclude",
        "fedora-20-x64",
        "--no-dom0-home",
      ], { passphrase: PASS });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(await listFiles(out), [
        "./qubes.xml",
        "./work/firewall.xml",
        "./work/private.img",
      ]);
      const bad = await runCli(["verify", BACKUP, "--exclude", "nosuch"], { passphrase: PASS });
      assert.match(assertOneLineError(bad, 2), /"nosuch": it is not in this backup/);
    });
    await t.step("a wrong passphrase from the environment or a file: exit 3 at once", async () => {
      const env = await runCli(["verify", BACKUP], { passphrase: "wrong" });
      assertOneLineError(env, 3);
      assert.doesNotMatch(env.stderr, /try again/);
      await Deno.writeTextFile(`${dir}/pass`, "wrong\n");
      const file = await runCli(["verify", BACKUP, "--passphrase-file", `${dir}/pass`]);
      assertOneLineError(file, 3);
      assert.doesNotMatch(file.stderr, /try again/);
    });
  });
});
