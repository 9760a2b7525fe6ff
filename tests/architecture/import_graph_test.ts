/**
 * The import graph of `lib/` and `main.ts` has no cycles, type-only imports included: every
 * module can be read (and tested) after the modules it depends on, never in a loop. A cycle is
 * reported as the chain of files that forms it.
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
