import { ok } from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { CbcChain, CtrCipher } from "../../lib/crypto/_aes.ts";
import { concatBytes, fromHex, pseudoRandomBytes } from "./_tools.ts";

const MiB = 1024 * 1024;

/** node:crypto (OpenSSL) encryption, the oracle for the WebCrypto-based helpers. */
function opensslEncrypt(cipher: string, key: Uint8Array, iv: Uint8Array, data: Uint8Array) {
  const encryptor = createCipheriv(cipher, key, iv);
  return new Uint8Array(Buffer.concat([encryptor.update(data), encryptor.final()]));
}

Deno.test("CtrCipher carries the counter across 64 and 128 bits like OpenSSL", async (t) => {
  const key = pseudoRandomBytes(32, 1);
  const data = pseudoRandomBytes(9 * MiB + 5, 2);
  for (
    const ivHex of [
      "0000000000000000fffffffffffffff0",
      "ffffffffffffffffffffffffffffff00",
      "00000000000000000000000000000000",
    ]
  ) {
    await t.step(ivHex, async () => {
      const iv = fromHex(ivHex);
      const encrypted = opensslEncrypt("aes-256-ctr", key, iv, data);
      const cipher = await CtrCipher.create(key, iv);
      ok(Buffer.compare(await cipher.decryptAll(encrypted), data) === 0);
      const tail = await cipher.decryptAt(3 * MiB / 16 + 1, encrypted.subarray(3 * MiB + 16));
      ok(Buffer.compare(tail, data.subarray(3 * MiB + 16)) === 0);
    });
  }
});

Deno.test("CbcChain decrypts a chain slice by slice", async () => {
  const key = pseudoRandomBytes(32, 3);
  const iv = pseudoRandomBytes(16, 4);
  const data = pseudoRandomBytes(1000 * 16 + 7, 5);
  const encrypted = opensslEncrypt("aes-256-cbc", key, iv, data);
  const chain = await CbcChain.create(key, iv);
  const pieces: Uint8Array[] = [];
  for (const [start, end] of [[0, 16], [16, 4800], [4800, 9600]] as const) {
    const framed = new Uint8Array(end - start + 16);
    framed.set(encrypted.subarray(start, end));
    pieces.push((await chain.decryptMiddle(framed)).giveAway());
  }
  const last = await chain.decryptEnd(encrypted.subarray(9600));
  ok(last !== undefined);
  ok(Buffer.compare(concatBytes([...pieces, last]), data) === 0);
});
