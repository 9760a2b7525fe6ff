/**
 * Seeded mutations of a backup's outer entries: byte flips, truncations, insertions, deleted,
 * duplicated, reordered and renamed entries, swapped chunks, edited header fields, edited
 * `.hmac` files, edited scrypt parameters; and mutations that re-authenticate what they change
 * (recomputed HMACs, re-encrypted scrypt files): edited inner tar headers, sparse maps and
 * qubes.xml text, so that the parsers behind the checks are exercised too.
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  type Entry,
  hmacText,
  scryptDecrypt,
  scryptEncrypt,
  scryptPassword,
  type Seed,
} from "./_corpus.ts";

/** A small deterministic PRNG (mulberry32). */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** A mutated backup: its entries, and whether the mutation re-authenticated what it changed. */
export interface Mutant {
  entries: Entry[];
  /** Format 1: the folder's files (a `null` value: make it a FIFO; a string: a symlink). */
  files: Map<string, Uint8Array | string | null>;
  /** What was done, for a failure report. */
  steps: string[];
  /** True when some step re-signed data: the output may then differ from the seed's. */
  resigned: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Step = (rng: Rng, seed: Seed, m: Mutant) => Promise<string | undefined>;

function chunkIndexes(m: Mutant): number[] {
  return m.entries.flatMap((e, i) => /\.[0-9]+(\.enc)?$/.test(e.name) ? [i] : []);
}

const flip: Step = (rng, _seed, m) => {
  const e = rng.pick(m.entries);
  if (e.data.length === 0) return Promise.resolve(undefined);
  const at = rng.int(e.data.length);
  e.data = e.data.slice();
  e.data[at]! ^= 1 + rng.int(255);
  return Promise.resolve(`flip ${e.name}@${at}`);
};

const truncate: Step = (rng, _seed, m) => {
  const e = rng.pick(m.entries);
  const at = rng.int(e.data.length + 1);
  e.data = e.data.slice(0, at);
  return Promise.resolve(`truncate ${e.name} to ${at}`);
};

const insert: Step = (rng, _seed, m) => {
  const e = rng.pick(m.entries);
  const at = rng.int(e.data.length + 1);
  const extra = rng.bytes(1 + rng.int(64));
  const out = new Uint8Array(e.data.length + extra.length);
  out.set(e.data.subarray(0, at));
  out.set(extra, at);
  out.set(e.data.subarray(at), at + extra.length);
  e.data = out;
  return Promise.resolve(`insert ${extra.length} at ${e.name}@${at}`);
};

const remove: Step = (rng, _seed, m) => {
  const i = rng.int(m.entries.length);
  const [gone] = m.entries.splice(i, 1);
  return Promise.resolve(`delete ${gone!.name}`);
};

const duplicate: Step = (rng, _seed, m) => {
  const e = rng.pick(m.entries);
  m.entries.splice(rng.int(m.entries.length + 1), 0, { name: e.name, data: e.data });
  return Promise.resolve(`duplicate ${e.name}`);
};

const reorder: Step = (rng, _seed, m) => {
  const a = rng.int(m.entries.length);
  const b = rng.int(m.entries.length);
  [m.entries[a], m.entries[b]] = [m.entries[b]!, m.entries[a]!];
  return Promise.resolve(`reorder ${a}<->${b}`);
};

/** Swaps the contents of two chunks of one item with their .hmac files (names stay). */
const swapChunks: Step = (rng, _seed, m) => {
  const chunks = chunkIndexes(m);
  const byItem = new Map<string, number[]>();
  for (const i of chunks) {
    const item = m.entries[i]!.name.replace(/\.[0-9]+(\.enc)?$/, "");
    byItem.set(item, [...(byItem.get(item) ?? []), i]);
  }
  const candidates = [...byItem.values()].filter((l) => l.length >= 2);
  if (candidates.length === 0) return Promise.resolve(undefined);
  const list = rng.pick(candidates);
  const a = rng.pick(list);
  const b = rng.pick(list.filter((i) => i !== a));
  const ea = m.entries[a]!;
  const eb = m.entries[b]!;
  [ea.data, eb.data] = [eb.data, ea.data];
  const ha = m.entries.find((e) => e.name === `${ea.name}.hmac`);
  const hb = m.entries.find((e) => e.name === `${eb.name}.hmac`);
  if (ha && hb) [ha.data, hb.data] = [hb.data, ha.data];
  return Promise.resolve(`swap chunks ${ea.name}<->${eb.name}`);
};

const rename: Step = (rng, _seed, m) => {
  const e = rng.pick(m.entries);
  const options = [
    e.name.replace(/\.([0-9]+)/, (_, d: string) => `.${String(Number(d) + 1).padStart(3, "0")}`),
    e.name.replace(/^vm[0-9]+/, "vm9"),
    e.name.replace(/private\.img/, "root.img"),
    `../${e.name}`,
    `/${e.name}`,
    e.name.replace(/\.hmac$/, ""),
    `${e.name}\n.000`,
    "",
  ];
  const old = e.name;
  e.name = rng.pick(options);
  return Promise.resolve(`rename ${old} -> ${JSON.stringify(e.name)}`);
};

const HEADER_EDITS: Array<[RegExp, string[]]> = [
  [/^version=.*$/m, ["version=2", "version=3", "version=4", "version=5", "version=", "version=x"]],
  [/^encrypted=.*$/m, ["encrypted=True", "encrypted=False", "encrypted=maybe"]],
  [/^compressed=.*$/m, ["compressed=True", "compressed=False"]],
  [/^compression-filter=.*$/m, ["compression-filter=bzip2", "compression-filter=rm -rf", ""]],
  [/^hmac-algorithm=.*$/m, ["hmac-algorithm=SHA1", "hmac-algorithm=MD5", "hmac-algorithm=nope"]],
  [/^crypto-algorithm=.*$/m, ["crypto-algorithm=aes-128-cbc", "crypto-algorithm=des"]],
  [/^backup-id=.*$/m, ["backup-id=other", "backup-id="]],
];

/** Edits a backup-header field; re-HMACs it (formats 2, 3) when `resign`. */
function headerEdit(resign: boolean): Step {
  return (rng, seed, m) => {
    const e = m.entries.find((x) => x.name === "backup-header");
    if (!e) return Promise.resolve(undefined);
    const [pattern, values] = rng.pick(HEADER_EDITS);
    const value = rng.pick(values);
    const text = decoder.decode(e.data);
    e.data = encoder.encode(
      pattern.test(text) ? text.replace(pattern, value) : `${text}${value}\n`,
    );
    if (resign && seed.resign.kind === "hmac") {
      const h = m.entries.find((x) => x.name === "backup-header.hmac");
      if (h) h.data = hmacText(e.data);
      m.resigned = true;
    }
    return Promise.resolve(`header ${value}${resign ? " (re-HMAC)" : ""}`);
  };
}

const hmacEdit: Step = (rng, _seed, m) => {
  const hmacs = m.entries.filter((e) => e.name.endsWith(".hmac"));
  if (hmacs.length === 0) return Promise.resolve(undefined);
  const e = rng.pick(hmacs);
  e.data = encoder.encode(
    rng.pick([
      "",
      "(stdin)= \n",
      "garbage\nsecond line\x1b[2J\n",
      "(stdin)= 00\n",
      "x".repeat(5000),
    ]),
  );
  return Promise.resolve(`hmac text ${e.name}`);
};

/** Edits scrypt logN/r/p of a format-4 file and fixes the unkeyed checksum. */
const scryptParams: Step = (rng, seed, m) => {
  if (seed.format !== 4) return Promise.resolve(undefined);
  const files = m.entries.filter((e) => e.name.endsWith(".enc") || e.name === "backup-header.hmac");
  const e = rng.pick(files);
  if (e.data.length < 96) return Promise.resolve(undefined);
  e.data = e.data.slice();
  const view = new DataView(e.data.buffer);
  // Cheap or refused values only: logN above 21 is refused before any work.
  e.data[7] = rng.pick([0, 1, 9, 11, 14, 22, 40, 64, 255]);
  if (rng.next() < 0.5) view.setUint32(8, rng.pick([0, 1, 8, 16, 0xffffffff]));
  if (rng.next() < 0.5) view.setUint32(12, rng.pick([0, 1, 2, 16, 1 << 30]));
  e.data.set(createHash("sha256").update(e.data.subarray(0, 48)).digest().subarray(0, 16), 48);
  return Promise.resolve(`scrypt params ${e.name} logN=${e.data[7]}`);
};

/** The plaintext of a chunk (plain variants; format 4 decrypted) and a way to put it back. */
async function openChunk(
  seed: Seed,
  m: Mutant,
  e: Entry,
): Promise<{ plain: Uint8Array; seal: (plain: Uint8Array) => Promise<void> } | undefined> {
  if (!seed.plainTar) return undefined;
  if (seed.resign.kind === "hmac") {
    return {
      plain: e.data.slice(),
      seal: (plain) => {
        e.data = plain;
        const h = m.entries.find((x) => x.name === `${e.name}.hmac`);
        if (h) h.data = hmacText(plain);
        return Promise.resolve();
      },
    };
  }
  if (seed.resign.kind === "scrypt") {
    if (e.data.length < 128) return undefined;
    // An earlier step may have edited this file's scrypt header (parameters that are refused,
    // or that would derive other keys): such a file is left as it is.
    const original = seed.entries.find((x) => x.name === e.name)?.data.subarray(0, 96);
    const header = e.data.subarray(0, 96);
    if (original === undefined || original.some((byte, i) => byte !== header[i])) return undefined;
    const password = scryptPassword(seed.resign.backupId, e.name);
    const template = e.data;
    return {
      plain: await scryptDecrypt(password, template),
      seal: async (plain) => {
        e.data = await scryptEncrypt(password, template, plain);
      },
    };
  }
  return undefined;
}

function checksumOk(block: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  const text = decoder.decode(block.subarray(148, 156)).replace(/[\0 ]/g, "");
  return text !== "" && parseInt(text, 8) === sum && block[156] !== 0;
}

function fixChecksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i]!;
  block.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
}

