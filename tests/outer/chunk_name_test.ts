import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { chunkEntryName, parseChunkName } from "../../lib/outer/mod.ts";

Deno.test("parseChunkName() splits at the last dot", () => {
  assertEquals(parseChunkName("vm3/..000", false), { item: "vm3/.", index: 0 });
  assertEquals(parseChunkName("vm5/private.img.1000", false), {
    item: "vm5/private.img",
    index: 1000,
  });
  assertEquals(parseChunkName("qubes.xml.000.enc", true), { item: "qubes.xml", index: 0 });
  assertEquals(parseChunkName("dom0-home/user0.007", false), { item: "dom0-home/user0", index: 7 });
});

Deno.test("parseChunkName() rejects names that are not chunks", () => {
  assertEquals(parseChunkName("vm5/private.img.000.hmac", false), undefined);
  assertEquals(parseChunkName("vm5/private.img.000", true), undefined);
  assertEquals(parseChunkName("backup-header", false), undefined);
  assertEquals(parseChunkName("vm5/private.img.00", false), undefined);
  assertEquals(parseChunkName("vm5/private.img.0100", false), undefined);
  assertEquals(parseChunkName(".000", false), undefined);
});

Deno.test("chunkEntryName() writes %03d and grows past 999", () => {
  assertEquals(chunkEntryName("vm5/private.img", 7, false), "vm5/private.img.007");
  assertEquals(chunkEntryName("vm3/.", 1000, true), "vm3/..1000.enc");
});
