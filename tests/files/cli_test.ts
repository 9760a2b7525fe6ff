/**
 * The `files` command line and `restore --files` as users run them: output, exit codes,
 * one-line errors, and Ctrl-C removing the spooled image.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { buildBackup } from "../support/backup_builder.ts";
import { makeExt4Image } from "../support/ext4.ts";
import { makeVmTree } from "../support/vm_tree.ts";
import { recoverFlags, runCli, sh } from "../e2e/_cli.ts";

Deno.test("files ls / cat / get through the CLI", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "qr-files-cli-" });
  try {
    const tree = join(work, "tree");
    await makeVmTree(join(tree, "home", "user"), 9);
    const image = join(work, "private.img");
    await makeExt4Image(image, tree, 48 * 1024 * 1024);

    await t.step("ls, ls -l, ls --json", async () => {
      const plain = await runCli(["files", "ls", image, "home/user"]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.ok(plain.stdout.split("\n").includes("hello.txt"), plain.stdout);
      assert.ok(plain.stdout.split("\n").includes("data/"), plain.stdout);
      const long = await runCli(["files", "ls", image, "/home/user", "-l"]);
      assert.match(
        long.stdout,
        /^lrwxrwxrwx +1 +0 +0 +9 2014-07-01 12:00 link-relative -> hello\.txt$/m,
      );
      assert.match(long.stdout, /^-rwxr-xr-x +1 +0 +0 +19 2014-07-01 12:00 run\.sh$|^drwxr-xr-x/m);
      const json = JSON.parse(
        (await runCli(["files", "ls", image, "/home/user", "--json"])).stdout,
      );
      assert.equal(json.kind, "entries");
      assert.equal(
        json.entries.find((e: { name: string }) => e.name === "hello.txt").size,
        (await Deno.stat(join(tree, "home", "user", "hello.txt"))).size,
      );
    });
    await t.step("cat", async () => {
      const cat = await runCli(["files", "cat", image, "/home/user/hello.txt"]);
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout, await Deno.readTextFile(join(tree, "home", "user", "hello.txt")));
    });
    await t.step("get, then again without --force", async () => {
      const out = join(work, "out");
      const get = await runCli(["files", "get", image, "/home/user/data", "--output", out]);
      assert.equal(get.code, 0, get.stderr);
      assert.match(
        get.stderr,
        /^Copied 1 file \(293\.0 KiB\) from ".*private\.img" into ".*out"$/m,
      );
      const again = await runCli(["files", "get", image, "/home/user/data", "--output", out]);
      assert.equal(again.code, 7);
      assert.match(
        again.stderr,
        /^qubes-recover: Cannot restore "data\/[^"]+": it exists \(use --skip-existing to keep it and copy the rest, or --force to replace it\)\n$/,
      );
    });
    await t.step("get stopped part way, resumed with --skip-existing", async () => {
      const out = join(work, "resume");
      const args = ["files", "get", image, "/home/user", "--output", out];
      assert.equal((await runCli(args)).code, 0);
      // As a copy stopped part way leaves it: some files there, some not (one changed since).
      await Deno.remove(join(out, "user", "data", "random.bin"));
      await Deno.remove(join(out, "user", "a"), { recursive: true });
      await Deno.writeTextFile(join(out, "user", "hello.txt"), "mine");
      const both = await runCli([...args, "--force", "--skip-existing"]);
      assert.equal(both.code, 2, both.stderr);
      const resumed = await runCli([...args, "--skip-existing"]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr, /^skipped user\/hello\.txt: it exists \(--skip-existing\)$/m);
      assert.match(
        resumed.stderr,
        /^Copied 2 files \(.*\) from ".*" into ".*"; left \d+ existing files alone$/m,
      );
      assert.equal(await Deno.readTextFile(join(out, "user", "hello.txt")), "mine");
      for (const name of ["data/random.bin", "a/b/c/d/e/deep.txt"]) {
        assert.deepEqual(
          await Deno.readFile(join(out, "user", name)),
          await Deno.readFile(join(tree, "home", "user", name)),
          name,
        );
      }
    });
    await t.step("usage and not-found errors", async () => {
      const none = await runCli(["files"]);
      assert.equal(none.code, 2);
      assert.match(none.stdout, /Files inside a VM image/);
      const missing = await runCli([
        "files",
        "get",
        image,
        "/rw/home/user",
        "--output",
        join(work, "x"),
      ]);
      assert.equal(missing.code, 2);
      assert.equal(missing.stderr.split("\n").length, 2, missing.stderr);
      assert.match(missing.stderr, /Cannot find "\/rw\/home\/user" in ".*": "\/" has no "rw"/);
      const partition = await runCli(["files", "ls", image, "--partition", "x"]);
      assert.equal(partition.code, 2);
      // An option of another subcommand is refused, as the other commands refuse theirs.
      for (
        const [args, option, sub] of [
          [["get", image, "/home/user", "-o", join(work, "j"), "--json"], "--json", "get"],
          [["cat", image, "/home/user/hello.txt", "-l"], "--long", "cat"],
          [["ls", image, "--force"], "--force", "ls"],
        ] as const
      ) {
        const refused = await runCli(["files", ...args]);
        assert.equal(refused.code, 2, refused.stderr);
        assert.equal(
          refused.stderr,
          `qubes-recover: Option "${option}" does not apply to "files ${sub}"\n`,
        );
      }
      await assert.rejects(Deno.stat(join(work, "j")));
    });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("Ctrl-C during restore --files exits 130 and removes the spooled image", async () => {
  const root = await Deno.makeTempDir({ prefix: "qr-files-int-" });
  try {
    const vmDir = join(root, "var", "appvms", "work");
    await Deno.mkdir(vmDir, { recursive: true });
    const tree = join(root, "tree");
    await makeVmTree(join(tree, "home", "user"), 3);
    await makeExt4Image(join(vmDir, "private.img"), tree, 48 * 1024 * 1024);
    const PASS = "interrupt";
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: [{ name: "work", qid: 5, kind: "app", dir: vmDir }],
      volumeKiB: 64,
    }, root);
    const listing = await sh(`tar -tiR -f '${built.path}'`);
    const block = Number(/block (\d+): vm5\/private\.img\.002\n/.exec(listing)?.[1]);
    assert.ok(block > 0, listing);
    const bytes = await Deno.readFile(built.path);
    const out = join(root, "out");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...await recoverFlags(),
        "main.ts",
        "restore",
        "-",
        "--vm",
        "work",
        "--files",
        "/home/user",
        "-o",
        out,
      ],
      cwd: new URL("../../", import.meta.url).pathname,
      env: { QUBES_BACKUP_PASSPHRASE: PASS, NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(bytes.subarray(0, block * 512 + 5000));
    const deadline = Date.now() + 20_000;
    const found = async () =>
      (await sh(`find '${out}' -name '*partial*'`).catch(() => "")).trim() !== "";
    while (!(await found())) {
      assert.ok(Date.now() < deadline, "the spool never started");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill("SIGINT");
    const result = await child.output();
    await writer.close().catch(() => {});
    assert.equal(result.code, 130, new TextDecoder().decode(result.stderr));
    assert.equal((await sh(`find '${out}' -mindepth 1`)).trim(), "");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
