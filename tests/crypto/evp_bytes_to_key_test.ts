import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { evpBytesToKey, type KdfDigest } from "../../lib/crypto/evp_bytes_to_key.ts";
import { fromHex, runTool, toHex } from "./_tools.ts";

const encoder = new TextEncoder();

/** The key and IV `openssl enc -P` prints for a password and salt. */
async function opensslKeyIv(
  cipher: string,
  digest: KdfDigest,
  password: string,
  saltHex: string,
): Promise<{ key: string; iv: string }> {
  const text = new TextDecoder().decode(
    await runTool("openssl", [
      "enc",
      `-${cipher}`,
      "-md",
      digest,
      "-P",
      "-S",
      saltHex,
      "-pass",
      `pass:${password}`,
    ]),
  );
  const key = /^key\s*=\s*([0-9A-F]+)$/m.exec(text)?.[1] ?? "";
  const iv = /^iv\s*=\s*([0-9A-F]+)$/m.exec(text)?.[1] ?? "";
  return { key: key.toLowerCase(), iv: iv.toLowerCase() };
}

Deno.test("evpBytesToKey() matches the MD5 vector of spec 6.3", () => {
  const { key, iv } = evpBytesToKey(
    "md5",
    encoder.encode("qubes"),
    fromHex("0102030405060708"),
    32,
    16,
  );
  assertEquals(toHex(key), "0095d3e8605b4c01578957e82ac66fd825252642f1e33d54b91285b969591ff8");
  assertEquals(toHex(iv), "09a26fc3ac81ff5f900204c64b2c973c");
});

Deno.test("evpBytesToKey() matches the SHA-256 vector of spec 6.3", () => {
  const { key, iv } = evpBytesToKey(
    "sha256",
    encoder.encode("qubes"),
    fromHex("0102030405060708"),
    32,
    16,
  );
  assertEquals(toHex(key), "cb8fc6bab179c387c6d4c776893bfd83f288afc99f2d8c368c57f851bbb08873");
  assertEquals(toHex(iv), "06799ec83bb40ed049d982dc71ab4f7f");
});

Deno.test("evpBytesToKey() agrees with openssl enc -P", async (t) => {
  const cases: [string, KdfDigest, string, string, number][] = [
    ["aes-256-cbc", "md5", "correct horse battery staple", "a1b2c3d4e5f60718", 32],
    ["aes-256-cbc", "md5", "pässwörd ünïcode €", "0000000000000000", 32],
    ["aes-256-cbc", "md5", "x", "ffffffffffffffff", 32],
    ["aes-128-cbc", "md5", "qubes", "0102030405060708", 16],
    ["aes-192-cbc", "md5", "qubes", "0102030405060708", 24],
    ["aes-256-cbc", "sha256", "pässwörd", "0807060504030201", 32],
  ];
  for (const [cipher, digest, password, saltHex, keyLength] of cases) {
    await t.step(`${cipher} ${digest} "${password}"`, async () => {
      const expected = await opensslKeyIv(cipher, digest, password, saltHex);
      const { key, iv } = evpBytesToKey(
        digest,
        encoder.encode(password),
        fromHex(saltHex),
        keyLength,
        16,
      );
      assertEquals({ key: toHex(key), iv: toHex(iv) }, expected);
    });
  }
});
