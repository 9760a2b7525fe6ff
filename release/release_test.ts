/**
 * `deno task test:release`: builds the x86_64 release and proves what it promises. It runs in
 * a chroot that holds only the release file, /bin/sh, the coreutils it uses, gzip and the
 * system libraries these and the Deno runtime need (found with ldd): no Node, no Deno, no
 * network (`unshare -n`), an empty environment (`env -i`), as user nobody, with the backups on
 * a read-only bind mount. There it restores the sample format-2 backup, a format-3 xz backup
 * and a format-4 backup, bit-exact. It also checks that two builds give the same SHA256SUMS,
 * the messages for a noexec or read-only TMPDIR, the removal of the unpacked folder, and that
 * `deno task compile` fails only at the runtime download where that download cannot work.
 *
 * Needs root (unshare, chroot, mount), GNU tar, openssl, xz, scrypt, e2fsprogs, npm.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { build } from "./build.ts";
import { buildBackup } from "../tests/support/backup_builder.ts";
import { assertRestored, makeWorld } from "../tests/e2e/_world.ts";

const root = new URL("../", import.meta.url).pathname;
const KIT = "qubes-recover-x86_64-linux";
const NOBODY = "65534:65534";
/** chroot by its path: `env -i` leaves no PATH to find it. */
const CHROOT = (await new Deno.Command("sh", { args: ["-c", "command -v chroot"], stdout: "piped" })
  .output().then((out) => new TextDecoder().decode(out.stdout).trim())) || "/usr/sbin/chroot";

