/**
 * The CBC restart of salvaged format-3 data (lib/salvage/cbc.ts) on a stream larger than one
 * decryption slice (4 MiB), encrypted by the real `openssl enc`: a lost 1 MiB chunk costs
 * exactly its bytes and the 16-byte block after it; everything else decrypts exactly.
 */

import assert from "node:assert/strict";
import { sh } from "../e2e/_cli.ts";
import { opensslCipher } from "../../lib/crypto/mod.ts";
import { cbcSalvaged } from "../../lib/salvage/cbc.ts";
import { lostBytes, lostCause } from "../../lib/salvage/lost.ts";
import { seededBytes } from "../support/vm_tree.ts";

const MiB = 1024 * 1024;

Deno.test("cbcSalvaged: a lost chunk costs its bytes and one block; the rest is exact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qr-cbc-" });
  try {
    const original = seededBytes(9 * MiB + 100, 7);
    await Deno.writeFile(`${dir}/plain`, original);
    await sh(
      `openssl enc -aes-256-cbc -md md5 -pass pass:cbc -in '${dir}/plain' -out '${dir}/enc'`,
    );
    const cipherText = await Deno.readFile(`${dir}/enc`);
    for (const [lostChunk, absent] of [[3, false], [9, false], [9, true]] as const) {
      const input = async function* () {
        for (let at = 0, k = 0; at < cipherText.length; at += MiB, k++) {
          const chunk = cipherText.subarray(at, Math.min(at + MiB, cipherText.length));
          if (k === lostChunk && absent) return;
          if (k === lostChunk) {
            yield* lostBytes(chunk.length, { reason: "missing", chunk: `c${k}` });
          } else yield chunk;
        }
      };
      const out: Uint8Array[] = [];
      for await (
        const piece of cbcSalvaged(input(), {
          password: new TextEncoder().encode("cbc"),
          digest: "md5",
          cipher: opensslCipher("aes-256-cbc"),
          item: "x",
        })
      ) out.push(piece);
      const lost: Array<[number, number]> = [];
      let at = 0;
      for (const piece of out) {
        if (lostCause(piece) !== undefined) {
          const last = lost.at(-1);
          if (last && last[1] === at) last[1] = at + piece.length;
          else lost.push([at, at + piece.length]);
        } else {
          for (let i = 0; i < piece.length; i++) {
            if (piece[i] !== original[at + i]) assert.fail(`byte ${at + i} differs`);
          }
        }
        at += piece.length;
      }
      const start = lostChunk * MiB - 16;
      if (absent) {
        // The stream simply ends: the block before (its padding not checkable) is lost.
        assert.deepEqual(lost, [[start - 16, start]], JSON.stringify(lost));
      } else if (lostChunk === 9) {
        // The last chunk lost: its bytes (padding included) to the end.
        assert.deepEqual(lost, [[start, at]]);
        assert.ok(at >= original.length);
      } else {
        assert.deepEqual(lost, [[start, start + MiB + 16]]);
        assert.equal(at, original.length);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
