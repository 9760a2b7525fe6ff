import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { DamagedError } from "../../lib/errors.ts";
import {
  parseSparseMapRecord,
  SparseMapTextParser,
  validateSparseMap,
} from "../../lib/tar/sparse.ts";

Deno.test("SparseMapTextParser reads the map and its padding fed byte by byte", () => {
  const text = new TextEncoder().encode("2\n0\n512\n8589934592\n100\n");
  const input = new Uint8Array(1024);
  input.set(text);
  const parser = new SparseMapTextParser(2000, "a");
  let consumed = 0;
  while (!parser.done) consumed += parser.push(input.subarray(consumed, consumed + 1));
  assertEquals(consumed, 512);
  assertEquals(parser.consumed, 512);
  assertEquals(parser.map, { offsets: [0, 8589934592], sizes: [512, 100] });
  // Whatever follows the padding is left alone.
  const whole = new SparseMapTextParser(2000, "a");
  assertEquals(whole.push(input), 512);
});

Deno.test("SparseMapTextParser rejects maps longer than the member or malformed", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  throws(() => new SparseMapTextParser(600, "a").push(bytes("1000\n")), /do not fit/);
  throws(() => new SparseMapTextParser(600, "a").push(bytes("1\n0x\n")), DamagedError);
  throws(() => new SparseMapTextParser(10, "a").push(bytes("1\n0\n12345678\n")), /longer/);
});

Deno.test("validateSparseMap() checks order, bounds and the stored size", () => {
  validateSparseMap({ offsets: [0, 4096, 8192], sizes: [512, 1024, 0] }, 8192, 1536, "a");
  const bad = (offsets: number[], sizes: number[], realsize: number, stored: number) =>
    throws(() => validateSparseMap({ offsets, sizes }, realsize, stored, "a"), DamagedError);
  bad([0, 100], [200, 10], 1000, 210); // overlapping
  bad([0], [2000], 1000, 2000); // beyond realsize
  bad([0], [10], 1000, 11); // sum differs
  bad([Number.MAX_SAFE_INTEGER], [Number.MAX_SAFE_INTEGER], Number.MAX_SAFE_INTEGER, 0);
});

Deno.test("parseSparseMapRecord() reads GNU.sparse.map pairs", () => {
  assertEquals(parseSparseMapRecord("0,512,4096,10"), { offsets: [0, 4096], sizes: [512, 10] });
  throws(() => parseSparseMapRecord("0,512,4096"), DamagedError);
});
