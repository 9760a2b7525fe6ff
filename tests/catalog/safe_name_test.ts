import assert from "node:assert/strict";
import { isSafeName } from "../../lib/catalog/safe_name.ts";

Deno.test("isSafeName() accepts ordinary VM and user names", () => {
  for (const name of ["work", "sys-net", "fedora-39-dvm", "a..b", ".hidden", "user0", "ünïcode"]) {
    assert.equal(isSafeName(name), true, name);
  }
  assert.equal(isSafeName("a".repeat(255)), true);
});

Deno.test("isSafeName() refuses names that are not a single harmless path component", () => {
  for (
    const name of [
      "",
      ".",
      "..",
      "../../etc",
      "a/b",
      "/",
      "nul\0",
      "line\nbreak",
      "esc\x1b[2J",
      "del\x7f",
    ]
  ) {
    assert.equal(isSafeName(name), false, JSON.stringify(name));
  }
  assert.equal(isSafeName("a".repeat(256)), false);
  assert.equal(isSafeName("é".repeat(128)), false, "256 bytes of UTF-8");
});
