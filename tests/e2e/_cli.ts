/**
 * Runs `main.ts` the way users run it: `deno run` with exactly the permissions of the
 * `recover` task (the ones `deno task compile` bakes into the binary).
 *
 * @module
 */

const root = new URL("../../", import.meta.url).pathname;

/** The runtime flags of the `recover` task in deno.json: permissions and V8 flags. */
export async function recoverFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const task: string = config.tasks.recover;
  return task.split(/\s+/).filter((word) => /^--(allow-|v8-flags=)/.test(word));
}

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runCli}. */
export interface CliOptions {
  passphrase?: string;
  stdin?: string | Uint8Array;
  env?: Record<string, string>;
}

/**
 * Runs the CLI with `args`; the passphrase (if any) goes through `QUBES_BACKUP_PASSPHRASE`.
 */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = { NO_COLOR: "1", ...options.env };
  if (options.passphrase !== undefined) env.QUBES_BACKUP_PASSPHRASE = options.passphrase;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...await recoverFlags(), `${root}main.ts`, ...args],
    env,
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    const bytes = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    // A CLI that stops reading early closes the pipe; that is not a test failure.
    await writer.write(bytes).catch(() => {});
    await writer.close().catch(() => {});
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Runs a shell command line (for fixture surgery), failing loudly. */
export async function sh(script: string): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`Command failed: ${script}\n${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Runs the CLI as {@linkcode runCli} does, with a tmpfs of `size` (`1m`, `96k`) mounted in a
 * user and mount namespace of its own (a full disk without root; see
 * `tests/support/tmpfs.ts`). `args` gets the mount point. Also returns what is left in the
 * tmpfs afterwards (paths below it, files and folders), listed before it goes away.
 */
export async function runCliOnSmallTmpfs(
  size: string,
  args: (mount: string) => string[],
  options: { passphrase: string },
): Promise<CliResult & { left: string[] }> {
  const work = await Deno.makeTempDir({ prefix: "qr-small-tmpfs-" });
  try {
    const mount = `${work}/mnt`;
    await Deno.mkdir(mount);
    const script = `mount -t tmpfs -o "size=$2" none "$1" || exit 99
shift 2
"$@"
code=$?
find "$0" -mindepth 1 -printf '%P\n' > "$0/../left"
exit $code`;
    const out = await new Deno.Command("unshare", {
      args: [
        "-rm",
        "sh",
        "-c",
        script,
        mount,
        mount,
        size,
        Deno.execPath(),
        "run",
        "--quiet",
        ...await recoverFlags(),
        `${root}main.ts`,
        ...args(mount),
      ],
      env: { QUBES_BACKUP_PASSPHRASE: options.passphrase, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const left = (await Deno.readTextFile(`${work}/left`)).split("\n").filter((line) => line);
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      left,
    };
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
