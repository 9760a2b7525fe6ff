import assert from "node:assert/strict";
import { DamagedError } from "../../lib/errors.ts";
import { safeRelativePath } from "../../lib/output/safe_path.ts";

Deno.test('safeRelativePath() drops "." and empty components', () => {
  assert.deepEqual(safeRelativePath("vm3/./root.img"), ["vm3", "root.img"]);
  assert.deepEqual(safeRelativePath("./dom0-home//alice/./.bashrc"), [
    "dom0-home",
    "alice",
    ".bashrc",
  ]);
  assert.deepEqual(safeRelativePath("vm5/apps/"), ["vm5", "apps"]);
  assert.deepEqual(safeRelativePath("work/private.img"), ["work", "private.img"]);
});

Deno.test("safeRelativePath() keeps names that merely contain dots", () => {
  assert.deepEqual(safeRelativePath("a/..b/c../.../.x"), ["a", "..b", "c..", "...", ".x"]);
});

Deno.test("safeRelativePath() keeps unicode names", () => {
  assert.deepEqual(safeRelativePath("home/Документы/文件 🎉"), ["home", "Документы", "文件 🎉"]);
});

Deno.test("safeRelativePath() rejects unsafe paths", async (t) => {
  for (
    const raw of ["../x", "a/../b", "a/..", "/abs", "/etc/passwd", "a\0b", "", ".", "./", "//"]
  ) {
    await t.step(JSON.stringify(raw), () => {
      assert.throws(
        () => safeRelativePath(raw),
        (error: unknown) =>
          error instanceof DamagedError &&
          error.message === `Cannot restore "${raw.replaceAll("\0", "\\0")}": unsafe path`,
      );
    });
  }
});
