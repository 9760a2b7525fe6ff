import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { DamagedError } from "../../lib/errors.ts";
import { parsePaxRecords, parsePaxTime } from "../../lib/tar/pax.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("parsePaxRecords() reads records in order, UTF-8 values and NUL padding", () => {
  const data = bytes("30 mtime=1700000000.123456789\n22 path=vm5/ünï.img\n11 size=42\n\0\0\0");
  assertEquals(parsePaxRecords(data, "x"), [
    { key: "mtime", value: "1700000000.123456789" },
    { key: "path", value: "vm5/ünï.img" },
    { key: "size", value: "42" },
  ]);
  assertEquals(parsePaxRecords(bytes("8 a=b=c\n"), "x"), [{ key: "a", value: "b=c" }]);
});

Deno.test("parsePaxRecords() rejects malformed records", () => {
  for (const bad of ["12 size=42", "99 size=42\n", "x size=42\n", "10 size42\n", "4 a\n"]) {
    throws(() => parsePaxRecords(bytes(bad), "x"), DamagedError, bad);
  }
});

Deno.test("parsePaxTime() rounds down to whole seconds", () => {
  assertEquals(parsePaxTime("1700000000.9", "t"), 1700000000);
  assertEquals(parsePaxTime("-1.5", "t"), -2);
  assertEquals(parsePaxTime("12", "t"), 12);
  throws(() => parsePaxTime("soon", "t"), DamagedError);
});
