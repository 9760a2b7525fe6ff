/**
 * Fixture surgery for error tests: take a backup apart with GNU tar, change it, and put it
 * back together the way Qubes wrote it; and the shape every error must have.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sh } from "./_cli.ts";

/** Asserts the failure shape every error shares, and returns the error line. */
export function assertOneLineError(result: { code: number; stderr: string }, code: number): string {
  assert.equal(result.code, code, result.stderr);
  assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
  const errors = result.stderr.split("\n").filter((line) => line.startsWith("qubes-recover: "));
  assert.equal(errors.length, 1, result.stderr);
  return errors[0]!;
}

/**
 * A restore's error line without the hint a restore of a backup file without `--salvage` adds
 * when items were left out (`verify` and `--dry-run` do not add it).
 */
export function withoutSalvageHint(line: string): string {
  return line.replace(/; every other item is restored; add --salvage .*$/, "");
}

/** Every outer entry, extracted into `dir`, and their names in archive order. */
export async function untar(backup: string, dir: string): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  await sh(`tar -xif '${backup}' -C '${dir}'`);
  return (await sh(`tar -tif '${backup}'`)).trim().split("\n");
}

/** Re-packs entries like Qubes did: one `tar -cO --posix` archive per entry, appended. */
export async function repack(dir: string, names: string[], out: string): Promise<void> {
  await Deno.writeFile(out, new Uint8Array(0));
  for (const name of names) await sh(`tar -cO --posix -C '${dir}' '${name}' >> '${out}'`);
}

/**
 * Flips byte `at` of the file at `path` (or its last byte, if shorter); `at` may be "middle".
 * An XOR, never a fixed value: writing a fixed byte over random ciphertext changes nothing
 * one time in 256, and the "damaged" backup is then intact.
 */
export async function flipByte(path: string, at: number | "middle"): Promise<void> {
  const bytes = await Deno.readFile(path);
  const where = at === "middle" ? Math.floor(bytes.length / 2) : Math.min(at, bytes.length - 1);
  bytes[where] = bytes[where]! ^ 0xff;
  await Deno.writeFile(path, bytes);
}

export async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await sh(`cd '${dir}' && find . -type f | sort`)).trim().split("\n").filter(Boolean);
  } catch {
    return [];
  }
}
