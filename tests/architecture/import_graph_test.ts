/**
 * The import graph of `lib/` and `main.ts` has no cycles, type-only imports included: every
 * module can be read (and tested) after the modules it depends on, never in a loop. A cycle is
 * reported as the chain of files that forms it.
 *
 * A folder of `lib/` is used from outside through its `mod.ts` only: an import from another
 * folder (or from `main.ts`) that reaches past it fails, except the few listed in
 * {@linkcode DIRECT_IMPORTS}, each with its reason.
 */

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = normalize(join(dirname(fileURLToPath(import.meta.url)), "../.."));

/** Relative module specifiers in a TypeScript source: static imports and re-exports, `import()`. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gms,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) {
      if (match[1]!.startsWith(".")) found.push(match[1]!);
    }
  }
  return found;
}

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await tsFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The graph: file -> files it imports (within the repository). */
async function importGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  const queue = [join(root, "main.ts"), ...await tsFiles(join(root, "lib"))];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (graph.has(file)) continue;
    const targets = importsOf(await Deno.readTextFile(file)).map((spec) =>
      normalize(join(dirname(file), spec))
    );
    graph.set(file, targets);
    for (const target of targets) if (!graph.has(target)) queue.push(target);
  }
  return graph;
}

/**
 * Imports from another folder that do not go through `mod.ts`, on purpose. `from` is a file or
 * a folder (ending in `/`); `to` is the file imported.
 */
export const DIRECT_IMPORTS: readonly { from: string; to: string; why: string }[] = [
  {
    from: "lib/format/",
    to: "lib/salvage/chunks.ts",
    why: "the salvage stage of the format readers' chains; salvage/mod.ts leads back into " +
      "lib/format (its run.ts opens backups), a cycle",
  },
  {
    from: "lib/format/",
    to: "lib/salvage/cbc.ts",
    why: "the CBC salvage stage of format 3's chain; same cycle as salvage/chunks.ts",
  },
  {
    from: "lib/format/",
    to: "lib/salvage/compressed.ts",
    why: "the compressed salvage stage of formats 3 and 4; same cycle as salvage/chunks.ts",
  },
  {
    from: "lib/format/",
    to: "lib/salvage/walk.ts",
    why: "format 1's salvage walk of a folder; same cycle as salvage/chunks.ts",
  },
  {
    from: "lib/format/format3.ts",
    to: "lib/salvage/lost.ts",
    why: "format 3's chain marks the places it cannot check (chunk order); same cycle as " +
      "salvage/chunks.ts",
  },
  {
    from: "lib/salvage/chunks.ts",
    to: "lib/format/entry_queue.ts",
    why: "format 2-4 call salvage/chunks.ts, so format/mod.ts (open.ts, the format modules) " +
      "would import it back, a cycle",
  },
  {
    from: "lib/salvage/volumes.ts",
    to: "lib/format/entry_queue.ts",
    why: "format 2's salvage stage, which salvage/chunks.ts re-exports: same cycle",
  },
  {
    from: "lib/salvage/run.ts",
    to: "lib/commands/problems.ts",
    why: "commands/mod.ts includes restore.ts, which runs the salvage: a cycle",
  },
  {
    from: "lib/salvage/run.ts",
    to: "lib/commands/open_retry.ts",
    why: "same cycle as commands/problems.ts",
  },
];

/** The folder of `lib/` a file lies in (`lib/tar`), or undefined for `main.ts` and `lib/*.ts`. */
function folderOf(file: string): string | undefined {
  const parts = file.split("/");
  return parts[0] === "lib" && parts.length > 2 ? `lib/${parts[1]}` : undefined;
}

/**
 * The imports (paths relative to the repository) that reach into another folder of `lib/`
 * past its `mod.ts` and are not in `allowed`, as `from -> to`.
 */
export function bypassesOf(
  graph: Map<string, string[]>,
  allowed: readonly { from: string; to: string }[] = DIRECT_IMPORTS,
): string[] {
  const found: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const folder = folderOf(to);
      if (folder === undefined || folder === folderOf(from) || to === `${folder}/mod.ts`) continue;
      const excused = allowed.some((rule) =>
        rule.to === to &&
        (rule.from.endsWith("/") ? from.startsWith(rule.from) : rule.from === from)
      );
      if (!excused) found.push(`${from} -> ${to}`);
    }
  }
  return found.sort();
}

/** Every cycle found by a depth-first walk, each as the list of files around it. */
export function cyclesOf(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      const seen = state.get(next);
      if (seen === "open") cycles.push([...path.slice(path.indexOf(next)), next]);
      else if (seen === undefined) visit(next);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}

Deno.test("architecture: the finder sees imports, re-exports, type imports and import()", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type {\n  B,\n} from "../b/mod.ts";',
    'export { c } from "./c.ts";',
    'export * from "./d.ts";',
    'import "./e.ts";',
    'const f = await import("./f.ts");',
    'import { g } from "node:fs";',
  ].join("\n");
  assert.deepEqual(importsOf(source).sort(), [
    "../b/mod.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
  ]);
  const cyclic = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(cyclesOf(cyclic), [["a", "b", "c", "a"]]);
  assert.deepEqual(cyclesOf(new Map([["a", ["b"]], ["b", []], ["c", ["a", "b"]]])), []);
});

Deno.test("architecture: lib/ and main.ts import no module in a cycle", async () => {
  const graph = await importGraph();
  assert.ok(graph.size > 100, `only ${graph.size} modules found`);
  for (const file of graph.keys()) {
    assert.ok((await Deno.stat(file)).isFile, `${relative(root, file)} is imported but missing`);
  }
  const cycles = cyclesOf(graph).map((cycle) =>
    cycle.map((file) => relative(root, file)).join(" -> ")
  );
  assert.deepEqual(cycles, []);
});

Deno.test("architecture: the checker finds an import that bypasses a folder's mod.ts", () => {
  const graph = new Map([
    ["main.ts", ["lib/cli/mod.ts", "lib/errors.ts"]],
    ["lib/cli/app.ts", ["lib/cli/options.ts", "lib/commands/mod.ts", "lib/commands/files.ts"]],
    ["lib/format/format3.ts", ["lib/salvage/chunks.ts", "lib/salvage/run.ts"]],
    ["lib/tar/pax.ts", ["lib/errors.ts", "lib/tar/numbers.ts"]],
  ]);
  assert.deepEqual(bypassesOf(graph), [
    "lib/cli/app.ts -> lib/commands/files.ts",
    "lib/format/format3.ts -> lib/salvage/run.ts",
  ]);
  assert.deepEqual(bypassesOf(new Map([["main.ts", ["lib/cli/app.ts"]]])), [
    "main.ts -> lib/cli/app.ts",
  ]);
});

Deno.test("architecture: other folders use a folder of lib/ through its mod.ts", async () => {
  const graph = new Map(
    [...await importGraph()].map((
      [file, targets],
    ) => [relative(root, file), targets.map((target) => relative(root, target))]),
  );
  assert.deepEqual(bypassesOf(graph), []);
  // Every exception is still needed: one that no import uses any more is removed.
  const unused = DIRECT_IMPORTS.filter((rule) =>
    bypassesOf(graph, DIRECT_IMPORTS.filter((other) => other !== rule)).length === 0
  );
  assert.deepEqual(unused, []);
});
