/**
 * Every error that `lib/` constructs says why as data: the first argument of each
 * `new <RecoverError class>(...)` is a facts object with an explicit `reason`, never a ready
 * text that would fall back to the class's general reason. Messages are then rendered in one
 * place (`renderMessage`) and a new throw site cannot slip back into text.
 *
 * Two classes fix their reason themselves and may be constructed without one:
 * `InterruptedError` (its exit code has one reason) and `CommandLineError` (always `usage`).
 */

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { CommandLineError } from "../../lib/cli/options.ts";
import { ExitCode, InterruptedError, REASONS } from "../../lib/errors.ts";

const root = normalize(join(dirname(fileURLToPath(import.meta.url)), "../.."));

/** Classes whose constructor sets the reason, with that reason. */
const FIXED_REASON: Readonly<Record<string, string>> = {
  InterruptedError: "interrupted",
  CommandLineError: "usage",
};

/**
 * The source with comments blanked and the contents of string and template literals (their
 * `${}` parts included) blanked, same length, so that code can be searched without text in
 * messages or comments getting in the way.
 */
export function codeOnly(source: string): string {
  const out = source.split("");
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  let i = 0;
  const skipTemplate = (start: number): number => {
    // start is just after the opening backquote; returns the index after the closing one.
    let j = start;
    while (j < source.length && source[j] !== "`") {
      if (source[j] === "\\") j += 2;
      else if (source[j] === "$" && source[j + 1] === "{") j = skipCode(j + 2, "}");
      else j++;
    }
    return j + 1;
  };
  const skipQuoted = (start: number, quote: string): number => {
    let j = start;
    while (j < source.length && source[j] !== quote && source[j] !== "\n") {
      j += source[j] === "\\" ? 2 : 1;
    }
    return j + 1;
  };
  const skipCode = (start: number, close: string): number => {
    // Code up to the matching `close` (inside a template's `${}`); returns the index after it.
    let depth = 0;
    let j = start;
    while (j < source.length) {
      const c = source[j]!;
      if (c === "`") j = skipTemplate(j + 1);
      else if (c === '"' || c === "'") j = skipQuoted(j + 1, c);
      else if (c === close && depth === 0) return j + 1;
      else {
        if (c === "{") depth++;
        if (c === "}") depth--;
        j++;
      }
    }
    return j;
  };
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      const stop = end === -1 ? source.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end === -1 ? source.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === "`") {
      const stop = skipTemplate(i + 1);
      blank(i + 1, stop - 1);
      i = stop;
    } else if (c === '"' || c === "'") {
      const stop = skipQuoted(i + 1, c);
      blank(i + 1, stop - 1);
      i = stop;
    } else {
      i++;
    }
  }
  return out.join("");
}

/** The index just after the bracket that closes the one at `open` (in code-only text). */
function closing(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const c = code[i]!;
    if (c === "(" || c === "{" || c === "[") depth++;
    else if (c === ")" || c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return code.length;
}

/** The names of `RecoverError` and every class that extends it, directly or not. */
export function errorClasses(sources: readonly string[]): Set<string> {
  const found = new Set(["RecoverError"]);
  const extensions: [string, string][] = [];
  for (const source of sources) {
    for (
      const match of codeOnly(source).matchAll(/\bclass\s+(\w+)(?:<[^{]*?>)?\s+extends\s+(\w+)/g)
    ) {
      extensions.push([match[1]!, match[2]!]);
    }
  }
  for (let grown = true; grown;) {
    grown = false;
    for (const [name, base] of extensions) {
      if (found.has(base) && !found.has(name)) {
        found.add(name);
        grown = true;
      }
    }
  }
  return found;
}

/**
 * The places in `source` that construct one of `classes` without an explicit reason: as
 * `line: text` (the first line of the call).
 */
export function sitesWithoutReason(source: string, classes: ReadonlySet<string>): string[] {
  const code = codeOnly(source);
  const missing: string[] = [];
  for (const match of code.matchAll(/\bnew\s+(\w+)\s*\(/g)) {
    const name = match[1]!;
    if (!classes.has(name) || name in FIXED_REASON) continue;
    const open = match.index + match[0].length - 1;
    const end = closing(code, open);
    const args = code.slice(open + 1, end - 1);
    const first = args.trimStart();
    let ok = false;
    if (first.startsWith("{")) {
      const start = open + 1 + (args.length - first.length);
      const facts = code.slice(start, closing(code, start));
      ok = /[{,]\s*reason\s*[:,}]/.test(facts);
    }
    if (!ok) {
      const line = source.slice(0, match.index).split("\n").length;
      missing.push(`${line}: ${source.slice(match.index, end).split("\n")[0]}`);
    }
  }
  return missing;
}

async function libSources(dir = join(root, "lib")): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      for (const [file, text] of await libSources(path)) sources.set(file, text);
    } else if (entry.name.endsWith(".ts")) {
      sources.set(path, await Deno.readTextFile(path));
    }
  }
  return sources;
}

Deno.test("errors: the throw-site finder sees text errors and ignores reasons in text and comments", () => {
  const source = [
    "class LocalError extends DamagedError {}",
    "// new DamagedError('in a comment')",
    'throw new DamagedError("plain text");',
    "throw new LocalError(`Cannot read: ${reason}`, { cause });",
    'throw new OutputError("x", { reason: "exists" });',
    'throw new DamagedError({ detail: "reason: damaged" });',
    "throw new IncompleteError(",
    '  { reason: "truncated", action: `read ${"a)"}`, detail: "it ends" },',
    ");",
    'throw new UsageError({ reason, detail: "x" });',
    "throw new InterruptedError();",
    'throw new Error("not ours");',
  ].join("\n");
  const classes = errorClasses([
    source,
    "export class DamagedError extends RecoverError<ReasonOf<4>> {}",
    "class OutputError extends RecoverError {} class IncompleteError extends RecoverError {}",
    "class UsageError extends RecoverError {} class InterruptedError extends RecoverError {}",
  ]);
  assert.ok(classes.has("LocalError"));
  assert.deepEqual(sitesWithoutReason(source, classes), [
    '3: new DamagedError("plain text")',
    "4: new LocalError(`Cannot read: ${reason}`, { cause })",
    '5: new OutputError("x", { reason: "exists" })',
    '6: new DamagedError({ detail: "reason: damaged" })',
  ]);
});

Deno.test("errors: the classes that fix their own reason do so", () => {
  assert.deepEqual(
    Object.entries(REASONS).filter(([, code]) => code === ExitCode.Interrupted).map(([r]) => r),
    [FIXED_REASON.InterruptedError],
  );
  assert.equal(new InterruptedError().reason, FIXED_REASON.InterruptedError);
  assert.equal(new CommandLineError("Unknown option").reason, FIXED_REASON.CommandLineError);
});

Deno.test("errors: every error lib/ constructs gives its reason as data (no ready text)", async () => {
  const sources = await libSources();
  const classes = errorClasses([...sources.values()]);
  for (const name of ["DamagedError", "IncompleteError", "ImageDamage", "CommandLineError"]) {
    assert.ok(classes.has(name), `${name} not found as an error class`);
  }
  const missing: string[] = [];
  let sites = 0;
  for (const [file, source] of sources) {
    sites += [...codeOnly(source).matchAll(/\bnew\s+(\w+)\s*\(/g)].filter((m) =>
      classes.has(m[1]!)
    ).length;
    for (const site of sitesWithoutReason(source, classes)) {
      missing.push(`${relative(root, file)}:${site}`);
    }
  }
  assert.ok(sites > 200, `only ${sites} construction sites found`);
  assert.deepEqual(missing, []);
});
