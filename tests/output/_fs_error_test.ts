import assert from "node:assert/strict";
import { OutputError } from "../../lib/errors.ts";
import { toOutputError } from "../../lib/fs_errors.ts";

Deno.test("toOutputError() names the path and the reason for errno codes", async (t) => {
  const cases: [string, string][] = [
    ["ENOSPC", "no space left on device"],
    ["EDQUOT", "disk quota exceeded"],
    ["EACCES", "permission denied"],
    ["EROFS", "read-only file system"],
    ["EIO", "input/output error"],
  ];
  for (const [code, reason] of cases) {
    await t.step(code, () => {
      const cause = Object.assign(new Error("os error"), { code });
      const error = toOutputError(cause, "vm5/private.img");
      assert.ok(error instanceof OutputError);
      assert.equal(error.message, `Cannot write "vm5/private.img": ${reason}`);
      assert.equal(error.cause, cause);
    });
  }
});

Deno.test("toOutputError() falls back to the message for unknown codes", () => {
  const error = toOutputError(Object.assign(new Error("Strange thing"), { code: "EWHAT" }), "f");
  assert.ok(error instanceof OutputError);
  assert.equal(error.message, 'Cannot write "f": Strange thing');
});

Deno.test("toOutputError() leaves errors without a code alone", () => {
  const bug = new TypeError("not an OS error");
  assert.equal(toOutputError(bug, "f"), bug);
});

Deno.test("toOutputError() maps a real EACCES from Deno", async () => {
  // Root ignores permission bits: there this test has nothing to check.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.chmod(dir, 0o500);
    const cause = await Deno.writeTextFile(`${dir}/f`, "x").then(() => undefined, (e) => e);
    if (cause === undefined) return; // running as root: nothing to check
    const error = toOutputError(cause, "f");
    assert.ok(error instanceof OutputError);
    assert.equal(error.message, 'Cannot write "f": permission denied');
  } finally {
    await Deno.chmod(dir, 0o700);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("toOutputError() reads the errno from '(os error N)' when the error has no code", async () => {
  const { toOutputError } = await import("../../lib/fs_errors.ts");
  const { OutputError } = await import("../../lib/errors.ts");
  const mapped = toOutputError(new Error("File too large (os error 27)"), "work/huge.img");
  if (!(mapped instanceof OutputError)) throw new Error(`not mapped: ${mapped}`);
  if (mapped.message !== 'Cannot write "work/huge.img": file too large for the file system') {
    throw new Error(mapped.message);
  }
});
