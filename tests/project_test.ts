/**
 * The project's promises about itself: the demo works, and the binary gets exactly the
 * permissions that `deno task recover` (and so the end-to-end tests) run with.
 */

import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;
const tasks: Record<string, string> = JSON.parse(await Deno.readTextFile(`${root}deno.json`)).tasks;

/** Permissions and V8 flags: what a compiled binary bakes in. */
function permissionsOf(command: string): string[] {
  return command.split(/\s+/).filter((word) => /^--(allow-|v8-flags=)/.test(word));
}

Deno.test("deno.json: compile bakes in exactly the permissions and V8 flags recover runs with", () => {
  const recover = permissionsOf(tasks.recover!);
  assert.deepEqual(recover, [
    "--allow-read",
    "--allow-write",
    "--allow-env=QUBES_BACKUP_PASSPHRASE,NO_COLOR",
    // Only the free space of the output folder (restore --dry-run).
    "--allow-sys=statfs",
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
