/**
 * Runs real command-line tools (tar, openssl, split, scrypt, …) for the fixture builders, alone
 * or as a pipeline whose stages are joined the way a shell `|` joins them.
 *
 * @module
 */

/** One process of a pipeline: the program, its arguments and extra environment variables. */
export interface Step {
  /** Program name, looked up in PATH. */
  cmd: string;
  /** Arguments, passed verbatim (no shell). */
  args: string[];
  /** Variables added to the inherited environment. */
  env?: Record<string, string>;
}

/** Where a pipeline reads from and writes to. */
export interface RunOptions {
  /** Feed this file to the first process' standard input. */
  stdinFile?: string;
  /** Feed these bytes to the first process' standard input. */
  stdinBytes?: Uint8Array;
  /** Write the last process' standard output to this file (created or truncated). */
  stdoutFile?: string;
  /** With `stdoutFile`: append instead of truncating. */
  append?: boolean;
  /** Working directory of every process. */
  cwd?: string;
}

/** Quotes a command line for error messages. */
export function showCommand(step: Step): string {
  return [step.cmd, ...step.args].map((a) => /^[\w./:=+@%,-]+$/.test(a) ? a : JSON.stringify(a))
    .join(" ");
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Runs `steps` as a pipeline and returns the last process' standard output (empty when it went
 * to `stdoutFile`).
 *
 * @throws {Error} `Cannot run "<command>": exit code N: <stderr>` for the first process that
 * failed.
 */
export async function runPipeline(steps: Step[], options: RunOptions = {}): Promise<Uint8Array> {
  if (steps.length === 0) throw new RangeError("Cannot run a pipeline: no steps");
  const hasInput = options.stdinFile !== undefined || options.stdinBytes !== undefined;
  const children: Deno.ChildProcess[] = [];
  for (const [i, step] of steps.entries()) {
    try {
      children.push(
        new Deno.Command(step.cmd, {
          args: step.args,
          ...(step.env ? { env: step.env } : {}),
          ...(options.cwd ? { cwd: options.cwd } : {}),
          stdin: i > 0 || hasInput ? "piped" : "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn(),
      );
    } catch (error) {
      for (const child of children) {
        child.kill();
        await Promise.allSettled([child.status, child.stdout.cancel(), child.stderr.cancel()]);
      }
      throw new Error(`Cannot run "${showCommand(step)}": ${error}`, { cause: error });
    }
  }
  const plumbing: Promise<unknown>[] = [];
  const first = children[0]!;
  if (options.stdinFile !== undefined) {
    const file = await Deno.open(options.stdinFile);
    plumbing.push(file.readable.pipeTo(first.stdin));
  } else if (options.stdinBytes !== undefined) {
    const writer = first.stdin.getWriter();
    plumbing.push(writer.write(options.stdinBytes).then(() => writer.close()));
  }
  for (let i = 1; i < children.length; i++) {
    plumbing.push(children[i - 1]!.stdout.pipeTo(children[i]!.stdin));
  }
  const last = children[children.length - 1]!;
  let output: Promise<Uint8Array>;
  if (options.stdoutFile !== undefined) {
    const file = await Deno.open(options.stdoutFile, {
      write: true,
      create: true,
      ...(options.append ? { append: true } : { truncate: true }),
    });
    output = last.stdout.pipeTo(file.writable).then(() => new Uint8Array(0));
  } else {
    output = collect(last.stdout);
  }
  const errors = children.map((c) => collect(c.stderr));
  const statuses = await Promise.all(children.map((c) => c.status));
  const plumbingResults = await Promise.allSettled([...plumbing, output]);
  const stderrs = await Promise.all(errors);
  const decoder = new TextDecoder();
  for (let i = 0; i < children.length; i++) {
    if (!statuses[i]!.success) {
      throw new Error(
        `Cannot run "${showCommand(steps[i]!)}": exit code ${statuses[i]!.code}: ${
          decoder.decode(stderrs[i]!).trim()
        }`,
      );
    }
  }
  for (const result of plumbingResults) {
    if (result.status === "rejected") {
      throw new Error(`Cannot run "${steps.map(showCommand).join(" | ")}": ${result.reason}`, {
        cause: result.reason,
      });
    }
  }
  return await output;
}

/** Runs one command (see {@link runPipeline}) and returns its standard output. */
export function run(
  cmd: string,
  args: string[],
  options: RunOptions & { env?: Record<string, string> } = {},
): Promise<Uint8Array> {
  const { env, ...rest } = options;
  return runPipeline([{ cmd, args, ...(env ? { env } : {}) }], rest);
}

/** Runs one command and returns its standard output as text. */
export async function runText(
  cmd: string,
  args: string[],
  options: RunOptions & { env?: Record<string, string> } = {},
): Promise<string> {
  return new TextDecoder().decode(await run(cmd, args, options));
}

/** Whether `cmd` can be found and started (`cmd --version` or the given probe arguments). */
export async function hasTool(cmd: string, probe: string[] = ["--version"]): Promise<boolean> {
  try {
    await new Deno.Command(cmd, { args: probe, stdout: "null", stderr: "null" }).output();
    return true;
  } catch {
    return false;
  }
}
