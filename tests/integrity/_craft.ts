/**
 * Crafting hostile items inside a real backup: inner tar members no Qubes writer makes (built
 * block by block here: no real tool writes `..` members or a 1 PiB sparse map), put into a
 * format-3 backup made by the real tools in place of one item, with a valid HMAC recomputed
 * by `openssl dgst`.
 *
 * @module
 */

import { sh } from "../e2e/_cli.ts";
import { repack } from "../e2e/_surgery.ts";

const encoder = new TextEncoder();

/** One inner member to craft. */
export interface CraftMember {
  name: string;
  /** `0` file (default), `1` hard link, `2` symlink, `5` directory, `S` old-GNU sparse. */
  type?: "0" | "1" | "2" | "5" | "S";
  linkname?: string;
  data?: Uint8Array;
  /** For `S`: the logical size; the data is stored as one run ending at `realsize`. */
  realsize?: number;
}

function octal(value: number, length: number): Uint8Array {
  return encoder.encode(value.toString(8).padStart(length - 1, "0") + "\0");
}

/** Writes a tar header block (old GNU magic, as GNU tar's default format). */
export function headerBlock(member: CraftMember, size: number): Uint8Array {
  const block = new Uint8Array(512);
  block.set(encoder.encode(member.name).subarray(0, 100), 0);
  block.set(octal(member.type === "5" ? 0o755 : 0o644, 8), 100);
  block.set(octal(0, 8), 108);
  block.set(octal(0, 8), 116);
  block.set(octal(size, 12), 124);
  block.set(octal(1404216000, 12), 136);
  block[156] = (member.type ?? "0").charCodeAt(0);
  block.set(encoder.encode((member.linkname ?? "").slice(0, 100)), 157);
  block.set(encoder.encode("ustar  \0"), 257);
  if (member.type === "S") {
    const data = member.data ?? new Uint8Array(0);
    const realsize = member.realsize!;
    // One sparse entry at 386: offset, numbytes; realsize at 483.
    block.set(octal(realsize - data.length, 12), 386);
    block.set(octal(data.length, 12), 398);
    block.set(realsize > 0o77777777777 ? base256(realsize) : octal(realsize, 12), 483);
    if (realsize - data.length > 0o77777777777) block.set(base256(realsize - data.length), 386);
  }
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return block;
}

function base256(value: number): Uint8Array {
  const field = new Uint8Array(12);
  let v = BigInt(value);
  for (let i = 11; i > 0; i--) {
    field[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  field[0] = 0x80;
  return field;
}

/** A whole inner tar: the members, their data padded to blocks, the end marker. */
export function craftTar(members: CraftMember[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const member of members) {
    const data = member.data ?? new Uint8Array(0);
    parts.push(headerBlock(member, data.length));
    if (data.length > 0) {
      const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
      padded.set(data);
      parts.push(padded);
    }
  }
  parts.push(new Uint8Array(1024));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Replaces chunk `chunk` (a name in `dir`, an untarred uncompressed unencrypted format-2/3
 * backup) with `bytes`, writes its `.hmac` with `openssl dgst -sha512 -hmac`, and packs the
 * entries `names` into `out` as Qubes did.
 */
export async function replaceChunk(
  dir: string,
  names: string[],
  chunk: string,
  bytes: Uint8Array,
  passphrase: string,
  out: string,
): Promise<void> {
  await Deno.writeFile(`${dir}/${chunk}`, bytes);
  await rehmac(dir, chunk, passphrase);
  await repack(dir, names, out);
}

/** Writes `<chunk>.hmac` for the chunk's current bytes, in the `(stdin)= hex` form. */
export async function rehmac(dir: string, chunk: string, passphrase: string): Promise<void> {
  const hex = (await sh(
    `openssl dgst -sha512 -hmac '${passphrase}' < '${dir}/${chunk}'`,
  )).trim().replace(/^.*= /, "");
  await Deno.writeTextFile(`${dir}/${chunk}.hmac`, `(stdin)= ${hex}\n`);
}