function octal(value: number, length: number): Uint8Array {
  return encoder.encode(value.toString(8).padStart(length - 1, "0").slice(-(length - 1)) + "\0");
}

const NUMBERS = [0, 1, 511, 512, 513, 4096, 65536, 2 ** 20, 2 ** 33 - 1, 0o77777777777];

/** Edits a tar header inside a chunk (a field, or a sparse map entry) and re-authenticates. */
function tarEdit(sparseOnly: boolean): Step {
  return async (rng, seed, m) => {
    const candidates = chunkIndexes(m).map((i) => m.entries[i]!);
    if (candidates.length === 0) return undefined;
    const e = rng.pick(candidates);
    const chunk = await openChunk(seed, m, e);
    if (!chunk) return undefined;
    const { plain } = chunk;
    const headers: number[] = [];
    for (let at = 0; at + 512 <= plain.length; at += 512) {
      const block = plain.subarray(at, at + 512);
      if (checksumOk(block) && (!sparseOnly || block[156] === 0x53)) headers.push(at);
    }
    if (headers.length === 0) return undefined;
    const at = rng.pick(headers);
    const block = plain.subarray(at, at + 512);
    const fields: Array<[string, () => void]> = [
      ["size", () => block.set(octal(rng.pick(NUMBERS), 12), 124)],
      [
        "typeflag",
        () => (block[156] = rng.pick([
          0x30,
          0x31,
          0x32,
          0x35,
          0x53,
          0x4c,
          0x78,
          0x4d,
          0x67,
          0x00,
          0x37,
        ])),
      ],
      [
        "name",
        () =>
          block.set(
            encoder.encode(
              rng.pick(["../../x\0", "/etc/passwd\0", "vm5/private.img\0", "\0", "a/./b\0"]),
            ),
            0,
          ),
      ],
      [
        "linkname",
        () =>
          block.set(encoder.encode(rng.pick(["/etc/passwd\0", "../../..\0", "\0", "x\0"])), 157),
      ],
      ["mode", () => block.set(octal(rng.pick([0, 0o777, 0o4755, 0o7777]), 8), 100)],
      [
        "realsize",
        () => block.set(rng.next() < 0.3 ? baseNumber(rng) : octal(rng.pick(NUMBERS), 12), 483),
      ],
      ["sparse entry", () => block.set(octal(rng.pick(NUMBERS), 12), 386 + 12 * rng.int(8))],
      ["extended flag", () => (block[482] = rng.pick([0, 1]))],
      ["random bytes", () => block.set(rng.bytes(8), rng.int(504))],
    ];
    const usable = sparseOnly ? fields.filter(([f]) => /sparse|realsize|extended/.test(f)) : fields;
    const [field, apply] = rng.pick(usable);
    apply();
    fixChecksum(block);
    await chunk.seal(plain);
    m.resigned = true;
    return `tar ${field} in ${e.name}@${at} (re-signed)`;
  };
}

