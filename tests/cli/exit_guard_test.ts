/**
 * Issue 9: the process never ends with status 0 before the command settled
 * (lib/cli/exit_guard.ts, used by main.ts). Each step runs a small script, shaped like main.ts
 * (signal listeners registered, the command not awaited at the top level), whose command stalls,
 * throws, or is cut short, and checks the exit code and the one line on standard error.
 */

import assert from "node:assert/strict";
import { UNSETTLED_MESSAGE } from "../../lib/cli/exit_guard.ts";

const GUARD = new URL("../../lib/cli/exit_guard.ts", import.meta.url).href;

/** Runs a script whose command is `body` (the body of an async function returning a code). */
async function runScript(
  dir: string,
  body: string,
  options: { guarded?: boolean; prelude?: string; after?: string } = {},
): Promise<{ code: number; stderr: string; stdout: string }> {
  const guarded = options.guarded ?? true;
  const script = [
    `import { guardExit } from ${JSON.stringify(GUARD)};`,
    `const say = (line: string) => console.error(line);`,
    `Deno.addSignalListener("SIGTERM", () => {});`,
    options.prelude ?? "",
    `async function command(): Promise<number> { ${body} }`,
    guarded
      ? `guardExit(command, say).then((code) => Deno.exit(code));`
      : `command().then((code) => Deno.exit(code));`,
    options.after ?? "",
  ].join("\n");
  const path = `${dir}/script-${crypto.randomUUID()}.ts`;
  await Deno.writeTextFile(path, script);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-lock", path],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stderr: decoder.decode(out.stderr), stdout: decoder.decode(out.stdout) };
}

const STALL = "await new Promise(() => {}); return 0;";
const PIPELINE_STALL = `
  const source = new ReadableStream({ pull: () => new Promise(() => {}) });
  await source.pipeTo(new WritableStream());
  return 0;`;

Deno.test("exit guard: no status 0 before the command settled", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "qr-exit-guard-" });
  try {
    await t.step("control: unguarded, a stall ends the process with status 0", async () => {
      const out = await runScript(dir, STALL, { guarded: false });
      assert.equal(out.code, 0, "Deno ends a process whose loop ran empty with status 0");
      assert.equal(out.stderr, "");
    });

    await t.step("a never-settling promise: exit 1, one line", async () => {
      const out = await runScript(dir, STALL);
      assert.equal(out.code, 1);
      assert.equal(out.stderr, `${UNSETTLED_MESSAGE}\n`);
    });

    await t.step("a stream pipeline waiting forever: exit 1, one line", async () => {
      const out = await runScript(dir, PIPELINE_STALL);
      assert.equal(out.code, 1);
      assert.equal(out.stderr, `${UNSETTLED_MESSAGE}\n`);
    });

    await t.step("an error swallowed by an unhandledrejection listener: exit 1", async () => {
      const out = await runScript(dir, STALL, {
        prelude: `globalThis.addEventListener("unhandledrejection", (e) => e.preventDefault());`,
        after: `await Promise.resolve(); throw new Error("escaped");`,
      });
      assert.equal(out.code, 1);
      assert.equal(out.stderr, `${UNSETTLED_MESSAGE}\n`);
    });

    await t.step("a stray Deno.exit(0) while the command runs: exit 1", async () => {
      const out = await runScript(dir, "Deno.exit(0); return 0;");
      assert.equal(out.code, 1);
      assert.equal(out.stderr, `${UNSETTLED_MESSAGE}\n`);
    });

    await t.step("the command throws: exit 1, one line", async () => {
      const out = await runScript(dir, `throw new Error("boom\\nsecond line");`);
      assert.equal(out.code, 1);
      assert.equal(out.stderr, "qubes-recover: internal error: boom\n");
    });

    await t.step("a signal's Deno.exit(130) while the command runs stays 130, silent", async () => {
      const out = await runScript(dir, "Deno.exit(130); return 0;");
      assert.equal(out.code, 130);
      assert.equal(out.stderr, "");
    });

    await t.step("a command that settles: its own exit code, nothing added", async () => {
      for (const code of [0, 4, 5]) {
        const out = await runScript(dir, `console.log("done"); return ${code};`);
        assert.equal(out.code, code);
        assert.equal(out.stdout, "done\n");
        assert.equal(out.stderr, "");
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
