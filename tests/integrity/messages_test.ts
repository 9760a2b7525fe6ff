/**
 * Issue 9, point 8: every error is one line; text from the backup is escaped.
 */

import assert from "node:assert/strict";
import { DamagedError, oneLine } from "../../lib/errors.ts";
import { runCli, sh } from "../e2e/_cli.ts";
import { assertOneLineError, repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, withSmallWorld } from "./_small.ts";

Deno.test("oneLine() escapes control characters, separators and bidi overrides", () => {
  assert.equal(
    oneLine("a\nb\r\tc\x1b[31m\u2028\u202e\x7f"),
    "a\\nb\\r\\tc\\x1b[31m\\u2028\\u202e\\x7f",
  );
  assert.equal(oneLine('plain "text" é ü €'), 'plain "text" é ü €');
  assert.equal(new DamagedError("x\ny").message, "x\\ny");
});

Deno.test("a .hmac file with an embedded newline gives a one-line error", async () => {
  await withSmallWorld("qr-messages-", async (root, world) => {
    const built = await buildSmall(world, { format: 3, chunkBytes: 65536 }, `${root}/b`);
    const dir = `${root}/entries`;
    const names = await untar(built.path, dir);
    const chunk = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
      .chunks[1]!;
    await Deno.writeTextFile(`${dir}/${chunk}.hmac`, "(stdin)= not hex\nsecond line\x1b[2J\n");
    await repack(dir, names, `${root}/damaged.backup`);
    for (const args of [["verify", `${root}/damaged.backup`], ["verify", dir]]) {
      const result = await runCli(args, { passphrase: PASS });
      const line = assertOneLineError(result, 4);
      assert.ok(line.includes(chunk), line);
      assert.ok(!result.stderr.includes("\x1b"), "no escape character reaches the terminal");
    }
    await sh("true");
  });
});
