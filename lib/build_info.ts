/**
 * What a build is made of, for `qubes-recover --version`: the Deno runtime it runs on and the
 * source commit it was built from.
 *
 * The release build (release/build.ts) bakes the commit in by replacing the line marked
 * `release: commit` in its staging copy of this file. Run from a checkout, the commit is read
 * from the checkout's `.git` (reading only, so that `--allow-read` is all it needs); anything
 * else says "unknown".
 *
 * @module
 */

/** The commit a release was built from; `undefined` outside a release build. */
const BAKED_COMMIT: string | undefined = undefined; // release: commit

/** The lines `--version` adds after the program's own: runtime and source commit. */
export function buildLines(): string[] {
  const commit = BAKED_COMMIT ?? checkoutCommit();
  return [
    `Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    commit === undefined
      ? "source commit unknown"
      : BAKED_COMMIT === undefined
      ? `source commit ${commit} (from the checkout; uncommitted changes are not shown)`
      : `source commit ${commit}`,
  ];
}

/** The commit checked out next to this file, read from `.git` without running git. */
function checkoutCommit(): string | undefined {
  if (!import.meta.url.startsWith("file:")) return undefined;
  try {
    const root = new URL("../", import.meta.url);
    const dotGit = new URL(".git", root).pathname;
    let gitDir = `${dotGit}/`;
    if (Deno.statSync(dotGit).isFile) {
      // A worktree or submodule: ".git" is a file "gitdir: PATH".
      const target = Deno.readTextFileSync(dotGit).match(/^gitdir: (.+)$/m)?.[1];
      if (target === undefined) return undefined;
      gitDir = target.startsWith("/") ? `${target}/` : new URL(`${target}/`, root).pathname;
    }
    const head = Deno.readTextFileSync(`${gitDir}HEAD`).trim();
    if (/^[0-9a-f]{40,64}$/.test(head)) return head;
    const ref = head.match(/^ref: (.+)$/)?.[1];
    if (ref === undefined) return undefined;
    const commonDir = readOptional(`${gitDir}commondir`)?.trim();
    const dirs = [gitDir];
    if (commonDir !== undefined) {
      dirs.push(commonDir.startsWith("/") ? `${commonDir}/` : `${gitDir}${commonDir}/`);
    }
    for (const dir of dirs) {
      const loose = readOptional(`${dir}${ref}`)?.trim();
      if (loose !== undefined && /^[0-9a-f]{40,64}$/.test(loose)) return loose;
      const packed = readOptional(`${dir}packed-refs`);
      const line = packed?.split("\n").find((entry) => entry.endsWith(` ${ref}`));
      if (line !== undefined) return line.split(" ")[0];
    }
  } catch {
    // no readable checkout: "unknown"
  }
  return undefined;
}

function readOptional(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
