/**
 * Test helpers for the tar readers: running the real GNU tar, building sparse files, feeding
 * bytes in pieces and collecting {@link TarEvent}s into restored files.
 *
 * @module
 */

import type { TarEntry, TarEvent } from "../../lib/tar/events.ts";
import { xorshiftBytes } from "../support/xorshift.ts";

/** Runs a command, failing the test with its stderr if it does not succeed. */
export async function run(cmd: string, args: string[], cwd?: string): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}

/** Deterministic pseudo-random bytes (xorshift), fast enough for megabytes. */
export function randomBytes(length: number, seed = 1): Uint8Array {
  return xorshiftBytes(length, seed);
}

/** Creates a file of `size` bytes with holes everywhere except the given runs. */
export async function makeSparseFile(
  path: string,
  size: number,
  runs: [offset: number, bytes: Uint8Array][],
): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (const [offset, bytes] of runs) {
    await file.seek(offset, Deno.SeekMode.Start);
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
  }
  await file.truncate(size);
}

/** A stream of `bytes` cut into pieces of `size` (each piece its own view of a fresh copy). */
export function piecewise(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

/** One member as the events describe it. */
export interface Collected {
  entry: TarEntry;
  runs: { offset: number; bytes: Uint8Array }[];
  ended: boolean;
}

/** Consumes events into members, checking the entry/data/end order. */
export async function collect(events: ReadableStream<TarEvent>): Promise<Collected[]> {
  const members: Collected[] = [];
  let current: Collected | undefined;
  for await (const event of events) {
    if (event.type === "entry") {
      if (current && !current.ended) throw new Error(`entry before end of "${current.entry.name}"`);
      current = { entry: event.entry, runs: [], ended: false };
      members.push(current);
    } else if (!current || current.ended) {
      throw new Error(`${event.type} event outside a member`);
    } else if (event.type === "data") {
      const last = current.runs.at(-1);
      if (last && event.offset < last.offset + last.bytes.length) throw new Error("data goes back");
      if (event.offset + event.bytes.length > current.entry.size) throw new Error("data past size");
      current.runs.push({ offset: event.offset, bytes: event.bytes });
    } else {
      current.ended = true;
    }
  }
  if (current && !current.ended) throw new Error(`no end for "${current.entry.name}"`);
  return members;
}

/** The restored content of a (small) member: runs written at their offsets, zeros elsewhere. */
export function assemble(member: Collected): Uint8Array {
  const out = new Uint8Array(member.entry.size);
  for (const run of member.runs) out.set(run.bytes, run.offset);
  return out;
}

/** Lists every file, directory and symlink under `dir` (relative names, `/`-separated). */
export async function walk(dir: string, prefix = ""): Promise<Map<string, Deno.FileInfo>> {
  const found = new Map<string, Deno.FileInfo>();
  for await (const item of Deno.readDir(`${dir}/${prefix}`)) {
    const name = `${prefix}${item.name}`;
    found.set(name, await Deno.lstat(`${dir}/${name}`));
    if (item.isDirectory) { for (const [k, v] of await walk(dir, `${name}/`)) found.set(k, v); }
  }
  return found;
}

/** Normalises a member name the way tar -x places it (`./` components and trailing `/` gone). */
export function normalise(name: string): string {
  return name.split("/").filter((c) => c !== "" && c !== ".").join("/");
}

/**
 * Checks that the members restore exactly what `tar -xf archive` extracts into `extracted`:
 * every regular file's bytes and length, directories, symlink targets, hard links.
 */
export async function assertSameAsExtracted(
  members: Collected[],
  extracted: string,
): Promise<void> {
  const onDisk = await walk(extracted);
  const seen = new Set<string>();
  for (const member of members) {
    const name = normalise(member.entry.name);
    seen.add(name);
    const info = onDisk.get(name);
    if (!info) throw new Error(`"${name}" was not extracted by tar`);
    const path = `${extracted}/${name}`;
    switch (member.entry.kind) {
      case "file":
      case "hardlink": {
        if (!info.isFile) throw new Error(`"${name}" is not a file on disk`);
        if (member.entry.kind === "hardlink") break;
        if (member.entry.size !== info.size) {
          throw new Error(`"${name}": size ${member.entry.size}, tar says ${info.size}`);
        }
        const expected = await Deno.readFile(path);
        const got = assemble(member);
        if (!equalBytes(got, expected)) throw new Error(`"${name}": content differs from tar -x`);
        break;
      }
      case "directory":
        if (!info.isDirectory) throw new Error(`"${name}" is not a directory on disk`);
        break;
      case "symlink":
        if (await Deno.readLink(path) !== member.entry.linkname) {
          throw new Error(`"${name}": link target differs`);
        }
        break;
    }
  }
  for (const name of onDisk.keys()) {
    if (!seen.has(name) && ![...seen].some((s) => s.startsWith(`${name}/`))) {
      throw new Error(`"${name}" was extracted by tar but not reported`);
    }
  }
}

/** Byte-wise equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Rewrites a header's checksum after a test changed its bytes. */
export function fixChecksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i]!;
  block.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
}

/** Expects `fn` to reject with an instance of `type` whose message contains `includes`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  type: abstract new (...args: never[]) => Error,
  includes = "",
): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof type)) {
      throw new Error(`expected ${type.name}, got ${String(error)}`, { cause: error });
    }
    if (!error.message.includes(includes)) {
      throw new Error(`expected a message with "${includes}", got "${error.message}"`);
    }
    return error;
  }
  throw new Error(`expected ${type.name}, nothing was thrown`);
}

/** The member's data events with adjacent ones joined (pieces split runs arbitrarily). */
export function mergeRuns(member: Collected): { offset: number; bytes: Uint8Array }[] {
  const merged: { offset: number; parts: Uint8Array[]; end: number }[] = [];
  for (const run of member.runs) {
    const last = merged.at(-1);
    if (last && last.end === run.offset) {
      last.parts.push(run.bytes);
      last.end += run.bytes.length;
    } else {merged.push({
        offset: run.offset,
        parts: [run.bytes],
        end: run.offset + run.bytes.length,
      });}
  }
  return merged.map((m) => {
    const bytes = new Uint8Array(m.end - m.offset);
    let at = 0;
    for (const part of m.parts) {
      bytes.set(part, at);
      at += part.length;
    }
    return { offset: m.offset, bytes };
  });
}
