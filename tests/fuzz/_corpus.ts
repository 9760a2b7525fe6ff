/**
 * Seed backups for the fuzzer: tiny backups of every format, built once with the real tools
 * (GNU tar, openssl, gzip, scrypt), read back into memory as their outer entries; for the
 * variants whose chunks hold the inner tar in the clear (or under scrypt, which the fuzzer can
 * redo), what is needed to re-authenticate a mutated chunk.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createCipheriv, createHash, createHmac, scryptSync } from "node:crypto";
import { buildBackup, type FixtureSpec } from "../support/mod.ts";
import { seededBytes, writeSparseFile } from "../support/vm_tree.ts";
import { sh } from "../e2e/_cli.ts";

export const FUZZ_PASS = "fuzz";

/** One outer entry of a backup. */
export interface Entry {
  name: string;
  data: Uint8Array;
}

/** How chunks of a variant can be re-authenticated after a mutation. */
export type Resign =
  | { kind: "hmac" } // formats 2 and 3: HMAC-SHA512 keyed with the passphrase
  | { kind: "scrypt"; backupId: string } // format 4: re-encrypted with the same parameters
  | { kind: "none" }; // format 1: nothing is authenticated

/** A seed backup. */
export interface Seed {
  label: string;
  format: 1 | 2 | 3 | 4;
  /** Outer entries in archive order (formats 2-4). */
  entries: Entry[];
  /** Format 1: the backup folder's files, relative path -> bytes. */
  files: Map<string, Uint8Array>;
  resign: Resign;
  /** Whether chunk data is the inner tar in the clear (format 4: once decrypted). */
  plainTar: boolean;
}

/** The seed variants: every format, small chunks, plain and protected. */
export const SEED_SPECS: ReadonlyArray<{ label: string; spec: Partial<FixtureSpec> }> = [
  { label: "v1", spec: { format: 1 } },
  { label: "v2-plain", spec: { format: 2, volumeKiB: 20 } },
  { label: "v2-gzip", spec: { format: 2, compressed: true, volumeKiB: 20 } },
  { label: "v2-enc", spec: { format: 2, encrypted: true, volumeKiB: 20 } },
  { label: "v3-plain", spec: { format: 3, chunkBytes: 16384 } },
  {
    label: "v3-enc-gzip",
    spec: { format: 3, encrypted: true, compressed: true, chunkBytes: 8192 },
  },
  { label: "v4-plain", spec: { format: 4, chunkBytes: 16384, scryptLogN: 10 } },
  { label: "v4-gzip", spec: { format: 4, compressed: true, chunkBytes: 8192, scryptLogN: 10 } },
];

