/**
 * Issue 9, points 1 and 6 for format 1 (a plain folder): a missing image is exit 5; a FIFO,
 * a device or a link to one where a file should be is an error naming it, never a hang or a
 * silent skip.
 */

import assert from "node:assert/strict";
import { runCli, sh } from "../e2e/_cli.ts";
import { assertOneLineError } from "../e2e/_surgery.ts";
import { buildSmall, withSmallWorld } from "./_small.ts";

Deno.test("format 1 on hostile media: only regular files are read, errors name the file", async (t) => {
  await withSmallWorld("qr-format1-", async (root, world) => {
    const built = await buildSmall(world, { format: 1 }, `${root}/b`);
    let n = 0;
    const copy = async () => {
      const dir = `${root}/case${++n}`;
      await sh(`cp -a '${built.path}' '${dir}'`);
      return dir;
    };
    const run = (args: string[]) => runCli(args, {});

    await t.step("the intact folder verifies", async () => {
      assert.equal((await run(["verify", built.path])).code, 0);
    });

    await t.step("private.img missing from an AppVM's folder: exit 5", async () => {
      const dir = await copy();
      await Deno.remove(`${dir}/appvms/work/private.img`);
      for (const command of [["verify", dir], ["restore", dir, "-o", `${root}/out${n}`]]) {
        const line = assertOneLineError(await run(command), 5);
        assert.match(line, /"appvms\/work\/private\.img" of VM "work"/);
      }
    });

    await t.step("private.img is a FIFO: an error naming it", async () => {
      const dir = await copy();
      await Deno.remove(`${dir}/appvms/work/private.img`);
      await sh(`mkfifo '${dir}/appvms/work/private.img'`);
      const line = assertOneLineError(await run(["verify", dir]), 4);
      assert.match(line, /appvms\/work\/private\.img": it is a FIFO/);
    });

    await t.step("qubes.xml is a FIFO: an error, no hang", async () => {
      const dir = await copy();
      await Deno.remove(`${dir}/qubes.xml`);
      await sh(`mkfifo '${dir}/qubes.xml'`);
      const line = assertOneLineError(await run(["verify", dir]), 4);
      assert.match(line, /qubes\.xml": it is a FIFO/);
    });

    await t.step("qubes.xml is a symlink to /dev/zero: an error, no endless read", async () => {
      const dir = await copy();
      await Deno.remove(`${dir}/qubes.xml`);
      await Deno.symlink("/dev/zero", `${dir}/qubes.xml`);
      const line = assertOneLineError(await run(["info", dir]), 4);
      assert.match(line, /qubes\.xml": it is a symbolic link/);
    });

    await t.step(
      "private.img is a symlink to /dev/zero: restored as the link, not read",
      async () => {
        const dir = await copy();
        await Deno.remove(`${dir}/appvms/work/private.img`);
        await Deno.symlink("/dev/zero", `${dir}/appvms/work/private.img`);
        // A link where the image should be: the image is missing.
        const line = assertOneLineError(await run(["verify", dir]), 5);
        assert.match(line, /private\.img/);
      },
    );
  });
});
