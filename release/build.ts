// deno-lint-ignore-file no-console
/**
 * `deno task release`: builds the release kit under `dist/` with only the npm registry
 * reachable: `qubes-recover-x86_64-linux`, `qubes-recover-aarch64-linux`, `RECOVERY.txt` and
 * `SHA256SUMS`.
 *
 * Each executable is `release/header.sh` followed by a payload of gzip members: the Deno
 * runtime from the npm registry's `@deno/linux-*-glibc` package (pinned by its integrity hash),
 * the program bundled by `deno bundle`, the HMAC worker and `convert`'s pack worker each bundled
 * on its own, and liblzma's
 * WebAssembly. Why this design, and what happens at run time: docs/release.md.
 *
 * Usage: `deno task release [--arch x86_64|aarch64]... [--out DIR]` (both architectures into
 * `dist/` by default). The runtime packages are kept in `.cache/release/` (checked against the
 * pinned hash on every use).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { parseArgs } from "node:util";
import { relative } from "node:path";

/** The Deno release inside the kit; the build runs only on the same version. */
export const DENO_VERSION = "2.9.6";

/** One target: the npm package holding its runtime, and the ELF machine the runtime must be. */
interface Target {
  packageName: string;
  integrity: string;
  elfMachine: number;
}

/** The runtimes, pinned by the npm registry's integrity hash of the package tarball. */
export const TARGETS: Record<string, Target> = {
  x86_64: {
    packageName: "@deno/linux-x64-glibc",
    integrity:
      "sha512-3md4TKLCuzsLDmfOoC5KN7NAZaxSVkMgm64vg6foD00JBADCpYS2/5QqXfzgnP5ZQz3iLP9vBQJtEgc116OAoQ==",
    elfMachine: 62,
  },
  aarch64: {
    packageName: "@deno/linux-arm64-glibc",
    integrity:
      "sha512-poqhoH9B3nYloigEMPT5t8HY+wBeiuea1An5Q7fqgJzP0SYmWsoS/oUnWO/pEiA4ofzIBy1Elt/in58xKtxEoQ==",
    elfMachine: 183,
  },
};

/** Where the bundle looks for the HMAC worker (next to itself), as `deno bundle` leaves it. */
const WORKER_REFERENCE = 'new URL("./hmac_worker.ts", import.meta.url)';
/** Where the bundle looks for `convert`'s gzip and encryption worker (next to itself). */
const PACK_WORKER_REFERENCE = 'new URL("./pack_worker.ts", import.meta.url)';
/** Where the bundle looks for `files get`'s worker writing small files (next to itself). */
const WRITE_WORKER_REFERENCE = 'new URL("./write_worker.ts", import.meta.url)';
/** How lib/compress/liblzma.ts finds the WebAssembly; the kit's import map answers it. */
const WASM_SPECIFIER = "node-liblzma/wasm/liblzma.wasm";
const WASM_REFERENCE = `import.meta.resolve("${WASM_SPECIFIER}")`;

const root = new URL("../", import.meta.url).pathname;

/**
 * The runtime flags of the `recover` task: permissions and V8 flags, what the release (and
 * `deno task compile`) must run with.
 */
export function permissionFlags(command: string): string[] {
  return command.split(/\s+/).filter((word) => /^--(allow-|v8-flags=)/.test(word));
}

/** Everything `deno run` gets in the kit, in order: no network, no prompts, no config. */
export function runFlags(recoverTask: string): string[] {
  return [
    "--quiet",
    "--no-config",
    "--no-lock",
    "--no-remote",
    "--no-npm",
    "--no-prompt",
    ...permissionFlags(recoverTask),
  ];
}

async function run(command: string, args: string[], options: { cwd?: string } = {}) {
  const out = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...options,
  })
    .output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return stdout;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The commit being built, with "-dirty" when tracked files differ from it; else "unknown". */
async function sourceCommit(): Promise<string> {
  try {
    const head = (await run("git", ["-C", root, "rev-parse", "HEAD"])).trim();
    const status = await run("git", ["-C", root, "status", "--porcelain", "--untracked-files=no"]);
    return status.trim() === "" ? head : `${head}-dirty`;
  } catch {
    return "unknown";
  }
}

/** The runtime binary of `arch`, from the cache or the npm registry, checked by hash. */
async function runtime(arch: string, cache: string): Promise<Uint8Array> {
  const target = TARGETS[arch]!;
  const tarball = `${cache}/${
    target.packageName.replace("@", "").replace("/", "-")
  }-${DENO_VERSION}.tgz`;
  const matches = (bytes: Uint8Array) =>
    `sha512-${createHash("sha512").update(bytes).digest("base64")}` === target.integrity;
  let bytes = await Deno.readFile(tarball).catch(() => undefined);
  if (bytes === undefined || !matches(bytes)) {
    await Deno.mkdir(cache, { recursive: true });
    console.error(`fetching ${target.packageName}@${DENO_VERSION} from the npm registry`);
    await run("npm", [
      "pack",
      "--silent",
      "--pack-destination",
      cache,
      `${target.packageName}@${DENO_VERSION}`,
    ]);
    bytes = await Deno.readFile(tarball);
    if (!matches(bytes)) {
      throw new Error(`${tarball} does not match the pinned integrity hash ${target.integrity}`);
    }
  }
  const unpacked = await Deno.makeTempDir({ prefix: "qubes-recover-runtime-" });
  try {
    await run("tar", ["-xzf", tarball, "-C", unpacked, "package/deno"]);
    const binary = await Deno.readFile(`${unpacked}/package/deno`);
    const machine = binary[18]! | (binary[19]! << 8);
    if (binary[0] !== 0x7f || binary[1] !== 0x45 || machine !== target.elfMachine) {
      throw new Error(`${target.packageName}: package/deno is not an ELF binary for ${arch}`);
    }
    return binary;
  } finally {
    await Deno.remove(unpacked, { recursive: true });
  }
}

