import { deepStrictEqual as assertEquals, ok, rejects, throws } from "node:assert/strict";
import {
  decryptOpensslBuffer,
  OPENSSL_MAGIC,
  opensslCipher,
  opensslDecryptPieces,
  OpensslDecryptStream,
  peekOpensslPlaintext,
} from "../../lib/crypto/openssl_enc.ts";
import type { KdfDigest } from "../../lib/crypto/evp_bytes_to_key.ts";
import { DamagedError, IncompleteError, UnsupportedError } from "../../lib/errors.ts";
import { pieceBytes, pooledPieces } from "../streams/_pooled.ts";
import {
  concatBytes,
  cutBytes,
  opensslEncrypt,
  opensslEncryptWithSalt,
  pseudoRandomBytes,
} from "./_tools.ts";

const encoder = new TextEncoder();
const MiB = 1024 * 1024;
const PASSPHRASE = "qubes backup";
const SIZES = [0, 1, 15, 16, 17, 3 * MiB + 5, 9 * MiB + 16];

/** Run `pieces` through an OpensslDecryptStream and collect the emitted pieces. */
async function decryptPieces(
  pieces: Uint8Array[],
  passphrase = PASSPHRASE,
  digest: KdfDigest = "md5",
  cipher?: string,
): Promise<Uint8Array[]> {
  const stream = ReadableStream.from(pieces).pipeThrough(
    new OpensslDecryptStream({
      password: encoder.encode(passphrase),
      digest,
      ...(cipher === undefined ? {} : { cipher }),
    }),
  );
  return await Array.fromAsync(stream);
}

