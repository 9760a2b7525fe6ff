import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { DamagedError } from "../../lib/errors.ts";
import { parseDecimal, readHeaderNumber } from "../../lib/tar/numbers.ts";

const field = (text: string) => new TextEncoder().encode(text);

Deno.test("readHeaderNumber() reads octal with spaces, NUL and blank fields", () => {
  assertEquals(readHeaderNumber(field("00000001750\0"), 0, 12, "size"), 1000);
  assertEquals(readHeaderNumber(field("  1750 \0"), 0, 8, "mode"), 1000);
  assertEquals(readHeaderNumber(field("017000 \0"), 0, 8, "checksum"), 0o17000);
  assertEquals(readHeaderNumber(new Uint8Array(12), 0, 12, "size"), 0);
  assertEquals(readHeaderNumber(field("77777777777\0"), 0, 12, "size"), 8 * 1024 ** 3 - 1);
});

Deno.test("readHeaderNumber() reads base-256 values of 8 GiB and more", () => {
  const twenty = new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]);
  assertEquals(readHeaderNumber(twenty, 0, 12, "realsize"), 20 * 1024 ** 3);
  const max = new Uint8Array([0x80, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  assertEquals(readHeaderNumber(max, 0, 12, "size"), Number.MAX_SAFE_INTEGER);
  const minusOne = new Uint8Array(12).fill(0xff);
  assertEquals(readHeaderNumber(minusOne, 0, 12, "mtime", true), -1);
});

Deno.test("readHeaderNumber() rejects garbage, negative sizes and unsafe values", () => {
  throws(() => readHeaderNumber(field("0000001x50\0\0"), 0, 12, "size"), DamagedError);
  throws(() => readHeaderNumber(field("00017 5\0"), 0, 8, "mode"), DamagedError);
  throws(() => readHeaderNumber(new Uint8Array(12).fill(0xff), 0, 12, "size"), DamagedError);
  const unsafe = new Uint8Array([0x80, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0]);
  throws(() => readHeaderNumber(unsafe, 0, 12, "size"), /too large/);
});

Deno.test("parseDecimal() accepts digits only and safe values", () => {
  assertEquals(parseDecimal("21474836480", "x"), 20 * 1024 ** 3);
  assertEquals(parseDecimal("0", "x"), 0);
  for (const bad of ["", "-1", "1.5", " 1", "1e3", "9007199254740992"]) {
    throws(() => parseDecimal(bad, "x"), DamagedError, bad);
  }
});
