/**
 * Ctrl-C in the middle of a conversion: exit code 130 and no file left, neither the output nor
 * its temporary file. The source is a FIFO fed half of the backup, so the conversion is caught
 * while it writes.
 */

import assert from "node:assert/strict";
import { buildBackup } from "../support/backup_builder.ts";
import { recoverFlags, sh } from "../e2e/_cli.ts";
import { withWorld } from "../e2e/_world.ts";

const PASS = "interrupt me";

Deno.test("Ctrl-C during convert exits 130 and removes the unfinished file", async () => {
  await withWorld("qr-convert-int-", async (root, world) => {
    const built = await buildBackup({
      format: 2,
      passphrase: PASS,
      encrypted: true,
      vms: world.vms,
      volumeKiB: 64,
    }, root);
    const fifo = `${root}/source.fifo`;
    await sh(`mkfifo '${fifo}'`);
    const outDir = `${root}/out`;
    await Deno.mkdir(outDir);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...await recoverFlags(),
        "main.ts",
        "convert",
        fifo,
        "-o",
        `${outDir}/new.v3`,
      ],
      cwd: new URL("../../", import.meta.url).pathname,
      env: { QUBES_BACKUP_PASSPHRASE: PASS, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const bytes = await Deno.readFile(built.path);
    const feeder = await Deno.open(fifo, { write: true });
    await feeder.write(bytes.subarray(0, Math.floor(bytes.length / 2))).catch(() => 0);
    const deadline = Date.now() + 30_000;
    const listing = async () => (await sh(`ls -A '${outDir}'`)).trim();
    while (!(await listing()).includes("partial")) {
      assert.ok(Date.now() < deadline, "the conversion never started writing");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill("SIGINT");
    const result = await child.output();
    feeder.close();
    assert.equal(result.code, 130, new TextDecoder().decode(result.stderr));
    assert.equal(await listing(), "", "no output and no temporary file");
  });
});