/** Replaces `from` in `text` exactly once; a build that no longer finds it stops. */
function replaceOnce(text: string, from: string, to: string, where: string): string {
  const parts = text.split(from);
  if (parts.length !== 2) {
    throw new Error(`${where}: expected "${from}" exactly once, found ${parts.length - 1}`);
  }
  return parts.join(to);
}

/** What a bundle may say about files next to itself: the kit answers each of these. */
const KNOWN_FILE_REFERENCES = [
  WORKER_REFERENCE,
  PACK_WORKER_REFERENCE,
  WRITE_WORKER_REFERENCE,
  WASM_REFERENCE,
  // liblzma's Emscripten glue: its script location, and its own WASM lookup, unused because
  // lib/compress/liblzma.ts hands it the bytes (wasmBinary)
  "var _scriptDir = import.meta.url;",
  'new URL("liblzma.wasm", import.meta.url)',
  // lib/build_info.ts reads the checkout's .git only when no commit is baked in (never in the kit)
  'if (!import.meta.url.startsWith("file:")) return',
  'const root = new URL("../", import.meta.url);',
];

/**
 * Lines of `code` that load something relative to the bundle (a worker, WebAssembly, a data
 * file) other than the known ones: each would fail at run time in the kit.
 */
export function filesNextToBundle(code: string): string[] {
  return code.split("\n")
    .filter((line) => /import\.meta\.(url|resolve|filename|dirname)\b|new Worker\(/.test(line))
    .filter((line) => !KNOWN_FILE_REFERENCES.some((known) => line.includes(known)))
    .map((line) => line.trim());
}

/** Bundles the program and its workers from a staging copy with the commit baked in. */
async function bundle(
  commit: string,
): Promise<{ main: string; worker: string; packWorker: string; writeWorker: string }> {
  const stage = await Deno.makeTempDir({ prefix: "qubes-recover-stage-" });
  const npmCache = JSON.parse(await run(Deno.execPath(), ["info", "--json"])).npmCache as string;
  try {
    for (const file of ["main.ts", "deno.json", "deno.lock"]) {
      await Deno.copyFile(`${root}${file}`, `${stage}/${file}`);
    }
    await run("cp", ["-R", `${root}lib`, `${stage}/lib`]);
    const infoPath = `${stage}/lib/build_info.ts`;
    const info = await Deno.readTextFile(infoPath);
    await Deno.writeTextFile(
      infoPath,
      replaceOnce(
        info,
        "const BAKED_COMMIT: string | undefined = undefined; // release: commit",
        `const BAKED_COMMIT: string | undefined = ${JSON.stringify(commit)};`,
        "lib/build_info.ts",
      ),
    );
    const bundled: Record<string, string> = {};
    const entries: Array<[string, string]> = [
      ["main", "main.ts"],
      ["worker", "lib/verify/hmac_worker.ts"],
      ["pack_worker", "lib/convert/pack_worker.ts"],
      ["write_worker", "lib/output/write_worker.ts"],
    ];
    for (const [name, entry] of entries) {
      await run(Deno.execPath(), [
        "bundle",
        "--quiet",
        "--platform",
        "deno",
        "--output",
        `out/${name}.js`,
        entry,
      ], { cwd: stage });
      let code = await Deno.readTextFile(`${stage}/out/${name}.js`);
      // esbuild names each module by its path from here (in comments and module keys): the
      // npm cache's location must not make two builds differ.
      code = code.replaceAll(`${relative(stage, npmCache)}/`, "npm:/");
      for (const local of [stage, Deno.env.get("HOME") ?? "/nonexistent", "/.cache/"]) {
        if (code.includes(local)) throw new Error(`the ${name} bundle mentions "${local}"`);
      }
      bundled[name] = code;
    }
    // The references the kit's layout answers: fail here, not on a user's machine.
    replaceOnce(bundled.main!, WORKER_REFERENCE, WORKER_REFERENCE, "main bundle");
    replaceOnce(bundled.main!, PACK_WORKER_REFERENCE, PACK_WORKER_REFERENCE, "main bundle");
    replaceOnce(bundled.main!, WRITE_WORKER_REFERENCE, WRITE_WORKER_REFERENCE, "main bundle");
    replaceOnce(bundled.main!, WASM_REFERENCE, WASM_REFERENCE, "main bundle");
    for (const [name, code] of Object.entries(bundled)) {
      const unknown = filesNextToBundle(code);
      if (unknown.length > 0) {
        throw new Error(
          `the ${name} bundle loads files the kit does not ship (teach release/build.ts to ` +
            `embed them): ${unknown.join(" | ")}`,
        );
      }
    }
    return {
      main: bundled.main!,
      worker: bundled.worker!,
      packWorker: bundled.pack_worker!,
      writeWorker: bundled.write_worker!,
    };
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

/** The shell header with its payload table; `offset` is the header's own size. */
function header(
  template: string,
  fields: Record<string, string>,
  files: string,
  offset: number,
): string {
  let text = template.replace("@FILES@", files).replace("@OFFSET@", String(offset));
  for (const [key, value] of Object.entries(fields)) text = text.replaceAll(`@${key}@`, value);
  if (/@[A-Z]+@/.test(text)) throw new Error(`header.sh: unfilled ${text.match(/@[A-Z]+@/)![0]}`);
  return text;
}

/** Builds the kit for `arches` into `out`; returns the names written. */
export async function build(arches: string[], out: string, cache: string): Promise<string[]> {
  if (Deno.version.deno !== DENO_VERSION) {
    throw new Error(`build the release with Deno ${DENO_VERSION} (this is ${Deno.version.deno})`);
  }
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const flags = runFlags(config.tasks.recover);
  const commit = await sourceCommit();
  const { main, worker, packWorker, writeWorker } = await bundle(commit);
  const wasm = await Deno.readFile(new URL(import.meta.resolve(WASM_SPECIFIER)));
  const importMap = JSON.stringify({ imports: { [WASM_SPECIFIER]: "./liblzma.wasm" } }) + "\n";
  const template = await Deno.readTextFile(`${root}release/header.sh`);
  const encoder = new TextEncoder();
  await Deno.mkdir(out, { recursive: true });
  const written: string[] = [];
  for (const arch of arches) {
    const files: [string, Uint8Array][] = [
      ["deno", await runtime(arch, cache)],
      ["main.js", encoder.encode(main)],
      // the bundle loads its worker from "./hmac_worker.ts" (Deno reads plain JavaScript there)
      ["hmac_worker.ts", encoder.encode(worker)],
      ["pack_worker.ts", encoder.encode(packWorker)],
      ["write_worker.ts", encoder.encode(writeWorker)],
      ["liblzma.wasm", wasm],
      ["import_map.json", encoder.encode(importMap)],
    ];
    const members: Uint8Array[] = [];
    const table: string[] = [];
    let position = 0;
    let unpackedSize = 0;
    for (const [name, bytes] of files) {
      // node:zlib writes no name and no time into the gzip header: the same bytes every build
      const member = gzipSync(bytes, { level: 9 });
      table.push(`${name} ${position} ${member.length} ${sha256(bytes)}`);
      members.push(member);
      position += member.length;
      unpackedSize += bytes.length;
    }
    const fields = {
      ARCH: arch,
      COMMIT: commit,
      DENO: DENO_VERSION,
      SPACE: String(Math.ceil(unpackedSize / 1e6) + 10),
      RUNFLAGS: flags.join(" "),
    };
    let offset = 0;
    let text = header(template, fields, table.join("\n"), offset);
    while (encoder.encode(text).length !== offset) {
      offset = encoder.encode(text).length;
      text = header(template, fields, table.join("\n"), offset);
    }
    const name = `qubes-recover-${arch}-linux`;
    const file = await Deno.open(`${out}/${name}`, {
      write: true,
      create: true,
      truncate: true,
      mode: 0o755,
    });
    try {
      const writer = file.writable.getWriter();
      await writer.write(encoder.encode(text));
      for (const member of members) await writer.write(member);
      await writer.close();
    } catch (error) {
      file.close();
      throw error;
    }
    await Deno.chmod(`${out}/${name}`, 0o755);
    written.push(name);
  }
  await Deno.copyFile(`${root}RECOVERY.txt`, `${out}/RECOVERY.txt`);
  written.push("RECOVERY.txt");
  const sums: string[] = [];
  for (const name of [...written].sort()) {
    sums.push(`${sha256(await Deno.readFile(`${out}/${name}`))}  ${name}`);
  }
  await Deno.writeTextFile(`${out}/SHA256SUMS`, sums.join("\n") + "\n");
  return [...written, "SHA256SUMS"];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      arch: { type: "string", multiple: true },
      out: { type: "string" },
      cache: { type: "string" },
    },
  });
  const arches = values.arch ?? Object.keys(TARGETS);
  for (const arch of arches) {
    if (!(arch in TARGETS)) {
      console.error(`release: unknown --arch ${arch} (use ${Object.keys(TARGETS).join(", ")})`);
      Deno.exit(2);
    }
  }
  const out = values.out ?? `${root}dist`;
  try {
    const started = performance.now();
    const names = await build(arches, out, values.cache ?? `${root}.cache/release`);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.error(`release: wrote ${names.join(", ")} into ${out} (${seconds} s)`);
  } catch (error) {
    console.error(`release: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
