/**
 * Runs one command and measures it: wall time, the peak RSS of its largest single process
 * (GNU time `%M`, exact) and the peak of the summed RSS of its whole process tree (sampled from
 * /proc every {@link SAMPLE_MS} ms, so short spikes can be missed).
 *
 * @module
 */

const SAMPLE_MS = 50;
const PAGE_BYTES = 4096;
const MIB = 1024 * 1024;

/** What one measured run gave. */
export interface Measurement {
  seconds: number;
  /** Peak RSS of the largest single process, MiB (GNU time `%M`). */
  rssProcMiB: number;
  /** Sampled peak of the summed RSS of the process tree, MiB. */
  rssTreeMiB: number;
  /** User plus system CPU seconds of the process and the children it waited for (GNU time). */
  cpuSeconds: number;
  code: number;
  stderr: string;
}

/** Options of {@link measure}. */
export interface MeasureOptions {
  env?: Record<string, string>;
  cwd?: string;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/** Summed resident bytes of `pid` and all its descendants (0 for processes already gone). */
async function treeRss(pid: number): Promise<number> {
  let total = 0;
  const pending = [pid];
  while (pending.length > 0) {
    const p = pending.pop()!;
    const statm = await readText(`/proc/${p}/statm`);
    if (statm === undefined) continue;
    total += Number(statm.split(" ")[1]) * PAGE_BYTES;
    const tasks: string[] = [];
    try {
      for await (const t of Deno.readDir(`/proc/${p}/task`)) tasks.push(t.name);
    } catch {
      continue;
    }
    for (const t of tasks) {
      const children = await readText(`/proc/${p}/task/${t}/children`);
      for (const c of children?.trim().split(/\s+/) ?? []) if (c !== "") pending.push(Number(c));
    }
  }
  return total;
}

/**
 * Runs `cmd args` under `/usr/bin/time -f %M` and samples its process tree until it ends.
 * Standard output is discarded; standard error is kept (for failures).
 */
export async function measure(
  cmd: string,
  args: string[],
  options: MeasureOptions = {},
): Promise<Measurement> {
  const timeFile = await Deno.makeTempFile({ prefix: "qr-bench-time-" });
  try {
    const start = performance.now();
    const child = new Deno.Command("/usr/bin/time", {
      args: ["-f", "%M %U %S", "-o", timeFile, cmd, ...args],
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let done = false;
    let peakTree = 0;
    const sampler = (async () => {
      while (!done) {
        peakTree = Math.max(peakTree, await treeRss(child.pid));
        await new Promise((r) => setTimeout(r, SAMPLE_MS));
      }
    })();
    const out = await child.output();
    const seconds = (performance.now() - start) / 1000;
    done = true;
    await sampler;
    const last = (await Deno.readTextFile(timeFile)).trim().split("\n").pop() ?? "";
    const [kib, user, system] = last.split(" ").map(Number) as [number, number, number];
    return {
      seconds,
      rssProcMiB: (kib * 1024) / MIB,
      cpuSeconds: user + system,
      rssTreeMiB: peakTree / MIB,
      code: out.code,
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(timeFile);
  }
}
