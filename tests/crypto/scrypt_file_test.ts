import { deepStrictEqual as assertEquals, match, ok, rejects, throws } from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  decryptScryptFile,
  deriveScryptKeys,
  parseScryptHeader,
} from "../../lib/crypto/scrypt_file.ts";
import { DamagedError, PassphraseError, UnsupportedError } from "../../lib/errors.ts";
import { pseudoRandomBytes, runTool } from "./_tools.ts";

const encoder = new TextEncoder();
const PASSWORD = "backup-id!vm12/private.img.000!pässwörd ✓";

/** Encrypt `plain` with the real `scrypt enc`, cheap parameters, password from the environment. */
async function scryptEncrypt(
  plain: Uint8Array,
  password: string,
  logN = 10,
  r = 8,
  p = 1,
): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/in`, plain);
    await runTool("scrypt", [
      "enc",
      "--logN",
      String(logN),
      "-r",
      String(r),
      "-p",
      String(p),
      "--passphrase",
      "env:SCRYPT_TEST_PW",
      `${dir}/in`,
      `${dir}/out`,
    ], { env: { SCRYPT_TEST_PW: password } });
    return await Deno.readFile(`${dir}/out`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A copy of `data` with byte `offset` flipped. */
function flipped(data: Uint8Array, offset: number): Uint8Array {
  const copy = data.slice();
  copy[offset] = (copy[offset] ?? 0) ^ 0x01;
  return copy;
}

/** A copy of a scrypt header with other parameters and a fixed-up checksum. */
function withParams(data: Uint8Array, logN: number, r: number, p: number): Uint8Array {
  const copy = data.slice(0, 96);
  const view = new DataView(copy.buffer);
  copy[7] = logN;
  view.setUint32(8, r);
  view.setUint32(12, p);
  copy.set(createHash("sha256").update(copy.subarray(0, 48)).digest().subarray(0, 16), 48);
  return copy;
}

Deno.test("decryptScryptFile() decrypts files of the real scrypt tool bit-exact", async (t) => {
  for (const size of [1, 15, 16, 17, 1000, 5 * 1024 * 1024 + 7]) {
    await t.step(`${size} bytes`, async () => {
      const plain = pseudoRandomBytes(size, size);
      const file = await scryptEncrypt(plain, PASSWORD);
      const out = await decryptScryptFile(file, encoder.encode(PASSWORD));
      ok(Buffer.compare(out, plain) === 0);
    });
  }
});

Deno.test("decryptScryptFile() decrypts an empty plaintext (128-byte file)", async () => {
  const file = await scryptEncrypt(new Uint8Array(0), PASSWORD);
  assertEquals(file.length, 128);
  assertEquals((await decryptScryptFile(file, encoder.encode(PASSWORD))).length, 0);
});

Deno.test("decryptScryptFile() accepts keys derived beforehand", async () => {
  const plain = pseudoRandomBytes(3000, 4);
  const file = await scryptEncrypt(plain, "backup-header!secret", 11, 8, 2);
  const params = parseScryptHeader(file);
  assertEquals({ logN: params.logN, r: params.r, p: params.p }, { logN: 11, r: 8, p: 2 });
  const keys = await deriveScryptKeys(encoder.encode("backup-header!secret"), params);
  assertEquals(await decryptScryptFile(file, new Uint8Array(0), keys), plain);
});

Deno.test("decryptScryptFile() rejects a wrong password as incorrect passphrase", async () => {
  const file = await scryptEncrypt(pseudoRandomBytes(100, 1), PASSWORD);
  await rejects(decryptScryptFile(file, encoder.encode(PASSWORD + "x")), (error) => {
    ok(error instanceof PassphraseError);
    assertEquals(error.message, "passphrase is incorrect");
    return true;
  });
});

Deno.test("decryptScryptFile() rejects damaged or truncated files", async (t) => {
  const password = encoder.encode(PASSWORD);
  const file = await scryptEncrypt(pseudoRandomBytes(5000, 2), PASSWORD);
  const isHmacMismatch = (error: unknown) => {
    ok(error instanceof DamagedError);
    assertEquals(error.message, "HMAC does not match");
    return true;
  };
  await t.step("flipped ciphertext byte", async () => {
    await rejects(decryptScryptFile(flipped(file, 96 + 2500), password), isHmacMismatch);
  });
  await t.step("flipped trailing HMAC byte", async () => {
    await rejects(decryptScryptFile(flipped(file, file.length - 1), password), isHmacMismatch);
  });
  await t.step("truncated by one byte", async () => {
    await rejects(decryptScryptFile(file.subarray(0, file.length - 1), password), DamagedError);
  });
  await t.step("truncated to its header", async () => {
    await rejects(decryptScryptFile(file.subarray(0, 100), password), DamagedError);
  });
  await t.step("truncated inside its header", async () => {
    await rejects(decryptScryptFile(file.subarray(0, 50), password), DamagedError);
  });
  await t.step("flipped header checksum", async () => {
    await rejects(decryptScryptFile(flipped(file, 50), password), /header checksum/);
  });
  await t.step("not a scrypt file", async () => {
    await rejects(decryptScryptFile(pseudoRandomBytes(500), password), /not a scrypt file/);
  });
});

Deno.test("parseScryptHeader() refuses absurd parameters without hanging", async (t) => {
  const file = await scryptEncrypt(new Uint8Array(0), PASSWORD);
  await t.step("logN=40", () => {
    throws(() => parseScryptHeader(withParams(file, 40, 8, 1)), (error) => {
      ok(error instanceof UnsupportedError);
      assertEquals(error.message, "scrypt cost logN=40 is beyond the supported limit of 24");
      return true;
    });
  });
  await t.step("128*r*N over 4 GiB", () => {
    throws(() => parseScryptHeader(withParams(file, 23, 8, 1)), (error) => {
      ok(error instanceof UnsupportedError);
      match(error.message, /logN=23, r=8, p=1/);
      return true;
    });
  });
  await t.step("r*p at 2^30", () => {
    throws(() => parseScryptHeader(withParams(file, 1, 2 ** 15, 2 ** 15)), UnsupportedError);
  });
  await t.step("work over the limit", () => {
    throws(() => parseScryptHeader(withParams(file, 20, 8, 1000)), UnsupportedError);
  });
  await t.step("zero parameters", () => {
    throws(() => parseScryptHeader(withParams(file, 0, 8, 1)), DamagedError);
    throws(() => parseScryptHeader(withParams(file, 10, 0, 1)), DamagedError);
    throws(() => parseScryptHeader(withParams(file, 10, 8, 0)), DamagedError);
  });
  await t.step("version 1", () => {
    const header = file.slice(0, 96);
    header[6] = 1;
    throws(() => parseScryptHeader(header), UnsupportedError);
  });
  await t.step("decryptScryptFile() with logN=40 fails fast", async () => {
    const header = withParams(file, 40, 8, 1);
    const big = new Uint8Array(128);
    big.set(header);
    await rejects(decryptScryptFile(big, encoder.encode(PASSWORD)), UnsupportedError);
  });
});

Deno.test("deriveScryptKeys() reports parameters node:crypto refuses as unsupported", async () => {
  // node:crypto enforces RFC 7914's N < 2^(16·r); the scrypt tool does not.
  const params = { logN: 17, r: 1, p: 1, salt: new Uint8Array(32) };
  await rejects(deriveScryptKeys(encoder.encode("x"), params), UnsupportedError);
});
