/**
 * The checks every codec passes, run on the output of the real tool that Qubes ran as the
 * compression filter.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Compression, decompressStream } from "../../lib/compress/mod.ts";
import { DamagedError, IncompleteError } from "../../lib/errors.ts";
import { drain, join, pieces, random, runTool, sha256, text } from "./_fixtures.ts";

export const KiB = 1024, MiB = 1024 * KiB;

/** A way a Qubes filter wrote `kind`, run as the real tool. */
export interface Tool {
  kind: Compression;
  /** The command, reading standard input and writing standard output. */
  command: string[];
  /** A faster command for the 20 MiB input (xz and lzma at their default level take 10 s). */
  bigCommand?: string[];
  /** How the test names the tool. */
  label?: string;
  /** Whether `cat a b` of two outputs is valid input (gzip members, bzip2/xz streams, zstd frames). */
  concatenates: boolean;
}

export const SMALL = text(100_000);
export const OTHER = text(50_000, 7);
let big: Uint8Array | undefined;

/** About 20 MiB: text, random bytes, text. Made on first use. */
export function bigInput(): Uint8Array {
  return big ??= join(text(4 * MiB), random(4 * MiB), text(12 * MiB, 3));
}

/** Decompresses `data` fed in pieces of `size` bytes. */
export function decode(kind: Compression, data: Uint8Array, size: number) {
  return drain(pieces(data, size).pipeThrough(decompressStream(kind)));
}

/** Asserts that `data` decompresses to exactly `plain`; returns what was read. */
export async function assertDecodes(
  kind: Compression,
  data: Uint8Array,
  size: number,
  plain: Uint8Array,
) {
  const result = await decode(kind, data, size);
  assert.equal(result.length, plain.length, `length with ${size}-byte pieces`);
  assert.equal(result.sha256, sha256(plain), `sha256 with ${size}-byte pieces`);
  return result;
}

/** Asserts that decompressing `data` fails with a DamagedError whose message matches. */
export async function assertDamaged(
  kind: Compression,
  data: Uint8Array,
  message: RegExp,
  errorClass: typeof DamagedError | typeof IncompleteError = DamagedError,
) {
  await assert.rejects(decode(kind, data, 4099), (error: unknown) => {
    assert.ok(error instanceof errorClass, `not a ${errorClass.name}: ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

/** Registers the common tests of `decompressStream(tool.kind)` on `tool`'s output. */
export function codecSuite(tool: Tool): void {
  const { kind } = tool;
  Deno.test(`decompressStream("${kind}") reads ${tool.label ?? tool.command.join(" ")} output`, async (t) => {
    const plainBig = bigInput();
    const [empty, small, other, big] = await Promise.all([
      runTool(tool.command, new Uint8Array(0)),
      runTool(tool.command, SMALL),
      runTool(tool.command, OTHER),
      runTool(tool.bigCommand ?? tool.command, plainBig),
    ]);
    const ends = new RegExp(`^Cannot decompress ${kind} data: it ends early`);
    const corrupt = new RegExp(`^Cannot decompress ${kind} data: `);

    await t.step("an empty file", async () => {
      await assertDecodes(kind, empty, 1, new Uint8Array(0));
    });
    await t.step("small text in 1-byte, 4099-byte and 1 MiB pieces", async () => {
      for (const size of [1, 4099, MiB]) await assertDecodes(kind, small, size, SMALL);
    });
    await t.step("20 MiB of text and random bytes in 4099-byte and 1 MiB pieces", async () => {
      for (const size of [4099, MiB]) {
        const { sizes } = await assertDecodes(kind, big, size, plainBig);
        assert.ok(sizes.slice(0, -1).every((s) => s >= 256 * KiB), "pieces of at least 256 KiB");
      }
    });
    await t.step("10 KiB of zero padding after the end", async () => {
      await assertDecodes(kind, join(small, new Uint8Array(10 * KiB)), 4099, SMALL);
      await assertDecodes(kind, join(empty, new Uint8Array(10 * KiB)), 1000, new Uint8Array(0));
    });
    if (tool.concatenates) {
      await t.step("two concatenated outputs", async () => {
        await assertDecodes(kind, join(small, other), 4099, join(SMALL, OTHER));
        await assertDecodes(kind, join(small, empty, other), 1, join(SMALL, OTHER));
      });
      await t.step("bytes after the end are corrupt data", async () => {
        await assertDamaged(kind, join(small, new TextEncoder().encode("garbage")), corrupt);
      });
    }
    await t.step("truncated input ends early", async () => {
      await assertDamaged(kind, small.subarray(0, small.length >> 1), ends, IncompleteError);
      await assertDamaged(kind, small.subarray(0, small.length - 1), ends, IncompleteError);
      await assertDamaged(kind, big.subarray(0, 3 * MiB), ends, IncompleteError);
    });
    await t.step("a corrupted byte", async () => {
      const damaged = small.slice();
      damaged[Math.floor(damaged.length * 0.6)]! ^= 0x55;
      await assertDamaged(kind, damaged, corrupt);
    });
  });
}
