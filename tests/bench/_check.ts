/**
 * The bit-exact check of a restored image: same apparent size and the same SHA-256 (computed
 * by `sha256sum`, which reads holes as zeros) as the source.
 *
 * @module
 */

/** SHA-256 hex of a file, by `sha256sum`. */
export async function sha256sum(path: string): Promise<string> {
  const out = await new Deno.Command("sha256sum", { args: [path], stdout: "piped" }).output();
  if (!out.success) throw new Error(`Cannot hash "${path}": sha256sum failed`);
  return new TextDecoder().decode(out.stdout).split(" ")[0]!;
}

/** Every file named `name` below `dir`. */
async function findAll(dir: string, name: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) found.push(...await findAll(path, name));
    else if (e.isFile && e.name === name) found.push(path);
  }
  return found;
}

/** What a restore left in its output folder. */
export interface OutputCheck {
  bitExact: boolean;
  /** Why not, when not. */
  problem?: string;
  /** Bytes the restored image occupies on disk (shows whether holes were kept). */
  allocated?: number;
}

/**
 * Checks that `outDir` holds exactly one `private.img` equal to the source (`size` bytes,
 * SHA-256 `sha256`).
 */
export async function checkOutput(
  outDir: string,
  size: number,
  sha256: string,
): Promise<OutputCheck> {
  const found = await findAll(outDir, "private.img");
  if (found.length !== 1) {
    return { bitExact: false, problem: `${found.length} private.img files in the output` };
  }
  const path = found[0]!;
  const stat = await Deno.stat(path);
  const allocated = (stat.blocks ?? 0) * 512;
  if (stat.size !== size) {
    return { bitExact: false, problem: `apparent size ${stat.size}, want ${size}`, allocated };
  }
  const got = await sha256sum(path);
  if (got !== sha256) {
    return { bitExact: false, problem: `sha256 ${got}, want ${sha256}`, allocated };
  }
  return { bitExact: true, allocated };
}