function baseNumber(rng: Rng): Uint8Array {
  const field = new Uint8Array(12);
  field[0] = 0x80;
  field.set(rng.bytes(4), 8);
  field[4] = rng.pick([0, 1, 0x7f, 0xff]);
  return field;
}

const XML_EDITS: Array<[RegExp, string[]]> = [
  [/backup_content="True"/, ['backup_content="False"', 'backup_content="True"']],
  [/name="work"/, ['name="../evil"', 'name="tpl"', 'name=""', 'name="dom0"', 'name="a/b"']],
  [/backup_path="[^"]*"/, [
    'backup_path="vm3"',
    'backup_path="../x"',
    'backup_path=""',
    'backup_path="vm5/.."',
  ]],
  [/template_qid="3"/, ['template_qid="none"', 'template_qid="99"']],
  [/<QubesAppVm [^>]*\/>/, [""]],
  [/save_on_stop="True"/, ['save_on_stop="False"', ""]],
  [/<feature name="backup-content">1<\/feature>/, ['<feature name="backup-content"/>', ""]],
  [/<feature name="backup-path">[^<]*<\/feature>/, [
    '<feature name="backup-path">vm3/</feature>',
    '<feature name="backup-path">../../</feature>',
  ]],
  [/<\/domains>/, ["</domains><!DOCTYPE x>", "</domains>"]],
];

