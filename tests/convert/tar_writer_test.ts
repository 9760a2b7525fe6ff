/**
 * The format-1 inner tar writer against GNU tar: base-256 numbers, an old-GNU sparse member
 * with extension blocks, long names; GNU tar lists and extracts what it writes. (A file over
 * 8 GiB is not built here: scanning its holes takes minutes on the CI machine.)
 */

import assert from "node:assert/strict";
import { putNumber } from "../../lib/convert/tar_writer.ts";
import { treeTar } from "../../lib/convert/tree_tar.ts";
import { silentReporter } from "../../lib/reporter.ts";
import { seededBytes, writeSparseFile } from "../support/mod.ts";

Deno.test("numbers of 8 GiB and more are base-256, as GNU tar writes them", () => {
  const field = new Uint8Array(12);
  putNumber(field, 0, 12, 20 * 1024 ** 3);
  assert.deepEqual([...field], [0x80, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]);
  putNumber(field, 0, 12, 0o7777);
  assert.equal(new TextDecoder().decode(field), "00000007777\0");
});

Deno.test("GNU tar extracts a sparse file with 30 data runs (extension blocks) and a long name", async () => {
  const root = await Deno.makeTempDir({ prefix: "qr-convert-tarw-" });
  try {
    const src = `${root}/src/vm`;
    const name = `${"x".repeat(120)}.img`;
    await Deno.mkdir(src, { recursive: true });
    const size = 64 * 1024 ** 2 + 12345;
    const runs: Array<[number, Uint8Array]> = [];
    for (let i = 0; i < 30; i++) runs.push([i * 2 * 1024 ** 2 + 4096, seededBytes(5000, i + 7)]);
    await writeSparseFile(`${src}/${name}`, size, runs);
    await Deno.symlink(name, `${src}/link`);
    const tarFile = `${root}/item.tar`;
    const file = await Deno.open(tarFile, { write: true, create: true });
    await treeTar(src, "appvms/vm", { reporter: silentReporter }).pipeTo(file.writable);
    assert.equal((await Deno.stat(tarFile)).size % 10240, 0);
    const list = await new Deno.Command("tar", { args: ["-tvf", tarFile], stdout: "piped" })
      .output();
    assert.ok(list.success);
    const text = new TextDecoder().decode(list.stdout);
    assert.match(text, new RegExp(` ${size} .* appvms/vm/${name}\n`));
    assert.match(text, /appvms\/vm\/link -> x+\.img/);
    const out = `${root}/out`;
    await Deno.mkdir(out);
    const x = await new Deno.Command("tar", { args: ["-xf", tarFile, "-C", out] }).output();
    assert.ok(x.success);
    const restored = `${out}/appvms/vm/${name}`;
    const info = await Deno.stat(restored);
    assert.equal(info.size, size);
    assert.ok((info.blocks ?? 0) * 512 < 8 * 1024 ** 2, "extracted sparse");
    using f = await Deno.open(restored);
    for (const [offset, bytes] of runs) {
      const back = new Uint8Array(bytes.length + 8);
      await f.seek(offset - 4, Deno.SeekMode.Start);
      let got = 0;
      while (got < back.length) got += (await f.read(back.subarray(got)))!;
      assert.deepEqual(back.subarray(4, 4 + bytes.length), bytes);
      assert.deepEqual([...back.subarray(0, 4)], [0, 0, 0, 0]);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
