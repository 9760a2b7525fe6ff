/**
 * Runs fuzz cases in process: each mutant is written out (an outer tar, or a folder for
 * format 1), restored with the library's `restoreBackup` (and, for every fourth case, verified
 * with `verifyBackup`), and the outcome judged: a correct restore or a clean one-line
 * `RecoverError`; never another error (the CLI's exit 1), a hang, an unhandled rejection, a
 * file outside the output folder, a partial file left behind, or success with output that
 * differs from the seed's when nothing was re-authenticated.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { restoreBackup, type RestoreOptions, verifyBackup } from "../../lib/commands/mod.ts";
import type { SalvagedFile } from "../../lib/salvage/writer.ts";
import { RecoverError } from "../../lib/errors.ts";
import { useHmacWorker } from "../../lib/verify/mod.ts";
import { type Entry, FUZZ_PASS, type Seed } from "./_corpus.ts";
import { type Mutant, mutate } from "./_mutate.ts";

const encoder = new TextEncoder();
const CASE_TIMEOUT_MS = 60_000;
/** Resident memory no case may push the process over (README: a few hundred MiB). */
export const MEMORY_BOUND = 1024 * 1024 * 1024;

/** Writes entries as an outer archive: one ustar member each (names over 100 bytes: prefix). */
export function outerTar(entries: Entry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const { name, data } of entries) {
    const header = new Uint8Array(512);
    const bytes = encoder.encode(name);
    if (bytes.length > 100) {
      const cut = name.lastIndexOf("/", 155);
      header.set(encoder.encode(name.slice(cut + 1)).subarray(0, 100), 0);
      header.set(encoder.encode(name.slice(0, Math.max(cut, 0))).subarray(0, 155), 345);
    } else header.set(bytes, 0);
    header.set(encoder.encode("0000644\0"), 100);
    header.set(encoder.encode("0000000\0"), 108);
    header.set(encoder.encode("0000000\0"), 116);
    header.set(encoder.encode(data.length.toString(8).padStart(11, "0") + "\0"), 124);
    header.set(encoder.encode("14750000000\0"), 136);
    header[156] = 0x30;
    header.set(encoder.encode("ustar\x0000"), 257);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    parts.push(header, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * What a tree holds: path -> kind, size and content hash (data, link target). Files larger
 * than `hashLimit` are not read (a restored image may be sparse and huge).
 */
export async function describe(
  dir: string,
  hashLimit = 64 * 1024 * 1024,
  rel = "",
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(rel === "" ? dir : `${dir}/${rel}`)) {
    const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
    const full = `${dir}/${path}`;
    if (entry.isSymlink) out.set(path, `link ${await Deno.readLink(full)}`);
    else if (entry.isDirectory) {
      out.set(path, "dir");
      for (const [k, v] of await describe(dir, hashLimit, path)) out.set(k, v);
    } else {
      const info = await Deno.lstat(full);
      const hash = info.size <= hashLimit
        ? createHash("sha256").update(await Deno.readFile(full)).digest("hex")
        : "not hashed";
      out.set(path, `${info.isFile ? "file" : "other"} ${info.size} ${hash}`);
    }
  }
  return out;
}

/**
 * Files Qubes backed up only when they existed: no format records them, so a backup without
 * one is complete as far as anything can tell (docs/security.md).
 */
const OPTIONAL = new Set([
  "firewall.xml",
  "whitelisted-appmenus.list",
  "icon.png",
  "notes.txt",
  "apps",
  "apps.templates",
  "kernels",
]);

/** Whether `got` is `expected` with some optional files (only) left out. */
function onlyOptionalMissing(got: Map<string, string>, expected: Map<string, string>): boolean {
  if (![...got].every(([k, v]) => expected.get(k) === v)) return false;
  const missing = [...expected.keys()].filter((k) => !got.has(k));
  return missing.length > 0 && missing.every((k) => OPTIONAL.has(k.slice(k.lastIndexOf("/") + 1)));
}

/** The outcome counts of a run. */
export interface FuzzStats {
  cases: number;
  restored: number;
  restoredResigned: number;
  /** Exit code -> cases. */
  errors: Map<number, number>;
  failures: string[];
  maxRss: number;
  /** Cases restored despite a documented unverifiable change (uncompressed v3 chunk order). */
  unverifiable: number;
  /** Cases restored without an optional file whose item was deleted (nothing records them). */
  optionalMissing: number;
  /** `--salvage`: what the second restore of each failed case did. */
  salvage: SalvageStats;
}

/**
 * The outcomes of the `--salvage` restores: run for every failed case.
 */
export interface SalvageStats {
  /** Restores with `--salvage`. */
  runs: number;
  /** Runs that wrote at least one `.salvaged` file. */
  withFiles: number;
  /** `.salvaged` files written. */
  files: number;
  /** Of those, files with lost ranges (the others are complete members of a damaged item). */
  withLost: number;
  /** Of `files`, those checked byte by byte against the seed's original. */
  checked: number;
  /** Items that could not be salvaged (said why). */
  notSalvaged: number;
}

export function newStats(): FuzzStats {
  return {
    cases: 0,
    restored: 0,
    restoredResigned: 0,
    errors: new Map(),
    failures: [],
    maxRss: 0,
    unverifiable: 0,
    optionalMissing: 0,
    salvage: { runs: 0, withFiles: 0, files: 0, withLost: 0, checked: 0, notSalvaged: 0 },
  };
}

async function writeMutant(seed: Seed, m: Mutant, sandbox: string): Promise<string> {
  if (seed.format !== 1) {
    const path = `${sandbox}/backup`;
    await Deno.writeFile(path, outerTar(m.entries));
    return path;
  }
  const dir = `${sandbox}/backup`;
  for (const [rel, data] of m.files) {
    const path = `${dir}/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (data === null) {
      await new Deno.Command("mkfifo", { args: [path] }).output();
    } else if (typeof data === "string") await Deno.symlink(data, path);
    else await Deno.writeFile(path, data);
  }
  return dir;
}

let unhandled: unknown[] = [];
/**
 * Whether a case runs: only then is an unhandled rejection taken as the case's failure. Outside
 * cases it stays Deno's error, since `preventDefault()` would also swallow an error escaping the
 * main module, and Deno would then end the process with status 0 (the fuzz runs that once ended
 * silently).
 */
let inCase = false;
globalThis.addEventListener("unhandledrejection", (event) => {
  if (!inCase) return;
  event.preventDefault();
  unhandled.push(event.reason);
});

type Outcome = { ok: true } | { ok: false; error: unknown };

async function attempt(run: () => Promise<unknown>): Promise<Outcome | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), CASE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      run().then(() => ({ ok: true as const }), (error) => ({ ok: false as const, error })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function judgeError(error: unknown): string | undefined {
  if (!(error instanceof RecoverError)) {
    return `not a RecoverError (exit 1): ${error instanceof Error ? error.stack : String(error)}`;
  }
  if (error.message.includes("\n") || error.message.includes("\r")) {
    return `error message has more than one line: ${JSON.stringify(error.message)}`;
  }
  if (error.exitCode === 1 || error.exitCode === 2 || error.exitCode === 130) {
    return `unexpected exit code ${error.exitCode}: ${error.message}`;
  }
  return undefined;
}

/**
 * Runs one case: mutates `seed` with `caseSeed`, restores (and maybe verifies) it in a fresh
 * sandbox under `work`, judges the outcome into `stats`.
 */
export async function runCase(
  seed: Seed,
  expected: Map<string, string>,
  caseSeed: number,
  work: string,
  stats: FuzzStats,
  originals?: Map<string, Uint8Array>,
): Promise<void> {
  inCase = true;
  try {
    await runCaseInner(seed, expected, caseSeed, work, stats, originals);
  } finally {
    inCase = false;
  }
}

async function runCaseInner(
  seed: Seed,
  expected: Map<string, string>,
  caseSeed: number,
  work: string,
  stats: FuzzStats,
  originals?: Map<string, Uint8Array>,
): Promise<void> {
  const m = await mutate(seed, caseSeed);
  const sandbox = await Deno.makeTempDir({ dir: work, prefix: "case-" });
  const fail = (what: string) =>
    stats.failures.push(`${seed.label} seed ${caseSeed} [${m.steps.join("; ")}]: ${what}`);
  try {
    const backup = await writeMutant(seed, m, sandbox);
    const out = `${sandbox}/out`;
    const warnings: string[] = [];
    unhandled = [];
    const options = {
      passphrase: () => Promise.resolve(encoder.encode(FUZZ_PASS)),
      reporter: { info() {}, warn: (message: string) => void warnings.push(message) },
    };
    const restored = await attempt(() => restoreBackup(backup, { ...options, output: out }));
    stats.cases++;
    if (restored === "timeout") return void fail("restore did not end (hang)");
    if (restored.ok) {
      if (m.resigned) stats.restoredResigned++;
      else {
        const got = await describe(out);
        const same = got.size === expected.size &&
          [...got].every(([k, v]) => expected.get(k) === v);
        if (same) stats.restored++;
        else if (warnings.some((w) => w.includes("cannot be checked"))) stats.unverifiable++;
        else if (onlyOptionalMissing(got, expected)) stats.optionalMissing++;
        else fail("exit 0 with output that differs from the authenticated backup");
      }
    } else {
      const problem = judgeError(restored.error);
      if (problem !== undefined) fail(problem);
      if (restored.error instanceof RecoverError && restored.error.exitCode === 7) {
        fail(`exit 7 in a fresh output folder: ${restored.error.message}`);
      }
      const code = restored.error instanceof RecoverError ? restored.error.exitCode : 1;
      stats.errors.set(code, (stats.errors.get(code) ?? 0) + 1);
      // Every failed case (salvage is built for every format, docs/salvage.md).
      if (originals !== undefined) {
        // The seed's originals are the reference only when nothing was re-authenticated and
        // no change went unchecked (warned).
        const exact = !m.resigned && !warnings.some((w) => w.includes("cannot be checked"));
        await salvageCase(backup, `${sandbox}/salvage`, options, {
          expected: exact ? expected : undefined,
          originals: exact ? originals : undefined,
          stats,
          fail,
          warnings,
        });
      }
    }
    if (caseSeed % 4 === 0) {
      const verified = await attempt(() => verifyBackup(backup, options));
      if (verified === "timeout") fail("verify did not end (hang)");
      else if (verified.ok !== restored.ok) {
        fail(`verify ${verified.ok ? "succeeded" : "failed"} where restore did not`);
      } else if (!verified.ok && !restored.ok) {
        const a = verified.error instanceof RecoverError ? verified.error.exitCode : 1;
        const b = restored.error instanceof RecoverError ? restored.error.exitCode : 1;
        if (a !== b && b !== 7) fail(`verify exit ${a}, restore exit ${b}`);
      }
    }
    if (unhandled.length > 0) fail(`unhandled rejection: ${String(unhandled[0])}`);
    // Nothing outside the output folder, nothing partial inside it.
    for await (const entry of Deno.readDir(sandbox)) {
      if (!["backup", "out", "salvage"].includes(entry.name)) {
        fail(`wrote "${entry.name}" outside`);
      }
    }
    for (const folder of [out, `${sandbox}/salvage`]) {
      try {
        for (const path of (await describe(folder, 0)).keys()) {
          if (path.includes("qubes-recover-partial")) fail(`left "${path}" behind`);
        }
      } catch {
        // No output folder: nothing written.
      }
    }
    const rss = Deno.memoryUsage().rss;
    if (rss > stats.maxRss) stats.maxRss = rss;
    if (rss > MEMORY_BOUND) fail(`memory ${Math.round(rss / 2 ** 20)} MiB, over the bound`);
  } finally {
    await Deno.remove(sandbox, { recursive: true }).catch(async () => {
      await new Deno.Command("chmod", { args: ["-R", "u+rwx", sandbox] }).output();
      await Deno.remove(sandbox, { recursive: true });
    });
  }
}

/**
 * The `--salvage` restore of a case whose restore failed, into `out`, judged: a clean error
 * (never success when something was salvaged); each `NAME.salvaged` has its `.json` in the
 * documented shape; and, when `expected` and `originals` (the seed's restored files) are the
 * reference, every file under a real name is the original's, and each salvaged file has the
 * original's size and bytes outside its lost ranges, zeros inside.
 */
async function salvageCase(
  backup: string,
  out: string,
  options: {
    passphrase: () => Promise<Uint8Array>;
    reporter: NonNullable<RestoreOptions["reporter"]>;
  },
  judge: {
    expected: Map<string, string> | undefined;
    originals: Map<string, Uint8Array> | undefined;
    stats: FuzzStats;
    fail: (what: string) => void;
    /** The warnings of the case so far (the salvage run adds its own). */
    warnings: string[];
  },
): Promise<void> {
  const { expected, originals } = judge;
  const { stats, fail } = judge;
  const told: SalvagedFile[] = [];
  let notSalvaged = 0;
  stats.salvage.runs++;
  const result = await attempt(() =>
    restoreBackup(backup, {
      ...options,
      output: out,
      salvage: true,
      onSalvaged: (file) => void told.push(file),
      onNotSalvaged: () => void notSalvaged++,
    })
  );
  if (result === "timeout") return void fail("restore --salvage did not end (hang)");
  stats.salvage.notSalvaged += notSalvaged;
  if (result.ok) {
    if (told.length > 0) fail(`restore --salvage exit 0 with ${told.length} salvaged files`);
  } else {
    const problem = judgeError(result.error);
    if (problem !== undefined) fail(`restore --salvage: ${problem}`);
  }
  let got: Map<string, string>;
  try {
    got = await describe(out);
  } catch {
    got = new Map();
  }
  const salvaged = [...got].filter(([k, v]) => k.endsWith(".salvaged") && v.startsWith("file"));
  if (salvaged.length !== told.length) {
    fail(`restore --salvage told ${told.length} salvaged files, wrote ${salvaged.length}`);
  }
  if (salvaged.length > 0) stats.salvage.withFiles++;
  // A damaged qubes.xml: items are restored under their backup paths (`appvms/work/...`),
  // compared with the original of the same VM path (`work/...`).
  const noCatalog = judge.warnings.some((w) => w.includes("qubes.xml cannot be read"));
  const reference = <T>(map: Map<string, T> | undefined, path: string): T | undefined => {
    const found = map?.get(path);
    if (found !== undefined || !noCatalog) return found;
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const suffix = map?.get(parts.slice(i).join("/"));
      if (suffix !== undefined) return suffix;
    }
    return undefined;
  };
  // With VM names hidden (`vm5/...`) the backup path does not name the VM: the same file name
  // with the same description (kind, size, hash) in the seed.
  const sameNamed = (path: string, what: string) =>
    noCatalog &&
    [...(expected ?? [])].some(([name, want]) =>
      want === what && name.split("/").at(-1) === path.split("/").at(-1)
    );
  for (const [path, what] of got) {
    if (path.endsWith(".salvaged") || path.endsWith(".salvaged.json")) continue;
    if (expected !== undefined && reference(expected, path) !== what && !sameNamed(path, what)) {
      fail(`restore --salvage: "${path}" under its real name differs from the original`);
    }
  }
  for (const [path] of salvaged) {
    stats.salvage.files++;
    const name = path.slice(0, -".salvaged".length);
    let record: SalvagedFile;
    try {
      record = JSON.parse(await Deno.readTextFile(`${out}/${path}.json`));
    } catch (error) {
      fail(`"${path}" without a readable .json: ${String(error)}`);
      continue;
    }
    const shapeProblem = salvagedShape(record, name);
    if (shapeProblem !== undefined) {
      fail(`"${path}.json": ${shapeProblem}`);
      continue;
    }
    if (record.lost.length > 0) stats.salvage.withLost++;
    // Sized before reading: a re-authenticated change may make a huge sparse file.
    const size = (await Deno.lstat(`${out}/${path}`)).size;
    if (size !== record.size) fail(`"${path}" is ${size} bytes, its .json says ${record.size}`);
    if (originals === undefined) continue;
    const original = reference(originals, name);
    // Without qubes.xml, a hidden VM path (`vm5/private.img`) names no original: not compared.
    if (original === undefined && noCatalog) continue;
    if (original === undefined) {
      fail(`"${path}": the seed has no file "${name}"`);
      continue;
    }
    stats.salvage.checked++;
    if (size !== original.length) {
      fail(`"${path}" is ${size} bytes, the original ${original.length}`);
      continue;
    }
    const data = await Deno.readFile(`${out}/${path}`);
    const lost = new Uint8Array(data.length);
    for (const range of record.lost) lost.fill(1, range.offset, range.offset + range.length);
    // Verified bytes whose place is not authenticated (listed as such): not compared.
    for (const range of record.unchecked ?? []) {
      lost.fill(2, range.offset, range.offset + range.length);
    }
    for (let i = 0; i < data.length; i++) {
      if (lost[i] === 2) continue;
      const want = lost[i] === 1 ? 0 : original[i];
      if (data[i] !== want) {
        fail(
          `"${path}" byte ${i} is ${data[i]}, not ${want} (${
            lost[i] === 1 ? "inside" : "outside"
          } the lost ranges ${JSON.stringify(record.lost)})`,
        );
        break;
      }
    }
  }
}

/** What is wrong with a `.salvaged.json` of `name` (undefined: the documented shape). */
function salvagedShape(record: SalvagedFile, name: string): string | undefined {
  const whole = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  if (record === null || typeof record !== "object") return "not an object";
  if (record.file !== name) return `"file" is ${JSON.stringify(record.file)}`;
  if (!whole(record.size)) return `"size" is ${JSON.stringify(record.size)}`;
  if (!Array.isArray(record.lost)) return `"lost" is not a list`;
  const lists = { lost: record.lost, unchecked: record.unchecked };
  if (lists.unchecked !== undefined && !Array.isArray(lists.unchecked)) {
    return `"unchecked" is not a list`;
  }
  for (const [key, list] of Object.entries(lists)) {
    let end = 0;
    for (const range of list ?? []) {
      if (
        range === null || typeof range !== "object" || !whole(range.offset) ||
        !whole(range.length) || range.length === 0 || typeof range.reason !== "string" ||
        range.reason === "" || (range.chunk !== null && typeof range.chunk !== "string")
      ) return `a ${key} range is not in the documented shape: ${JSON.stringify(range)}`;
      if (range.offset < end || range.offset + range.length > record.size) {
        return `${key} ranges out of order or past the end: ${JSON.stringify(list)}`;
      }
      end = range.offset + range.length;
    }
  }
  return undefined;
}

/** The seed's own restore: what every unchanged-authentication case must reproduce. */
export async function expectedOutput(
  seed: Seed,
  work: string,
  /** Filled with the restored files' bytes (path -> data), when given. */
  files?: Map<string, Uint8Array>,
): Promise<Map<string, string>> {
  const sandbox = await Deno.makeTempDir({ dir: work, prefix: "seed-" });
  try {
    const m: Mutant = { entries: seed.entries, files: seed.files, steps: [], resigned: false };
    const backup = await writeMutant(seed, m, sandbox);
    await restoreBackup(backup, {
      passphrase: () => Promise.resolve(encoder.encode(FUZZ_PASS)),
      output: `${sandbox}/out`,
    });
    const tree = await describe(`${sandbox}/out`);
    for (const [path, what] of tree) {
      if (files !== undefined && what.startsWith("file")) {
        files.set(path, await Deno.readFile(`${sandbox}/out/${path}`));
      }
    }
    return tree;
  } finally {
    await Deno.remove(sandbox, { recursive: true });
  }
}

/**
 * Runs `count` cases round-robin over the seeds, from `firstSeed` on; keeps the HMAC worker
 * alive across cases.
 */
export async function fuzz(
  seeds: Seed[],
  count: number,
  firstSeed: number,
  work: string,
  onProgress?: (stats: FuzzStats) => void,
  onCase?: (caseSeed: number) => void,
): Promise<FuzzStats> {
  const stats = newStats();
  const done = useHmacWorker();
  try {
    const expected = new Map<Seed, Map<string, string>>();
    const originals = new Map<Seed, Map<string, Uint8Array>>();
    for (const seed of seeds) {
      const files = new Map<string, Uint8Array>();
      expected.set(seed, await expectedOutput(seed, work, files));
      originals.set(seed, files);
    }
    let failuresShown = 0;
    for (let i = 0; i < count; i++) {
      const seed = seeds[i % seeds.length]!;
      onCase?.(firstSeed + i);
      await runCase(seed, expected.get(seed)!, firstSeed + i, work, stats, originals.get(seed));
      if (onProgress && ((i + 1) % 1000 === 0 || stats.failures.length > failuresShown)) {
        failuresShown = stats.failures.length;
        onProgress(stats);
      }
    }
  } finally {
    done();
  }
  return stats;
}

/** The figures of a run, one line per fact. */
export function summary(stats: FuzzStats): string[] {
  const s = stats.salvage;
  const codes = [...stats.errors].sort((a, b) => a[0] - b[0]).map(([c, n]) => `exit ${c}: ${n}`);
  return [
    `cases: ${stats.cases}`,
    `restored identical to the seed: ${stats.restored}`,
    `restored after a re-authenticated change: ${stats.restoredResigned}`,
    `restored with an unverifiable change (warned): ${stats.unverifiable}`,
    `restored without an optional file whose item was deleted: ${stats.optionalMissing}`,
    `refused with one clean line: ${codes.join(", ")}`,
    `salvage (restore --salvage after a failed restore): ${s.runs} runs, ${s.withFiles} wrote ` +
    `.salvaged files: ${s.files} files (${s.withLost} with lost ranges, ${s.checked} checked ` +
    `byte by byte against the seed), ${s.notSalvaged} items not salvaged (said why)`,
    `failures: ${stats.failures.length}`,
    `peak RSS: ${Math.round(stats.maxRss / 1024 / 1024)} MiB`,
  ];
}