/** Edits the text of qubes.xml (re-packed in its tar, re-authenticated). */
const xmlEdit: Step = async (rng, seed, m) => {
  const e = m.entries.find((x) => /^qubes\.xml\.000(\.enc)?$/.test(x.name));
  if (!e) return undefined;
  const chunk = await openChunk(seed, m, e);
  if (!chunk || chunk.plain.length < 512) return undefined; // truncated by an earlier step
  const header = chunk.plain.slice(0, 512);
  const size = parseInt(decoder.decode(header.subarray(124, 136)).replace(/\0/g, ""), 8);
  let text = decoder.decode(chunk.plain.subarray(512, 512 + size));
  const [pattern, values] = rng.pick(XML_EDITS);
  const value = rng.pick(values);
  text = text.replace(pattern, value);
  const data = encoder.encode(text);
  header.set(octal(data.length, 12), 124);
  fixChecksum(header);
  const out = new Uint8Array(512 + Math.ceil(data.length / 512) * 512 + 1024);
  out.set(header);
  out.set(data, 512);
  await chunk.seal(out);
  m.resigned = true;
  return `qubes.xml ${pattern.source} -> ${value} (re-signed)`;
};

const STEPS: Array<[number, Step]> = [
  [10, flip],
  [5, truncate],
  [4, insert],
  [5, remove],
  [3, duplicate],
  [4, reorder],
  [5, swapChunks],
  [3, rename],
  [3, headerEdit(false)],
  [3, headerEdit(true)],
  [2, hmacEdit],
  [4, scryptParams],
  [10, tarEdit(false)],
  [6, tarEdit(true)],
  [5, xmlEdit],
];
const TOTAL = STEPS.reduce((n, [w]) => n + w, 0);

/** Format 1: edits of the folder's files. */
function mutateFolder(rng: Rng, m: Mutant): string {
  const names = [...m.files.keys()];
  const name = rng.pick(names);
  const data = m.files.get(name);
  switch (rng.int(6)) {
    case 0:
      m.files.delete(name);
      return `delete ${name}`;
    case 1:
      m.files.set(name, null);
      return `fifo ${name}`;
    case 2:
      m.files.set(name, rng.pick(["/dev/zero", "/etc/passwd", "../../../etc", "private.img"]));
      return `symlink ${name}`;
    case 3:
      if (data instanceof Uint8Array) m.files.set(name, data.slice(0, rng.int(data.length + 1)));
      return `truncate ${name}`;
    case 4: {
      if (data instanceof Uint8Array && data.length > 0) {
        const copy = data.slice();
        copy[rng.int(copy.length)]! ^= 0xff;
        m.files.set(name, copy);
      }
      return `flip ${name}`;
    }
    default: {
      const xml = m.files.get("qubes.xml");
      if (xml instanceof Uint8Array) {
        const [pattern, values] = rng.pick(XML_EDITS);
        m.files.set(
          "qubes.xml",
          encoder.encode(decoder.decode(xml).replace(pattern, rng.pick(values))),
        );
      }
      return "qubes.xml edit";
    }
  }
}

/** Applies 1-3 seeded mutations to a copy of `seed`. */
export async function mutate(seed: Seed, caseSeed: number): Promise<Mutant> {
  const rng = new Rng(caseSeed);
  const m: Mutant = {
    entries: seed.entries.map((e) => ({ ...e })),
    files: new Map(seed.files),
    steps: [],
    resigned: seed.format === 1,
  };
  const count = 1 + rng.int(3);
  for (let i = 0; i < count; i++) {
    if (seed.format === 1) {
      m.steps.push(mutateFolder(rng, m));
      continue;
    }
    if (m.entries.length === 0) break;
    let roll = rng.int(TOTAL);
    let step = STEPS[0]![1];
    for (const [weight, s] of STEPS) {
      if (roll < weight) {
        step = s;
        break;
      }
      roll -= weight;
    }
    const done = await step(rng, seed, m);
    if (done !== undefined) m.steps.push(done);
  }
  return m;
}