/** Builds every seed under `root` (the source VMs first). */
export async function buildSeeds(root: string): Promise<Seed[]> {
  const work = `${root}/src/appvms/work`;
  const tpl = `${root}/src/vm-templates/tpl`;
  const home = `${root}/src/home/alice`;
  for (const dir of [work, tpl, `${home}/docs`]) await Deno.mkdir(dir, { recursive: true });
  await writeSparseFile(`${work}/private.img`, 1024 * 1024, [
    [0, seededBytes(20_000, 1)],
    [512 * 1024, seededBytes(12_000, 2)],
    [900 * 1024, seededBytes(3_000, 6)],
  ]);
  await Deno.writeTextFile(`${work}/firewall.xml`, `<QubesFirewallRules policy="allow"/>\n`);
  await writeSparseFile(`${tpl}/root.img`, 256 * 1024, [[4096, seededBytes(6_000, 3)]]);
  await Deno.writeFile(`${tpl}/private.img`, seededBytes(3000, 4));
  await Deno.symlink("private.img", `${tpl}/link.img`);
  await Deno.writeTextFile(`${home}/docs/notes.txt`, "my notes\n");
  await Deno.writeFile(`${home}/photo.bin`, seededBytes(5_000, 5));
  const vms = [
    { name: "tpl", qid: 3, kind: "template" as const, dir: tpl },
    { name: "work", qid: 5, kind: "app" as const, template: "tpl", dir: work },
  ];
  const seeds: Seed[] = [];
  for (const { label, spec } of SEED_SPECS) {
    const dir = `${root}/${label}`;
    await Deno.mkdir(dir);
    const built = await buildBackup({
      passphrase: FUZZ_PASS,
      vms,
      dom0Home: { user: "alice", dir: home },
      ...spec,
    } as FixtureSpec, dir);
    const format = spec.format!;
    const seed: Seed = {
      label,
      format,
      entries: [],
      files: new Map(),
      resign: format === 1
        ? { kind: "none" }
        : format === 4
        ? { kind: "scrypt", backupId: built.backupId! }
        : { kind: "hmac" },
      plainTar: !spec.encrypted && !spec.compressed,
    };
    if (format === 1) {
      const listing = (await sh(`cd '${built.path}' && find . -type f | sort`)).trim().split("\n");
      for (const path of listing) {
        const rel = path.replace(/^\.\//, "");
        seed.files.set(rel, await Deno.readFile(`${built.path}/${rel}`));
      }
    } else {
      const extracted = `${dir}/entries`;
      await Deno.mkdir(extracted);
      await sh(`tar -xif '${built.path}' -C '${extracted}'`);
      for (const name of built.chunkNames) {
        seed.entries.push({ name, data: await Deno.readFile(`${extracted}/${name}`) });
      }
    }
    seeds.push(seed);
  }
  return seeds;
}

// --- re-authentication (what an attacker who knows the passphrase can do) ---

/** The `.hmac` text of `data`, as `openssl dgst -sha512 -hmac` printed it in OpenSSL 1.0. */
export function hmacText(data: Uint8Array): Uint8Array {
  const hex = createHmac("sha512", FUZZ_PASS).update(data).digest("hex");
  return new TextEncoder().encode(`(stdin)= ${hex}\n`);
}

const keyCache = new Map<string, { enc: Uint8Array; mac: Uint8Array }>();

function scryptKeys(password: string, header: Uint8Array): { enc: Uint8Array; mac: Uint8Array } {
  const salt = header.subarray(16, 48);
  const cacheKey = `${password}\0${Buffer.from(salt).toString("hex")}\0${header[7]}`;
  let keys = keyCache.get(cacheKey);
  if (keys === undefined) {
    const view = new DataView(header.buffer, header.byteOffset, 16);
    const N = 2 ** header[7]!;
    const dk = scryptSync(password, salt, 64, {
      N,
      r: view.getUint32(8),
      p: view.getUint32(12),
      maxmem: 256 * 1024 * 1024,
    });
    keys = { enc: new Uint8Array(dk.subarray(0, 32)), mac: new Uint8Array(dk.subarray(32)) };
    keyCache.set(cacheKey, keys);
  }
  return keys;
}

/** The scrypt password of a format-4 file. */
export function scryptPassword(backupId: string, entryName: string): string {
  return entryName === "backup-header.hmac"
    ? `backup-header!${FUZZ_PASS}`
    : `${backupId}!${entryName.replace(/\.enc$/, "")}!${FUZZ_PASS}`;
}

function aesCtr(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const cipher = createCipheriv("aes-256-ctr", key, new Uint8Array(16));
  return Promise.resolve(new Uint8Array(Buffer.concat([cipher.update(data), cipher.final()])));
}

/** Decrypts a format-4 scrypt file made for `password` (no checks: the seed is genuine). */
export async function scryptDecrypt(password: string, file: Uint8Array): Promise<Uint8Array> {
  const { enc } = scryptKeys(password, file.subarray(0, 96));
  return await aesCtr(enc, file.subarray(96, file.length - 32));
}

/** Encrypts `plain` as an scrypt file with the parameters and salt of `template`. */
export async function scryptEncrypt(
  password: string,
  template: Uint8Array,
  plain: Uint8Array,
): Promise<Uint8Array> {
  const header = template.slice(0, 96);
  header.set(createHash("sha256").update(header.subarray(0, 48)).digest().subarray(0, 16), 48);
  const { enc, mac } = scryptKeys(password, header);
  header.set(createHmac("sha256", mac).update(header.subarray(0, 64)).digest(), 64);
  const body = await aesCtr(enc, plain);
  const out = new Uint8Array(96 + body.length + 32);
  out.set(header);
  out.set(body, 96);
  out.set(
    createHmac("sha256", mac).update(out.subarray(0, 96 + body.length)).digest(),
    96 + body.length,
  );
  return out;
}
