/**
 * Run by hand with narrower permissions than the release's (`--allow-all`, docs/security.md),
 * what Deno refuses is a one-line usage error naming the path, not an internal error.
 */

import assert from "node:assert/strict";

const main = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("a path Deno's permissions refuse: exit 2, one line naming it and --allow-all", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      main,
      "files",
      "ls",
      "/proc/self/status",
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, stderr);
  assert.match(
    stderr,
    /^qubes-recover: Deno's permissions: [^\n]*"\/proc\/self\/status"[^\n]*--allow-all[^\n]*\n$/,
  );
});
