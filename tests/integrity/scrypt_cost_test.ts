/**
 * Issue 9, point 4: a format-4 file's scrypt parameters are covered only by an unkeyed
 * checksum; raised parameters are refused before any derivation, with a message saying what
 * the file asks for, unless the user allows more with --max-scrypt-memory.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { parseMemorySize, ScryptPolicy } from "../../lib/format/scrypt_cost.ts";
import { UnsupportedError } from "../../lib/errors.ts";
import { runCli, sh } from "../e2e/_cli.ts";
import { assertOneLineError, repack, untar } from "../e2e/_surgery.ts";
import { buildSmall, PASS, withSmallWorld } from "./_small.ts";

/** Rewrites an scrypt file's logN and p and its (unkeyed) header checksum, as anyone can. */
async function raise(path: string, logN: number, p: number): Promise<void> {
  const data = await Deno.readFile(path);
  data[7] = logN;
  new DataView(data.buffer).setUint32(12, p);
  data.set(createHash("sha256").update(data.subarray(0, 48)).digest().subarray(0, 16), 48);
  await Deno.writeFile(path, data);
}

Deno.test("raised scrypt parameters are refused before the key derivation", async (t) => {
  await withSmallWorld("qr-scrypt-", async (root, world) => {
    const built = await buildSmall(world, {
      format: 4,
      compressed: true,
      chunkBytes: 65536,
      scryptLogN: 10,
    }, `${root}/b`);
    const entries = `${root}/entries`;
    const names = await untar(built.path, entries);
    let n = 0;
    const variant = async (file: string, logN: number, p: number) => {
      const dir = `${root}/case${++n}`;
      await sh(`cp -a '${entries}' '${dir}'`);
      await raise(`${dir}/${file}`, logN, p);
      await repack(dir, names, `${dir}.backup`);
      return `${dir}.backup`;
    };

    await t.step("backup-header.hmac asking for 4 GiB: exit 6, says what it asks", async () => {
      const file = await variant("backup-header.hmac", 22, 1);
      const line = assertOneLineError(await runCli(["verify", file], { passphrase: PASS }), 6);
      assert.match(line, /"backup-header\.hmac": it asks for scrypt logN=22, r=8, p=1 \(4 GiB/);
      assert.match(line, /more than a Qubes backup may use/);
    });

    await t.step("backup-header.hmac asking for p=17 at 1 GiB: exit 6", async () => {
      const file = await variant("backup-header.hmac", 20, 17);
      const line = assertOneLineError(await runCli(["verify", file], { passphrase: PASS }), 6);
      assert.match(line, /p=17 \(1 GiB of memory, 17 GiB of work\)/);
    });

    const chunk = built.items.find((i) => i.owner === "work" && i.base === "private.img")!
      .chunks[1]!;
    // 1 GiB of memory and 17 GiB of work: over the 16 GiB of work a Qubes backup may use.
    const raisedChunk = await variant(chunk, 20, 17);
    await t.step("a chunk asking for more than any file of a Qubes backup: exit 6", async () => {
      const line = assertOneLineError(
        await runCli(["verify", raisedChunk], { passphrase: PASS }),
        6,
      );
      assert.ok(line.includes(`"${chunk}"`), line);
      assert.match(line, /logN=20, r=8, p=17.*more than a file of this backup may use/);
      assert.match(line, /--max-scrypt-memory/);
    });

    await t.step("--max-scrypt-memory raises the bound the message states", async () => {
      // 4 GiB of memory: still over 3 GiB, so refused before any derivation, but the bound
      // it is measured against is the user's.
      const file = await variant(chunk, 22, 1);
      const result = await runCli(["verify", file, "--max-scrypt-memory", "3G"], {
        passphrase: PASS,
      });
      assert.match(assertOneLineError(result, 6), /4 GiB of memory.*\(3 GiB, 16 GiB\)/);
    });

    await t.step("a chunk raised within the bounds is derived, then fails: exit 4", async () => {
      const file = await variant(chunk, 19, 2);
      const result = await runCli(["verify", file], { passphrase: PASS });
      assert.ok(assertOneLineError(result, 4).includes(`"${chunk}"`));
    });

    await t.step("the genuine backup verifies", async () => {
      assert.equal((await runCli(["verify", built.path], { passphrase: PASS })).code, 0);
    });
  });
});

Deno.test("ScryptPolicy: header bound, chunk bound widened by the header, user override", () => {
  const params = (logN: number, p = 1) => ({ logN, r: 8, p, salt: new Uint8Array(32) });
  const policy = new ScryptPolicy();
  policy.checkHeader("backup-header.hmac", params(21));
  assert.throws(() => policy.checkHeader("backup-header.hmac", params(22)), UnsupportedError);
  policy.headerAuthenticated(params(19, 4));
  // A later file may ask for more memory than the header (scrypt enc picks afresh per file).
  policy.checkChunk("c.000.enc", params(20, 4));
  policy.checkChunk("c.000.enc", params(21, 2));
  assert.throws(() => policy.checkChunk("c.000.enc", params(22)), UnsupportedError);
  // A Qubes CPU twice as fast as the 2-core test machine: logN 19, p 9 (4.5 GiB of work).
  policy.checkChunk("c.000.enc", params(19, 9));
  // Four times the header's 2 GiB of work (8 GiB) is less than the 16 GiB any file may use.
  policy.checkChunk("c.000.enc", params(20, 16));
  assert.throws(() => policy.checkChunk("c.000.enc", params(20, 17)), UnsupportedError);
  // The user's bound: memory to it, work to twice it.
  new ScryptPolicy(9 * 1024 ** 3).checkChunk("c.000.enc", params(20, 18));
  // A header that used more widens the bound of its files.
  const big = new ScryptPolicy(8 * 1024 ** 3);
  big.checkHeader("backup-header.hmac", params(22));
  big.headerAuthenticated(params(22));
  const heavy = new ScryptPolicy();
  heavy.headerAuthenticated(params(22));
  heavy.checkChunk("c.000.enc", params(22, 4));
  assert.throws(() => heavy.checkChunk("c.000.enc", params(23)), UnsupportedError);
  const generous = new ScryptPolicy(8 * 1024 ** 3);
  generous.checkHeader("backup-header.hmac", params(23));
  assert.equal(parseMemorySize("4G"), 4 * 1024 ** 3);
  assert.equal(parseMemorySize("1536MiB"), 1536 * 1024 ** 2);
  assert.equal(parseMemorySize("1000"), 1000);
  assert.throws(() => parseMemorySize("lots"));
});
