/**
 * The project's promises about itself: the demo works, and the binary gets exactly the
 * permissions that `deno task recover` (and so the end-to-end tests) run with.
 */

import assert from "node:assert/strict";
import { filesNextToBundle, permissionFlags, runFlags } from "../release/build.ts";

const root = new URL("../", import.meta.url).pathname;
const tasks: Record<string, string> = JSON.parse(await Deno.readTextFile(`${root}deno.json`)).tasks;

/**
 * This process's environment without INIT_CWD: run under `deno task test`, it would otherwise
 * pass on the folder that task was started from, and `deno task` keeps an INIT_CWD it is given.
 */
function outsideTask(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  return env;
}

/** Permissions and V8 flags: what a compiled binary bakes in. */
function permissionsOf(command: string): string[] {
  return command.split(/\s+/).filter((word) => /^--(allow-|v8-flags=)/.test(word));
}

Deno.test("deno.json: compile bakes in exactly the permissions and V8 flags recover runs with", () => {
  const recover = permissionsOf(tasks.recover!);
  assert.deepEqual(recover, [
    // Not read and write alone: Deno then refuses block devices (a VM's volume, a partition)
    // and resolves every path's components on each open (docs/security.md, "Deno's permissions").
    "--allow-all",
    // A small young generation: buffers are freed sooner (docs/performance.md).
    "--v8-flags=--max-semi-space-size=1",
  ]);
  const builds = tasks.compile!.split("&&");
  assert.equal(builds.length, 2);
  for (const build of builds) assert.deepEqual(permissionsOf(build), recover);
  // Workers are not found by deno compile on its own.
  for (const build of builds) assert.match(build, /--include lib\/verify\/hmac_worker\.ts /);
  assert.match(tasks.compile!, /x86_64-unknown-linux-gnu/);
  assert.match(tasks.compile!, /aarch64-unknown-linux-gnu/);
  assert.deepEqual(permissionsOf(tasks.demo!), recover);
});

Deno.test("deno.json: the release runs deno with exactly the permissions and V8 flags of recover", async () => {
  const recover = permissionsOf(tasks.recover!);
  assert.deepEqual(permissionFlags(tasks.recover!), recover);
  // What release/header.sh gets for @RUNFLAGS@: no network, no prompts, no config, and then
  // exactly recover's permissions and V8 flags.
  const flags = runFlags(tasks.recover!);
  assert.deepEqual(flags.filter((flag) => /^--(allow-|v8-flags=)/.test(flag)), recover);
  assert.deepEqual(flags.filter((flag) => !/^--(allow-|v8-flags=)/.test(flag)), [
    "--quiet",
    "--no-config",
    "--no-lock",
    "--no-remote",
    "--no-npm",
    "--no-prompt",
  ]);
  const header = await Deno.readTextFile(`${root}release/header.sh`);
  const runs = header.split("\n").filter((line) => line.includes('"$dir/deno" run '));
  assert.equal(runs.length, 1);
  assert.match(
    runs[0]!,
    /"\$dir\/deno" run @RUNFLAGS@ --import-map="\$dir\/import_map\.json" "\$dir\/main\.js" "\$@"/,
  );
  assert.equal(tasks.release, "deno run --allow-all release/build.ts");
});