async function command(
  program: string,
  args: string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(program, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...options,
  })
    .output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function must(program: string, args: string[]): Promise<string> {
  const out = await command(program, args);
  assert.equal(out.code, 0, `${program} ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Where a program is on this machine (fails naming the Debian package when it is not). */
async function which(program: string, pkg: string): Promise<string> {
  const out = await command("sh", ["-c", `command -v ${program}`]);
  if (out.code !== 0) throw new Error(`${program} not found: install the Debian package ${pkg}`);
  return (await must("readlink", ["-f", out.stdout.trim()])).trim();
}

/** Copies `file` and the libraries ldd lists for it into `jail`, at the same paths. */
async function copyWithLibraries(file: string, jail: string, as = file): Promise<void> {
  const copy = async (from: string, to: string) => {
    await Deno.mkdir(`${jail}${to.replace(/\/[^/]*$/, "")}`, { recursive: true });
    await must("cp", ["-L", from, `${jail}${to}`]);
  };
  await copy(file, as);
  const ldd = await command("ldd", [file]);
  for (const line of ldd.stdout.split("\n")) {
    const path = line.match(/(?:=> )?(\/\S+) \(0x/)?.[1];
    if (path !== undefined) await copy(path, path);
  }
}

/**
 * Makes the chroot: the release file in /kit, sh, the coreutils the header uses and gzip in
 * /usr/bin (with /bin a link to it, as on Debian), their libraries and the runtime's, /dev/null,
 * /dev/zero, /dev/urandom, a world-writable /tmp, an empty /backups for the read-only mount and
 * a /out that nobody may write.
 */
async function makeJail(jail: string, kit: string): Promise<void> {
  await Deno.mkdir(`${jail}/kit`, { recursive: true });
  await Deno.copyFile(kit, `${jail}/kit/${KIT}`);
  await Deno.chmod(`${jail}/kit/${KIT}`, 0o755);
  await copyWithLibraries(await which("sh", "dash"), jail, "/usr/bin/sh");
  for (const tool of ["mktemp", "tail", "head", "sha256sum", "chmod", "rm", "uname"]) {
    await copyWithLibraries(await which(tool, "coreutils"), jail, `/usr/bin/${tool}`);
  }
  await copyWithLibraries(await which("gzip", "gzip"), jail, "/usr/bin/gzip");
  // The runtime inside the kit is this same Deno release: its libraries are these.
  for (const line of (await command("ldd", [Deno.execPath()])).stdout.split("\n")) {
    const path = line.match(/(?:=> )?(\/\S+) \(0x/)?.[1];
    if (path !== undefined) await copyWithLibraries(path, jail);
  }
  await Deno.symlink("usr/bin", `${jail}/bin`).catch(() => {});
  await Deno.mkdir(`${jail}/dev`);
  for (const [name, minor] of [["null", 3], ["zero", 5], ["urandom", 9]] as const) {
    await must("mknod", ["-m", "666", `${jail}/dev/${name}`, "c", "1", String(minor)]);
  }
  for (const dir of ["tmp", "backups", "out", "proc"]) await Deno.mkdir(`${jail}/${dir}`);
  await Deno.chmod(`${jail}/tmp`, 0o1777);
  await must("chown", [NOBODY, `${jail}/out`]);
}

/** Options of {@link runInJail}. */
interface JailRun {
  /** Environment inside (after `env -i`). */
  env?: Record<string, string>;
  /** Shell commands run (as root, in the new mount namespace) before the chroot. */
  setup?: string;
  /** Standard input: none (default) or a pipe the test holds. */
  stdin?: "null" | "piped";
}

/**
 * Runs the kit in the jail: new mount and network namespaces (no network), the backups folder
 * bound read-only at /backups, /proc mounted, `env -i`, chroot, user nobody.
 */
function spawnInJail(
  jail: string,
  backups: string,
  args: string[],
  options: JailRun = {},
): Deno.ChildProcess {
  const env = Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`);
  const script = [
    `mount --bind "$1" "$2/backups"`,
    `mount -o remount,bind,ro "$2/backups"`,
    `mount -t proc proc "$2/proc"`,
    options.setup ?? "true",
    `shift 2`,
    `exec env -i "$@"`,
  ].join(" && ");
  return new Deno.Command("unshare", {
    args: [
      "--mount",
      "--net",
      "--",
      "sh",
      "-c",
      script,
      "sh",
      backups,
      jail,
      ...env,
      CHROOT,
      `--userspec=${NOBODY}`,
      jail,
      `/kit/${KIT}`,
      ...args,
    ],
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function runInJail(jail: string, backups: string, args: string[], options: JailRun = {}) {
  const out = await spawnInJail(jail, backups, args, options).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** Every file in `dir`, as paths relative to it. */
async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${dir}${prefix}`)) {
    const path = `${prefix}/${entry.name}`;
    if (entry.isDirectory) found.push(...await listFiles(dir, path));
    else found.push(path);
  }
  return found.sort();
}

async function assertTmpEmpty(jail: string): Promise<void> {
  assert.deepEqual(await listFiles(`${jail}/tmp`), [], "the unpacked folder was not removed");
}

Deno.test("the x86_64 release restores formats 2, 3 and 4 with no Node, Deno, network or environment", async (t) => {
  if (Deno.uid() !== 0) throw new Error("test:release needs root (unshare, chroot, mount)");
  const probe = await command("unshare", ["--mount", "--net", "true"]);
  if (probe.code !== 0) {
    throw new Error(
      `test:release needs new mount and network namespaces (it cannot run inside a plain ` +
        `chroot, where / is no mount point): unshare --mount --net: ${probe.stderr.trim()}`,
    );
  }
  const work = await Deno.makeTempDir({ prefix: "qr-release-" });
  const cache = `${root}.cache/release`;
  try {
    const dist = `${work}/dist`;
    await t.step("deno task release builds the kit (x86_64 here)", async () => {
      const names = await build(["x86_64"], dist, cache);
      assert.deepEqual(names, [KIT, "RECOVERY.txt", "SHA256SUMS"]);
      const sums = await Deno.readTextFile(`${dist}/SHA256SUMS`);
      for (const name of [KIT, "RECOVERY.txt"]) {
        assert.match(
          sums,
          new RegExp(`^${sha256(await Deno.readFile(`${dist}/${name}`))}  ${name}$`, "m"),
        );
      }
      assert.equal(
        await Deno.readTextFile(`${dist}/RECOVERY.txt`),
        await Deno.readTextFile(`${root}RECOVERY.txt`),
      );
    });

    await t.step("two builds from the same commit give the same SHA256SUMS", async () => {
      await build(["x86_64"], `${work}/dist2`, cache);
      assert.equal(
        await Deno.readTextFile(`${work}/dist2/SHA256SUMS`),
        await Deno.readTextFile(`${dist}/SHA256SUMS`),
      );
      await Deno.remove(`${work}/dist2`, { recursive: true });
    });

    await t.step(
      "the kit runs deno with exactly the recover task's permissions and V8 flags",
      async () => {
        const tasks = JSON.parse(await Deno.readTextFile(`${root}deno.json`)).tasks;
        const wanted = tasks.recover.split(/\s+/).filter((w: string) =>
          /^--(allow-|v8-flags=)/.test(w)
        );
        const head = new TextDecoder().decode(
          (await Deno.readFile(`${dist}/${KIT}`)).subarray(0, 8192),
        );
        const line = head.split("\n").find((l) => l.includes('"$dir/deno" run '));
        assert.ok(line, "no deno run line in the header");
        const got = line.split(/\s+/).filter((w) => /^--(allow-|v8-flags=)/.test(w));
        assert.deepEqual(got, wanted);
        assert.match(line, /--no-remote --no-npm --no-prompt /);
      },
    );

    // Backups: the sample (format 2), a format-3 xz backup and a format-4 backup.
    const backups = `${work}/backups`;
    const world = await makeWorld(`${work}/world`);
    await Deno.mkdir(backups);
    const sample = JSON.parse(await Deno.readTextFile(`${root}tests/fixtures/sample-v2.json`));
    await Deno.copyFile(`${root}tests/fixtures/${sample.file}`, `${backups}/sample-v2`);
    await Deno.writeTextFile(`${backups}/sample-v2.pass`, `${sample.passphrase}\n`);
    const v3 = await buildBackup({
      format: 3,
      passphrase: "three",
      encrypted: true,
      compressed: true,
      compressionFilter: "xz",
      chunkBytes: 1024 * 1024,
      vms: world.vms,
      dom0Home: world.dom0Home,
    }, work);
    await Deno.rename(v3.path, `${backups}/v3-xz`);
    await Deno.writeTextFile(`${backups}/v3-xz.pass`, "three\n");
    const v4 = await buildBackup({
      format: 4,
      passphrase: "four",
      compressed: true,
      chunkBytes: 1024 * 1024,
      scryptLogN: 10,
      vms: world.vms,
      dom0Home: world.dom0Home,
    }, work);
    await Deno.rename(v4.path, `${backups}/v4`);
    await Deno.writeTextFile(`${backups}/v4.pass`, "four\n");

    const jail = `${work}/jail`;
    await makeJail(jail, `${dist}/${KIT}`);

    await t.step(
      "the chroot holds only the kit, sh, coreutils, gzip and their libraries",
      async () => {
        const files = await listFiles(jail);
        const allowed =
          /^\/(kit\/qubes-recover-x86_64-linux|usr\/bin\/(sh|mktemp|tail|head|sha256sum|chmod|rm|uname|gzip)|dev\/(null|zero|urandom)|(usr\/)?lib(64|x?32)?\/\S+\.so[.0-9]*|bin)$/;
        for (const file of files) assert.match(file, allowed);
        for (const file of files) assert.doesNotMatch(file, /(^|\/)(deno|node|npm|npx)$/);
      },
    );

    await t.step("--version in the chroot: program, Deno version, source commit", async () => {
      const out = await runInJail(jail, backups, ["--version"]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stderr, "");
      const commit = (await must("git", ["-C", root, "rev-parse", "HEAD"])).trim();
      assert.match(out.stdout, /^qubes-recover/);
      assert.match(out.stdout, /^Deno 2\.9\.6 \(V8 /m);
      assert.match(out.stdout, new RegExp(`^source commit ${commit}(-dirty)?$`, "m"));
      await assertTmpEmpty(jail);
    });

    await t.step("no network inside: the jail's namespace has only a down loopback", async () => {
      const out = await command("unshare", ["--net", "cat", "/proc/net/dev"]);
      assert.equal(out.code, 0, out.stderr);
      const interfaces = out.stdout.split("\n").slice(2).filter((l) => l.trim() !== "");
      assert.deepEqual(interfaces.map((l) => l.trim().split(":")[0]), ["lo"]);
    });

    await t.step("restores the sample format-2 backup bit-exact", async () => {
      const out = await runInJail(jail, backups, [
        "restore",
        "/backups/sample-v2",
        "--passphrase-file",
        "/backups/sample-v2.pass",
        "-o",
        "/out/v2",
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /Restored \d+ files .* format-2 backup/);
      let checked = 0;
      const files: Array<[string, { sha256?: string; size?: number }]> = [];
      for (const [name, vm] of Object.entries(sample.vms) as Array<[string, { files: object }]>) {
        for (const [file, what] of Object.entries(vm.files)) files.push([`${name}/${file}`, what]);
      }
      for (const [file, what] of Object.entries(sample.dom0Home.files)) {
        files.push([`dom0-home/${sample.dom0Home.user}/${file}`, what as { sha256?: string }]);
      }
      for (const [path, what] of files) {
        if (what.sha256 === undefined) continue;
        const bytes = await Deno.readFile(`${jail}/out/v2/${path}`);
        assert.equal(sha256(bytes), what.sha256, path);
        assert.equal(bytes.length, what.size, path);
        checked++;
      }
      assert.ok(checked >= 5, `only ${checked} files checked`);
      await assertTmpEmpty(jail);
    });

    await t.step("restore --files from the sample (its worker is in the kit)", async () => {
      const out = await runInJail(jail, backups, [
        "restore",
        "/backups/sample-v2",
        "--passphrase-file",
        "/backups/sample-v2.pass",
        "--vm",
        "work",
        "--files",
        "/home/user",
        "-o",
        "/out/files",
      ]);
      assert.equal(out.code, 0, out.stderr);
      const inside = sample.vms.work.imageFiles["private.img"] as Record<string, string>;
      const readme = await Deno.readFile(`${jail}/out/files/work/user/README.txt`);
      assert.equal(sha256(readme), inside["home/user/README.txt"]);
      await assertTmpEmpty(jail);
    });

    await t.step("converts the sample format-2 backup (its workers are in the kit)", async () => {
      const pass = ["--passphrase-file", "/backups/sample-v2.pass"];
      const converted = await runInJail(jail, backups, [
        "convert",
        "/backups/sample-v2",
        ...pass,
        "--compress",
        "--output",
        "/out/sample.v3",
      ]);
      assert.equal(converted.code, 0, converted.stderr);
      assert.match(converted.stderr, /format 3, encrypted, compressed, .* verified/);
      const out = await runInJail(jail, backups, [
        "restore",
        "/out/sample.v3",
        ...pass,
        "-o",
        "/out/v2-converted",
      ]);
      assert.equal(out.code, 0, out.stderr);
      const before = await listFiles(`${jail}/out/v2`);
      assert.deepEqual(await listFiles(`${jail}/out/v2-converted`), before);
      for (const path of before) {
        const [a, b] = [`${jail}/out/v2${path}`, `${jail}/out/v2-converted${path}`];
        if ((await Deno.lstat(a)).isSymlink) {
          assert.equal(await Deno.readLink(b), await Deno.readLink(a), path);
        } else {
          assert.equal(sha256(await Deno.readFile(b)), sha256(await Deno.readFile(a)), path);
        }
      }
      await assertTmpEmpty(jail);
    });

    await t.step("restores a format-3 xz backup bit-exact", async () => {
      const out = await runInJail(jail, backups, [
        "restore",
        "/backups/v3-xz",
        "--passphrase-file",
        "/backups/v3-xz.pass",
        "-o",
        "/out/v3",
      ]);
      assert.equal(out.code, 0, out.stderr);
      await assertRestored(`${jail}/out/v3`, world, { deep: true });
      await assertTmpEmpty(jail);
    });

    await t.step("restores a format-4 backup bit-exact", async () => {
      const out = await runInJail(jail, backups, [
        "restore",
        "/backups/v4",
        "--passphrase-file",
        "/backups/v4.pass",
        "-o",
        "/out/v4",
      ]);
      assert.equal(out.code, 0, out.stderr);
      await assertRestored(`${jail}/out/v4`, world, { format4: true });
      await assertTmpEmpty(jail);
    });

    await t.step("exit codes pass through: a wrong passphrase is 3", async () => {
      await Deno.writeTextFile(`${backups}/wrong.pass`, "not it\n");
      const out = await runInJail(jail, backups, [
        "verify",
        "/backups/v4",
        "--passphrase-file",
        "/backups/wrong.pass",
      ]);
      assert.equal(out.code, 3, out.stderr);
      await assertTmpEmpty(jail);
    });

    await t.step("a noexec /tmp: a clear message naming TMPDIR, and TMPDIR works", async () => {
      const setup = `mount -t tmpfs -o noexec,mode=1777 tmpfs "$2/tmp"`;
      const out = await runInJail(jail, backups, ["--version"], { setup });
      assert.equal(out.code, 1);
      assert.match(
        out.stderr,
        /^qubes-recover: cannot run programs in "\/tmp" \(mounted noexec\?\): set TMPDIR/,
      );
      assert.equal(out.stderr.split("\n").length, 2, out.stderr);
      const other = await runInJail(jail, backups, ["--version"], {
        setup: `${setup} && mkdir -p "$2/out/tmp" && chown ${NOBODY} "$2/out/tmp"`,
        env: { TMPDIR: "/out/tmp" },
      });
      assert.equal(other.code, 0, other.stderr);
      assert.deepEqual(await listFiles(`${jail}/out/tmp`), []);
    });

    await t.step("a read-only TMPDIR: a clear message naming TMPDIR", async () => {
      const out = await runInJail(jail, backups, ["--version"], { env: { TMPDIR: "/backups" } });
      assert.equal(out.code, 1);
      assert.match(
        out.stderr,
        /^qubes-recover: cannot create a temporary folder in "\/backups" .*set TMPDIR/,
      );
    });

    await t.step("SIGTERM: the program is stopped, the folder removed, exit 143", async () => {
      // restore from standard input that never ends: the program waits in a read
      const child = spawnInJail(
        jail,
        backups,
        ["info", "-", "--passphrase-file", "/backups/v4.pass"],
        { stdin: "piped" },
      );
      const deadline = Date.now() + 60_000;
      for (;;) {
        const dirs = (await listFiles(`${jail}/tmp`)).filter((f) => f.endsWith("/import_map.json"));
        if (dirs.length > 0) break;
        assert.ok(Date.now() < deadline, "the kit did not unpack within a minute");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      child.kill("SIGTERM");
      const out = await child.output();
      await child.stdin.close().catch(() => {});
      assert.equal(out.code, 143, new TextDecoder().decode(out.stderr));
      await assertTmpEmpty(jail);
    });
  } finally {
    await command("sh", ["-c", `chmod -R u+w "$1" 2>/dev/null; rm -rf "$1"`, "sh", work]);
  }
});

Deno.test("deno task compile fails only at the runtime download (or builds a working binary)", async () => {
  // In a copy of the sources: compile must not meet a dist/ that deno task release wrote.
  const work = await Deno.makeTempDir({ prefix: "qr-compile-" });
  try {
    for (const file of ["deno.json", "deno.lock", "main.ts"]) {
      await Deno.copyFile(`${root}${file}`, `${work}/${file}`);
    }
    await must("cp", ["-R", `${root}lib`, `${work}/lib`]);
    const out = await command(Deno.execPath(), ["task", "compile"], {
      cwd: work,
      env: { NO_COLOR: "1" },
    });
    if (out.code === 0) {
      // Where Deno's download works: the true deno compile binary restores the sample.
      const sample = JSON.parse(await Deno.readTextFile(`${root}tests/fixtures/sample-v2.json`));
      const run = await command(`${work}/dist/${KIT}`, [
        "restore",
        `${root}tests/fixtures/${sample.file}`,
        "-o",
        `${work}/out`,
      ], { env: { QUBES_BACKUP_PASSPHRASE: sample.passphrase }, clearEnv: true });
      assert.equal(run.code, 0, run.stderr);
      return;
    }
    // Here: the type check and the program build pass; the runtime download is what fails.
    assert.match(out.stderr, /^Check main\.ts$/m, out.stderr);
    assert.match(
      out.stderr,
      /^Download https:\/\/dl\.deno\.land\/release\/v2\.9\.6\/denort-x86_64-unknown-linux-gnu\.zip$/m,
    );
    assert.match(
      out.stderr,
      /error sending request for url \(https:\/\/dl\.deno\.land\/release\/v2\.9\.6\/denort-/,
    );
    assert.match(out.stderr, /^ {4}0: Setting up base binary\.$/m);
    assert.doesNotMatch(out.stderr, /TS\d{4}|Module not found|^error: (?!Writing deno compile)/m);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
