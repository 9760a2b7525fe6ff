import assert from "node:assert/strict";
import { CommandLineError, parseLine } from "../../lib/cli/options.ts";
import { runApp } from "../../lib/cli/app.ts";
import { COMMANDS } from "../../lib/cli/commands.ts";
import { OPTIONS } from "../../lib/cli/options.ts";

Deno.test("parseLine() reads long, short, grouped, = and -- forms", () => {
  const line = parseLine([
    "restore",
    "-qnoOUT",
    "--vm=work",
    "--vm",
    "dom0",
    "--no-progress",
    "--",
    "-backup-",
  ]);
  assert.deepEqual(line.positionals, ["restore", "-backup-"]);
  assert.deepEqual(line.values, {
    quiet: true,
    "dry-run": true,
    output: "OUT",
    vm: ["work", "dom0"],
    progress: false,
  });
  assert.deepEqual(line.given.map((g) => g.typed), [
    "-q",
    "-n",
    "-o",
    "--vm",
    "--vm",
    "--no-progress",
  ]);
  assert.deepEqual(parseLine(["verify", "-"]).positionals, ["verify", "-"]);
});

Deno.test("parseLine() refuses unknown options, missing values and values for flags", () => {
  const message = (args: string[]) => {
    try {
      parseLine(args);
    } catch (error) {
      assert.ok(error instanceof CommandLineError);
      assert.equal(error.exitCode, 2);
      return error.message;
    }
    assert.fail("no error");
  };
  assert.equal(message(["--frob"]), 'Unknown option "--frob"');
  assert.equal(message(["-Z"]), 'Unknown option "-Z"');
  assert.equal(message(["--output"]), 'Option "--output" needs a value (DIR)');
  assert.equal(message(["-o"]), 'Option "-o" needs a value (DIR)');
  assert.equal(message(["--force=yes"]), 'Option "--force" takes no value');
  assert.equal(message(["--no-force"]), 'Unknown option "--no-force"');
});

Deno.test("every option a command lists exists, and every option is in some command's list", () => {
  const used = new Set(COMMANDS.flatMap((command) => command.options));
  for (const name of used) assert.ok(OPTIONS[name], name);
  for (const name of Object.keys(OPTIONS)) {
    assert.ok(used.has(name) || name === "version", `${name} is used by no command`);
  }
});

function sinks() {
  const out = { stdout: "", stderr: "" };
  const sink = (key: "stdout" | "stderr") => ({
    writeSync(p: Uint8Array) {
      out[key] += new TextDecoder().decode(p);
      return p.length;
    },
  });
  return { out, stdout: sink("stdout"), stderr: sink("stderr") };
}

Deno.test("runApp(): help and version on stdout, errors and usage on stderr", async () => {
  const terminal = { isTerminal: () => false, writeSync: (p: Uint8Array) => p.length };
  const signal = new AbortController().signal;
  const run = async (args: string[]) => {
    const { out, stdout, stderr } = sinks();
    const code = await runApp(args, { signal, terminal, stdout, stderr });
    return { code, ...out };
  };
  const version = await run(["-V"]);
  assert.equal(version.code, 0);
  assert.match(
    version.stdout,
    /^qubes-recover \d+\.\d+\.\d+\nDeno \d+\.\d+\.\d+ .*\nsource commit .*\n$/,
  );
  const help = await run(["help", "verify"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: qubes-recover verify BACKUP/);
  assert.equal(help.stderr, "");
  const none = await run([]);
  assert.equal(none.code, 2);
  assert.equal(none.stdout, "");
  assert.match(none.stderr, /^qubes-recover: No command given\nUsage: /);
  const extra = await run(["info", "a", "b"]);
  assert.equal(extra.code, 2);
  assert.match(extra.stderr, /^qubes-recover: Unexpected argument "b"\n/);
  const noBackup = await run(["verify"]);
  assert.match(noBackup.stderr, /"verify" needs a BACKUP argument/);
});