Deno.test("deno task recover resolves paths against the folder it was run from, quietly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qr-init-cwd-" });
  try {
    const sample = JSON.parse(await Deno.readTextFile(`${root}tests/fixtures/sample-v2.json`));
    await Deno.copyFile(`${root}tests/fixtures/${sample.file}`, `${dir}/backup`);
    await Deno.writeTextFile(`${dir}/pass`, `${sample.passphrase}\n`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "--quiet",
        "--cwd",
        root,
        "recover",
        "restore",
        "backup",
        "--passphrase-file",
        "pass",
        "--output",
        "out",
      ],
      cwd: dir,
      env: { ...outsideTask(), NO_COLOR: "1" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stderr, /^Key derivation: .*\nRestored \d+ files .* into "out" in [\d.]+ s\n$/);
    assert.ok((await Deno.stat(`${dir}/out/qubes.xml`)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task demo restores the sample backup and checks every file", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "demo"],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
  assert.match(stdout, /Every restored file matches the original bit for bit\./);
  assert.match(stdout, /Buy milk\./);
  assert.doesNotMatch(stdout, /BAD/);
  // The count matches the list (files and links).
  const listed = stdout.split("\n").filter((line) => /^\s+ok /.test(line)).length;
  const counted = /Restored (\d+) files and (\d+) links?: qubes\.xml .* and the (\d+) below/
    .exec(stdout);
  assert.ok(counted, stdout);
  assert.equal(Number(counted[1]) + Number(counted[2]) - 1, listed, stdout);
  assert.equal(Number(counted[3]), listed, stdout);
});

Deno.test("a first run of deno task -q recover (empty Deno cache) prints nothing but the answer", async () => {
  const cache = await Deno.makeTempDir({ prefix: "qr-first-run-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "--cwd", root, "recover", "--version"],
      cwd: cache,
      env: { ...outsideTask(), DENO_DIR: cache },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    // no "Ignored build scripts" box, no "Download" lines, no task echo
    assert.equal(new TextDecoder().decode(out.stderr), "");
    assert.equal(out.code, 0);
    assert.match(new TextDecoder().decode(out.stdout), /^qubes-recover[^\n]*\nDeno 2\.9\.6 /);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("README's test command is what .ci/run calls, and its package list is .ci/test's", async () => {
  const readme = await Deno.readTextFile(`${root}README.md`);
  const ciRun = await Deno.readTextFile(`${root}.ci/run`);
  const ciTest = await Deno.readTextFile(`${root}.ci/test`);
  assert.match(readme, /\n {2}```\n {2}bash \.ci\/test\n {2}```\n/);
  assert.match(ciRun, /^bash \.ci\/test 2>&1 \| tee "\$log"$/m);
  const tools = ciTest.match(/^TOOLS=\(\n([^)]*)\)/m)![1]!.split(/\s+/).filter(Boolean);
  const packages = new Set(tools.map((entry) => entry.split(":")[1]!));
  const listed = readme.match(/these Debian packages:\n\n {2}```\n([^`]*) {2}```/)![1]!;
  assert.deepEqual(new Set(listed.split(/\s+/).filter(Boolean)), packages);
  for (const needed of ["pigz", "pbzip2", "zstd", "scrypt", "e2tools", "fdisk", "tmux"]) {
    assert.ok(packages.has(needed), needed);
  }
});

Deno.test("the release build stops on a bundle that loads a file the kit does not ship", () => {
  const known = [
    'this.#worker = new Worker(new URL("./hmac_worker.ts", import.meta.url), {',
    'const wasm = await Deno.readFile(new URL(import.meta.resolve("node-liblzma/wasm/liblzma.wasm")));',
    "if (import.meta.main) {",
  ];
  assert.deepEqual(filesNextToBundle(known.join("\n")), []);
  const other = 'const bytes = await Deno.readFile(new URL("./ext2fs.wasm", import.meta.url));';
  assert.deepEqual(filesNextToBundle([...known, other].join("\n")), [other]);
  assert.deepEqual(filesNextToBundle('new Worker("./w.js")'), ['new Worker("./w.js")']);
});

/** Every TypeScript file of the program: main.ts and lib/. */
async function programSources(): Promise<Array<{ path: string; text: string }>> {
  const out = [{ path: "main.ts", text: await Deno.readTextFile(`${root}main.ts`) }];
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(`${root}${dir}`)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (path.endsWith(".ts")) {
        out.push({ path, text: await Deno.readTextFile(`${root}${path}`) });
      }
    }
  };
  await walk("lib");
  return out;
}

Deno.test("the program never uses the network, other programs or native code (it runs with --allow-all)", async () => {
  // What --allow-all lets through and the program has no use for; the release adds
  // --no-remote and --no-npm, so no code is fetched either (docs/security.md).
  const forbidden =
    /\bDeno\.(Command|run|connect|connectTls|listen|listenTls|serve|dlopen|resolveDns|startTls)\b|\bfetch\(|\bWebSocket\b|\bEventSource\b|\bXMLHttpRequest\b|"node:(child_process|net|http|https|http2|dgram|tls|dns|worker_threads|cluster)"/;
  const found: string[] = [];
  const envRead = new Set<string>();
  for (const { path, text } of await programSources()) {
    text.split("\n").forEach((line, i) => {
      if (forbidden.test(line)) found.push(`${path}:${i + 1}: ${line.trim()}`);
    });
    for (const m of text.matchAll(/Deno\.env\.(\w+)\(([^)]*)\)/g)) envRead.add(`${m[1]}(${m[2]})`);
  }
  assert.deepEqual(found, []);
  // The environment: the passphrase variable and the tests' piece checks, by name, read only.
  assert.deepEqual([...envRead].sort(), ["get(PASSPHRASE_ENV)", "get(variable)"]);
});
