/**
 * Ctrl-C in the middle of a restore: exit code 130, and no unfinished file is left behind,
 * neither under its final name nor as a temporary file.
 */

import assert from "node:assert/strict";
import { buildBackup } from "../support/backup_builder.ts";
import { recoverFlags, sh } from "./_cli.ts";
import { withWorld } from "./_world.ts";

const PASS = "interrupt me";

async function filesBelow(dir: string): Promise<string[]> {
  return (await sh(`cd '${dir}' && find . -type f | sort`)).trim().split("\n").filter(Boolean);
}

/** The signals that stop a restore, and the exit code each gives. */
const SIGNALS: Array<[Deno.Signal, number]> = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]];

Deno.test("Ctrl-C, SIGTERM or SIGHUP during a restore: exit 130/143/129, the unfinished file removed", async (t) => {
  await withWorld("qr-e2e-int-", async (root, world) => {
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: world.vms,
      volumeKiB: 64,
    }, root);
    // Stop the input in the middle of private.img's third chunk.
    const listing = await sh(`tar -tiR -f '${built.path}'`);
    const block = Number(/block (\d+): vm5\/private\.img\.002\n/.exec(listing)?.[1]);
    assert.ok(block > 0, listing);
    const bytes = await Deno.readFile(built.path);
    const cut = block * 512 + 5000;

    for (const [signal, code] of SIGNALS) {
      await t.step(signal, () => interruptWith(root, bytes, cut, signal, code));
    }
  });
});

async function interruptWith(
  root: string,
  bytes: Uint8Array,
  cut: number,
  signal: Deno.Signal,
  code: number,
): Promise<void> {
  {
    const out = `${root}/out-${signal}`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...await recoverFlags(), "main.ts", "restore", "-", "-o", out],
      cwd: new URL("../../", import.meta.url).pathname,
      env: { QUBES_BACKUP_PASSPHRASE: PASS, NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(bytes.subarray(0, cut));
    // Wait until the restore has started writing private.img.
    const deadline = Date.now() + 20_000;
    while (!(await filesBelow(out).catch(() => [])).some((f) => f.includes("partial"))) {
      assert.ok(Date.now() < deadline, "the restore never started writing");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill(signal);
    const result = await child.output();
    await writer.close().catch(() => {});
    assert.equal(result.code, code, new TextDecoder().decode(result.stderr));
    const left = await filesBelow(out);
    assert.ok(!left.some((f) => f.includes("partial")), left.join());
    assert.ok(!left.includes("./work/private.img"), left.join());
  }
}
