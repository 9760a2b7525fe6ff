import { deepStrictEqual as assertEquals, ok, rejects, throws } from "node:assert/strict";
import {
  digestName,
  findHmacDigest,
  hexDigestsEqual,
  parseHmacFile,
} from "../../lib/verify/hmac.ts";
import { OffThreadHmac, useHmacWorker } from "../../lib/verify/off_thread_hmac.ts";
import { DamagedError, UnsupportedError } from "../../lib/errors.ts";
import { pseudoRandomBytes, runTool } from "../crypto/_tools.ts";

const encoder = new TextEncoder();
const PASSPHRASE = "pässwörd !$ ✓";

/** The `.hmac` file `openssl dgst -<alg> -hmac <passphrase>` writes for `data` on stdin. */
function opensslHmacFile(data: Uint8Array, alg: string, passphrase = PASSPHRASE) {
  return runTool("openssl", ["dgst", `-${alg}`, "-hmac", passphrase], { stdin: data });
}

/** The HMAC of `data` computed by an OffThreadHmac (in the worker), fed in 1 MiB pieces. */
async function hmacHex(digest: string, key: Uint8Array, data: Uint8Array): Promise<string> {
  const done = useHmacWorker();
  try {
    const mac = await OffThreadHmac.create(digest, key);
    const fed: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += 1 << 20) {
      const piece = data.slice(at, at + (1 << 20));
      fed.push(piece.slice());
      mac.update(piece);
    }
    const { hex, pieces } = await mac.finish();
    // Every piece comes back, in order, with the bytes it was given.
    assertEquals(pieces.length, fed.length);
    ok(pieces.every((piece, i) => Buffer.compare(piece, fed[i]!) === 0));
    return hex;
  } finally {
    done();
  }
}

Deno.test("OffThreadHmac matches .hmac files of openssl dgst -hmac", async (t) => {
  const data = pseudoRandomBytes(3 * 1024 * 1024 + 17, 5);
  for (
    const [alg, header] of [["sha512", "SHA512"], ["sha1", "SHA1"], ["md5", "MD5"], [
      "sha256",
      "sha-256",
    ]] as const
  ) {
    await t.step(alg, async () => {
      const file = await opensslHmacFile(data, alg);
      const expected = parseHmacFile(file);
      const key = encoder.encode(PASSPHRASE);
      ok(hexDigestsEqual(await hmacHex(digestName(header), key, data), expected));
      const tampered = data.slice();
      tampered[12345] = (tampered[12345] ?? 0) ^ 0x80;
      ok(!hexDigestsEqual(await hmacHex(digestName(header), key, tampered), expected));
    });
  }
});

Deno.test("OffThreadHmac hashes a view of a larger buffer and hands the same view back", async () => {
  const data = pseudoRandomBytes(4096, 8);
  const expected = parseHmacFile(await opensslHmacFile(data.subarray(100, 3000), "sha512"));
  const done = useHmacWorker();
  try {
    const mac = await OffThreadHmac.create("sha512", encoder.encode(PASSPHRASE));
    const view = data.slice().subarray(100, 3000);
    mac.update(view);
    assertEquals(view.length, 0); // Transferred to the worker meanwhile.
    const { hex, pieces: [back] } = await mac.finish();
    assertEquals([back!.byteOffset, back!.length, back!.buffer.byteLength], [100, 2900, 4096]);
    ok(back!.every((byte, i) => byte === data[100 + i]));
    ok(hexDigestsEqual(hex, expected));
  } finally {
    done();
  }
});

Deno.test("OffThreadHmac.discard() drops a half-fed HMAC in the worker", async () => {
  const done = useHmacWorker();
  try {
    const mac = await OffThreadHmac.create("sha512", encoder.encode(PASSPHRASE));
    mac.update(pseudoRandomBytes(1000, 9));
    mac.discard();
    await rejects(mac.finish(), /unknown HMAC/);
  } finally {
    done();
  }
});

Deno.test("OffThreadHmac accepts an empty key", async () => {
  const data = encoder.encode("qubes.xml");
  // openssl refuses an empty HMAC key; Python's hmac module is the oracle here.
  const expected = new TextDecoder().decode(
    await runTool("python3", [
      "-c",
      "import hashlib, hmac, sys; print(hmac.new(b'', sys.stdin.buffer.read(), hashlib.sha512).hexdigest())",
    ], { stdin: data }),
  ).trim();
  ok(hexDigestsEqual(await hmacHex("sha512", new Uint8Array(0), data), expected));
});

