/**
 * The machine a benchmark ran on: CPUs, RAM, Deno and tool versions, for docs/performance.md.
 *
 * @module
 */

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout) || new TextDecoder().decode(out.stderr);
    return text.split("\n")[0]!.trim();
  } catch {
    return "not found";
  }
}

/** A multi-line description of this machine and the tools the benchmark runs. */
export async function machineReport(): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown";
  const meminfo = await Deno.readTextFile("/proc/meminfo");
  const memKiB = Number(/^MemTotal:\s*(\d+)/m.exec(meminfo)?.[1] ?? 0);
  const lines = [
    `CPU: ${navigator.hardwareConcurrency} x ${model}`,
    `RAM: ${(memKiB / 1024 / 1024).toFixed(1)} GiB`,
    `Kernel: ${await firstLine("uname", ["-r"])}`,
    `Deno: ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    `tar: ${await firstLine("tar", ["--version"])}`,
    `openssl: ${await firstLine("openssl", ["version"])}`,
    `gzip: ${await firstLine("gzip", ["--version"])}`,
    `scrypt: ${await firstLine("scrypt", ["--version"])}`,
  ];
  return lines.join("\n");
}
