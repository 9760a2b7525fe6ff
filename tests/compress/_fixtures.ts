/**
 * Helpers for the decompression tests: fixtures made by the real compression tools, pieces of
 * odd sizes, and draining a stream into a hash.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { concat as concatPieces } from "../../lib/streams/mod.ts";

/** Runs `command` with `input` on standard input and returns its standard output. */
export async function runTool(command: string[], input: Uint8Array): Promise<Uint8Array> {
  const [program, ...args] = command;
  const child = new Deno.Command(program!, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const [output] = await Promise.all([
    child.output(),
    writer.write(input).then(() => writer.close()),
  ]);
  if (!output.success) {
    throw new Error(`${command.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return output.stdout;
}

/** Whether `program` can be run (for optional tools such as pbzip2). */
export async function hasTool(program: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("sh", {
      args: ["-c", `command -v ${program}`],
      stdout: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** Text lines, compressible the way logs and configuration files are. */
export function text(bytes: number, seed = 1): Uint8Array {
  const out = new Uint8Array(bytes);
  const encoder = new TextEncoder();
  let offset = 0;
  for (let line = seed; offset < bytes; line++) {
    const row = encoder.encode(
      `${line}\tvm${line % 97}\t/home/user/file-${(line * 7919) % 10007}.txt\tok ${line * 31}\n`,
    );
    out.set(row.subarray(0, bytes - offset), offset);
    offset += row.length;
  }
  return out;
}

/** Random bytes (incompressible). */
export function random(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let offset = 0; offset < bytes; offset += 65536) {
    crypto.getRandomValues(out.subarray(offset, offset + 65536));
  }
  return out;
}

/** Joins byte arrays. */
export function join(...parts: Uint8Array[]): Uint8Array {
  return concatPieces(parts);
}

/** A stream of `data` cut into pieces of `size` bytes. */
export function pieces(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.length) return controller.close();
      controller.enqueue(data.slice(offset, offset + size));
      offset += size;
    },
  }, { highWaterMark: 0 });
}

/** The SHA-256 of some bytes, in hex. */
export function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** What a stream yields: its length, SHA-256 and piece sizes. */
export interface Drained {
  length: number;
  sha256: string;
  sizes: number[];
}

/** Reads a stream to its end, hashing as it goes. */
export async function drain(stream: ReadableStream<Uint8Array>): Promise<Drained> {
  const hash = createHash("sha256");
  const sizes: number[] = [];
  let length = 0;
  for await (const piece of stream) {
    hash.update(piece);
    sizes.push(piece.length);
    length += piece.length;
  }
  return { length, sha256: hash.digest("hex"), sizes };
}