Deno.test("parseHmacFile() reads every openssl output form", () => {
  const hex = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce";
  for (
    const text of [
      `(stdin)= ${hex}\n`,
      `HMAC-SHA256(stdin)= ${hex}\n`,
      `SHA2-256(stdin)= ${hex}`,
      `HMAC-SHA2-256(file)= ${hex.toUpperCase()}\r\n`,
      `  ${hex}  `,
    ]
  ) {
    assertEquals(parseHmacFile(encoder.encode(text)), hex);
  }
});

Deno.test("parseHmacFile() rejects oversized, non-ASCII and non-hex files", () => {
  const isDamaged = (error: unknown) => error instanceof DamagedError;
  throws(() => parseHmacFile(encoder.encode(`(stdin)= ${"ab".repeat(2100)}`)), isDamaged);
  throws(() => parseHmacFile(encoder.encode("(stdin)= abcdé")), isDamaged);
  throws(() => parseHmacFile(encoder.encode("(stdin)= xyz")), isDamaged);
  throws(() => parseHmacFile(encoder.encode("(stdin)= \n")), isDamaged);
  throws(() => parseHmacFile(new Uint8Array(0)), isDamaged);
});

Deno.test("digestName() maps header values and rejects the unknown", () => {
  assertEquals(digestName("SHA512"), "sha512");
  assertEquals(digestName("sha-512"), "sha512");
  assertEquals(digestName("SHA1"), "sha1");
  assertEquals(digestName("MD5"), "md5");
  assertEquals(digestName("SHA256"), "sha256");
  assertEquals(digestName("SHA224"), "sha224");
  assertEquals(digestName("SHA384"), "sha384");
  assertEquals(digestName("RIPEMD160"), "ripemd160");
  assertEquals(digestName("SHA2-512"), "sha512");
  for (const value of ["scrypt", "whirlpool", "", "sha513"]) {
    throws(() => digestName(value), (error) => {
      ok(error instanceof UnsupportedError);
      assertEquals(error.message, `HMAC algorithm "${value}" is not supported`);
      return true;
    });
  }
});

Deno.test("digestName() names digests that openssl dgst agrees on", async () => {
  const data = encoder.encode("backup-header contents\n");
  for (const [header, option] of [["SHA224", "sha224"], ["SHA384", "sha384"]] as const) {
    const expected = parseHmacFile(await opensslHmacFile(data, option));
    ok(
      hexDigestsEqual(
        await hmacHex(digestName(header), encoder.encode(PASSPHRASE), data),
        expected,
      ),
    );
  }
});

Deno.test("hexDigestsEqual() ignores case and rejects length mismatches", () => {
  ok(hexDigestsEqual("ABcd01", "abCD01"));
  ok(!hexDigestsEqual("abcd01", "abcd02"));
  ok(!hexDigestsEqual("abcd01", "abcd0"));
  ok(!hexDigestsEqual("", "00"));
  ok(hexDigestsEqual("", ""));
});

Deno.test("findHmacDigest() finds the digest of a header-less backup's HMAC", async (t) => {
  const header = encoder.encode(
    "version=3\nhmac-algorithm=SHA512\ncrypto-algorithm=aes-256-cbc\nencrypted=True\n",
  );
  const key = encoder.encode(PASSPHRASE);
  for (const alg of ["sha1", "sha512", "md5", "sha256"]) {
    await t.step(alg, async () => {
      const expected = parseHmacFile(await opensslHmacFile(header, alg));
      assertEquals(findHmacDigest(header, key, expected), alg);
    });
  }
  await t.step("wrong passphrase", async () => {
    const expected = parseHmacFile(await opensslHmacFile(header, "sha1"));
    assertEquals(findHmacDigest(header, encoder.encode("wrong"), expected), undefined);
  });
  await t.step("candidate list", async () => {
    const expected = parseHmacFile(await opensslHmacFile(header, "sha1"));
    assertEquals(findHmacDigest(header, key, expected, ["sha512", "md5"]), undefined);
  });
});
