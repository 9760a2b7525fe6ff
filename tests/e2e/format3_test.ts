/**
 * Format 3 end to end: `tar --use-compress-program | openssl enc | split`, as Qubes R2 updates
 * to R3.2 wrote it, restored through the CLI with no option saying which format it is.
 */

import assert from "node:assert/strict";
import { buildBackup, type FixtureSpec } from "../support/backup_builder.ts";
import { runCli } from "./_cli.ts";
import { assertRestored, withWorld } from "./_world.ts";

const PASS = "format three";

Deno.test("restore of format 3 backups made by the real tools is bit-exact", async (t) => {
  await withWorld("qr-e2e-v3-", async (root, world) => {
    const base: FixtureSpec = {
      format: 3,
      passphrase: PASS,
      vms: world.vms,
      dom0Home: world.dom0Home,
      chunkBytes: 512 * 1024,
    };
    const variants: Array<[string, Partial<FixtureSpec>]> = [
      ["encrypted, gzip (the default)", { encrypted: true, compressed: true }],
      ["encrypted, not compressed", { encrypted: true }],
      ["not encrypted, bzip2", { compressed: true, compressionFilter: "bzip2" }],
      ["not encrypted, xz", { compressed: true, compressionFilter: "xz" }],
      ["encrypted, zstd", { encrypted: true, compressed: true, compressionFilter: "zstd" }],
      ["encrypted, pigz", { encrypted: true, compressed: true, compressionFilter: "pigz" }],
      ["encrypted, pbzip2 (many bzip2 streams)", {
        encrypted: true,
        compressed: true,
        compressionFilter: "pbzip2",
      }],
      ["not encrypted, lzma (lzma-alone)", { compressed: true, compressionFilter: "lzma" }],
      ["a filter with arguments: gzip -3", { compressed: true, compressionFilter: "gzip -3" }],
      ["neither encrypted nor compressed", {}],
      ["SHA1 HMACs", { encrypted: true, compressed: true, hmacAlgorithm: "SHA1" }],
      ["an empty trailing chunk after every item", {
        encrypted: true,
        compressed: true,
        trailingEmptyChunk: true,
      }],
      ["chunks of 64 KiB", { encrypted: true, compressed: true, chunkBytes: 65536 }],
      ["R3.1+ --dereference", { encrypted: true, compressed: true, dereference: true }],
    ];
    for (const [name, overrides] of variants) {
      await t.step(name, async () => {
        const spec = { ...base, ...overrides };
        const built = await buildBackup(spec, root);
        const out = `${built.path}.out`;
        const result = await runCli(["restore", built.path, "--output", out], { passphrase: PASS });
        assert.equal(result.code, 0, result.stderr);
        await assertRestored(out, world, {
          deep: name.startsWith("encrypted, gzip"),
          dereferenced: spec.dereference === true,
        });
        const info = await runCli(["info", built.path], { passphrase: PASS });
        assert.match(info.stdout, /Format:\s+3/);
        await Deno.remove(out, { recursive: true });
        await Deno.remove(built.path);
      });
    }
  });
});