/** Whether two byte arrays are equal, without a slow deep comparison of megabytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

Deno.test("OpensslDecryptStream decrypts openssl enc output of any size fed whole", async (t) => {
  for (const size of SIZES) {
    await t.step(`${size} bytes`, async () => {
      const plain = pseudoRandomBytes(size, size + 1);
      const cipher = await opensslEncrypt(plain, PASSPHRASE);
      const out = await decryptPieces([cipher]);
      ok(sameBytes(concatBytes(out), plain));
      ok(out.every((piece) => piece.length > 0 && piece.length <= 4 * MiB));
    });
  }
});

Deno.test("OpensslDecryptStream decrypts input fed in odd-sized pieces", async (t) => {
  const small = pseudoRandomBytes(70_000, 7);
  const smallCipher = await opensslEncrypt(small, PASSPHRASE);
  for (const size of [1, 7, 4093]) {
    await t.step(`70000 bytes in ${size}-byte pieces`, async () => {
      ok(sameBytes(concatBytes(await decryptPieces(cutBytes(smallCipher, size))), small));
    });
  }
  for (const size of [1, 15, 16, 17]) {
    await t.step(`${size} bytes in 1-byte pieces`, async () => {
      const plain = pseudoRandomBytes(size, 3);
      const cipher = await opensslEncrypt(plain, PASSPHRASE);
      ok(sameBytes(concatBytes(await decryptPieces(cutBytes(cipher, 1))), plain));
    });
  }
  await t.step("9 MiB in 1 MiB+3 pieces", async () => {
    const plain = pseudoRandomBytes(9 * MiB + 11, 9);
    const cipher = await opensslEncrypt(plain, PASSPHRASE);
    const out = await decryptPieces(cutBytes(cipher, MiB + 3));
    ok(sameBytes(concatBytes(out), plain));
    ok(out.every((piece) => piece.length <= 4 * MiB));
  });
});

Deno.test("OpensslDecryptStream decrypts one ciphertext sliced into chunks (format 3)", async () => {
  const plain = pseudoRandomBytes(10 * MiB + 100, 33);
  const cipher = await opensslEncrypt(plain, PASSPHRASE);
  // Block-aligned cuts after the 16-byte header like real 100 MiB chunks, and unaligned ones.
  const cuts = [0, 16 + 2 * MiB, 16 + 4 * MiB, 5 * MiB + 1, 8 * MiB - 7, cipher.length];
  const chunks = cuts.slice(1).map((end, index) => cipher.subarray(cuts[index], end));
  ok(sameBytes(concatBytes(await decryptPieces(chunks)), plain));
});

Deno.test("opensslDecryptPieces decrypts pooled pieces in place and reuses their buffers", async () => {
  // Read like chunks are: each piece read into a pool buffer, the header in the first one.
  const plain = pseudoRandomBytes(9 * MiB + 100, 44);
  const cipher = await opensslEncrypt(plain, PASSPHRASE);
  const { stream: pieces, buffers } = pooledPieces(cipher, MiB);
  const out = await pieceBytes(
    pieces.pipeThrough(
      opensslDecryptPieces({ password: encoder.encode(PASSPHRASE), digest: "md5" }),
    ),
  );
  ok(sameBytes(concatBytes(out), plain));
  // Ten pieces went through a handful of buffers: each was decrypted, then given back.
  ok(buffers.size < 6, `${buffers.size} buffers`);
});

Deno.test("OpensslDecryptStream decrypts with a non-ASCII UTF-8 passphrase", async () => {
  const passphrase = "Pässwörd ✓ 日本語 !$`\"'";
  const plain = pseudoRandomBytes(5000, 5);
  const cipher = await opensslEncrypt(plain, passphrase);
  ok(sameBytes(concatBytes(await decryptPieces(cutBytes(cipher, 100), passphrase)), plain));
});

Deno.test("OpensslDecryptStream decrypts with the SHA-256 key derivation when asked", async () => {
  const plain = pseudoRandomBytes(100_000, 6);
  const cipher = await opensslEncrypt(plain, PASSPHRASE, ["-aes-256-cbc", "-md", "sha256"]);
  ok(sameBytes(concatBytes(await decryptPieces([cipher], PASSPHRASE, "sha256")), plain));
});

Deno.test("OpensslDecryptStream decrypts AES-128-CBC and AES-256-CTR", async (t) => {
  const plain = pseudoRandomBytes(5 * MiB + 9, 8);
  for (const cipher of ["aes-128-cbc", "aes-192-cbc", "aes-256-ctr", "aes-128-ctr"]) {
    await t.step(cipher, async () => {
      const encrypted = await opensslEncrypt(plain, PASSPHRASE, [`-${cipher}`, "-md", "md5"]);
      const out = await decryptPieces(cutBytes(encrypted, MiB + 3), PASSPHRASE, "md5", cipher);
      ok(sameBytes(concatBytes(out), plain));
    });
  }
});

Deno.test("OpensslDecryptStream rejects a wrong passphrase as bad decrypt", async () => {
  const plain = encoder.encode("The quick brown fox jumps over the lazy dog. ".repeat(100));
  const cipher = await opensslEncryptWithSalt(plain, PASSPHRASE);
  await rejects(decryptPieces([cipher], "wrong"), (error) => {
    ok(error instanceof DamagedError);
    assertEquals(error.message, "bad decrypt: wrong passphrase or key derivation");
    return true;
  });
});

Deno.test("OpensslDecryptStream rejects the SHA-256 key derivation for MD5 data (trap T1)", async () => {
  const plain = encoder.encode("tar volume ".repeat(1000));
  const cipher = await opensslEncryptWithSalt(plain, PASSPHRASE);
  await rejects(decryptPieces([cipher], PASSPHRASE, "sha256"), DamagedError);
});

Deno.test("OpensslDecryptStream rejects truncated or foreign input", async (t) => {
  const plain = encoder.encode("The quick brown fox jumps over the lazy dog. ".repeat(100));
  const cipher = await opensslEncryptWithSalt(plain, PASSPHRASE);
  await t.step("cut inside a block", async () => {
    await rejects(decryptPieces([cipher.subarray(0, cipher.length - 5)]), IncompleteError);
  });
  await t.step("last block missing", async () => {
    await rejects(decryptPieces([cipher.subarray(0, cipher.length - 16)]), DamagedError);
  });
  await t.step("header only", async () => {
    await rejects(decryptPieces([cipher.subarray(0, 16)]), IncompleteError);
  });
  await t.step("cut inside the header", async () => {
    await rejects(decryptPieces([cipher.subarray(0, 5)]), IncompleteError);
  });
  await t.step("empty input", async () => {
    await rejects(decryptPieces([]), IncompleteError);
  });
  await t.step("no Salted__ magic", async () => {
    await rejects(decryptPieces([plain]), (error) => {
      ok(error instanceof DamagedError);
      ok(error.message.includes('"Salted__"'));
      return true;
    });
  });
});

Deno.test("decryptOpensslBuffer() decrypts whole chunks of any size", async (t) => {
  for (const size of SIZES) {
    await t.step(`${size} bytes`, async () => {
      const plain = pseudoRandomBytes(size, size + 2);
      const cipher = await opensslEncrypt(plain, PASSPHRASE);
      ok(sameBytes(await decryptOpensslBuffer(cipher, encoder.encode(PASSPHRASE), "md5"), plain));
    });
  }
  await t.step("aes-256-ctr", async () => {
    const plain = pseudoRandomBytes(4 * MiB + 3, 4);
    const cipher = await opensslEncrypt(plain, PASSPHRASE, ["-aes-256-ctr", "-md", "md5"]);
    const out = await decryptOpensslBuffer(
      cipher,
      encoder.encode(PASSPHRASE),
      "md5",
      "aes-256-ctr",
    );
    ok(sameBytes(out, plain));
  });
});

Deno.test("decryptOpensslBuffer() rejects a wrong passphrase and truncation", async () => {
  const plain = encoder.encode("The quick brown fox jumps over the lazy dog. ".repeat(100));
  const cipher = await opensslEncryptWithSalt(plain, PASSPHRASE);
  await rejects(decryptOpensslBuffer(cipher, encoder.encode("wrong"), "md5"), DamagedError);
  await rejects(
    decryptOpensslBuffer(cipher.subarray(0, 40), encoder.encode(PASSPHRASE), "md5"),
    IncompleteError,
  );
  await rejects(
    decryptOpensslBuffer(cipher.subarray(0, 10), encoder.encode(PASSPHRASE), "md5"),
    IncompleteError,
  );
});

Deno.test("peekOpensslPlaintext() reveals the start of the plaintext without padding", async () => {
  const plain = pseudoRandomBytes(10_000, 10);
  const cipher = await opensslEncrypt(plain, PASSPHRASE);
  const password = encoder.encode(PASSPHRASE);
  const head = cipher.subarray(0, 16 + 512 + 7);
  assertEquals(await peekOpensslPlaintext(head, password, "md5"), plain.subarray(0, 512));
  assertEquals(
    await peekOpensslPlaintext(head, password, "md5", "aes-256-cbc", 1),
    plain.subarray(0, 16),
  );
  const wrong = await peekOpensslPlaintext(head, password, "sha256");
  assertEquals(wrong.length, 512);
  ok(!sameBytes(wrong, plain.subarray(0, 512)));
  assertEquals((await peekOpensslPlaintext(cipher.subarray(0, 20), password, "md5")).length, 0);
  await rejects(peekOpensslPlaintext(plain, password, "md5"), DamagedError);
});

Deno.test("opensslCipher() knows AES ciphers and rejects others", () => {
  assertEquals(opensslCipher("aes-256-cbc"), {
    name: "aes-256-cbc",
    keyLength: 32,
    ivLength: 16,
    mode: "cbc",
  });
  assertEquals(opensslCipher("AES-128-CBC").keyLength, 16);
  assertEquals(opensslCipher("-aes192").name, "aes-192-cbc");
  assertEquals(opensslCipher("aes-256-ctr").mode, "ctr");
  throws(() => opensslCipher("bf-cbc"), UnsupportedError);
  throws(() => opensslCipher("aes-256-ecb"), UnsupportedError);
  assertEquals(new TextDecoder().decode(OPENSSL_MAGIC), "Salted__");
});
