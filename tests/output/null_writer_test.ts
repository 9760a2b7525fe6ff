import assert from "node:assert/strict";
import { NullWriter } from "../../lib/output/null_writer.ts";
import type { TarEvent } from "../../lib/tar/events.ts";

Deno.test("NullWriter counts members and data bytes and writes nothing", async () => {
  const entry = (name: string, kind: "file" | "directory", size: number): TarEvent => ({
    type: "entry",
    entry: { name, kind, typeflag: "0", mode: 0o644, mtime: 0, linkname: "", size, sparse: false },
  });
  const events: TarEvent[] = [
    entry("vm1/", "directory", 0),
    { type: "end" },
    entry("vm1/private.img", "file", 1 << 20),
    { type: "data", offset: 0, bytes: new Uint8Array(1000) },
    { type: "data", offset: 4096, bytes: new Uint8Array(24) },
    { type: "end" },
  ];
  const writer = new NullWriter();
  await ReadableStream.from(events).pipeTo(writer);
  assert.deepEqual(writer.members, 2);
  assert.deepEqual(writer.bytes, 1024);
});
