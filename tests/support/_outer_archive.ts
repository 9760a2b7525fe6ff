/**
 * The outer archive of formats 2-4: every entry appended by its own
 * `tar -cO --posix -C <stage> <name>` (spec §2.1), so each entry is a complete one-member pax
 * archive followed by zero blocks and record padding.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { run } from "./_run.ts";

/** Appends staged files to a backup file in order and remembers their names. */
export class OuterArchive {
  /** Entry names appended so far, in order. */
  readonly names: string[] = [];

  /**
   * @param path the backup file (created on the first append)
   * @param stage the folder entries are staged in, under their entry names
   */
  constructor(readonly path: string, readonly stage: string) {}

  /** Where the entry `name` is staged. */
  stagePath(name: string): string {
    return join(this.stage, name);
  }

  /** Creates the folder an entry `name` will be staged in. */
  async prepare(name: string): Promise<string> {
    const path = this.stagePath(name);
    await Deno.mkdir(dirname(path), { recursive: true });
    return path;
  }

  /** Stages `bytes` as entry `name`, then appends it. */
  async addBytes(name: string, bytes: Uint8Array): Promise<void> {
    await Deno.writeFile(await this.prepare(name), bytes);
    await this.append(name);
  }

  /** Appends the staged entry `name` and removes the staged file (as Qubes' SendWorker did). */
  async append(name: string): Promise<void> {
    await run("tar", ["-cO", "--posix", "-C", this.stage, name], {
      stdoutFile: this.path,
      append: true,
    });
    await Deno.remove(this.stagePath(name));
    this.names.push(name);
  }

  /** Appends the staged entries `names` in order (see {@link append}). */
  async appendAll(names: readonly string[]): Promise<void> {
    for (const name of names) await this.append(name);
  }
}
