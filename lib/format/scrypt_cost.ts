/**
 * Bounds on the scrypt work a format-4 backup may ask for before anything is authenticated.
 * A scrypt file's parameters are covered only by an unkeyed checksum, so anyone can raise them
 * without the passphrase; the key derivation must run before the file's HMAC can be checked.
 *
 * - The first derivation (`backup-header.hmac`) may cost at most what Qubes ever wrote:
 *   {@link QUBES_SCRYPT_LIMIT}. Qubes ran `scrypt enc` with its defaults (5 seconds, an eighth
 *   of dom0's memory), which picks r = 8, N = 2^logN within that memory, and p to fill about
 *   5 seconds of the writing CPU: on the 2-core machine of docs/performance.md logN 20, p 1
 *   (1 GiB) with 1 GiB of memory to use, logN 19, p 2 with 512 MiB (a dom0 of 4 GiB), once
 *   logN 19, p 4. Where memory sets N, p grows with the CPU's speed, and so does the work
 *   (memory × p): 1-2 GiB here, 4 GiB on a CPU about four times as fast. The limit allows
 *   2 GiB of memory (N for a dom0 of up to 16 GiB) and 16 GiB of work (a CPU about sixteen
 *   times this machine's, for the CPUs backups will be written on); a forged header can make
 *   one derivation cost that much (about 70 s here) before it fails authentication.
 * - Every later file may cost as much as that limit, or more when the authenticated header
 *   itself did: its memory and four times its work. `scrypt enc` picks each file's parameters
 *   afresh from the CPU speed and the memory it sees at that moment, so a later file can ask
 *   for more than the header: seen on a busy machine, a header of logN 19, p 4 (512 MiB) and a
 *   `qubes.xml` of logN 20, p 1 (1 GiB) in the same backup.
 * - `maxScryptMemory` (the `--max-scrypt-memory` option) raises both: memory to it, work to
 *   twice it.
 *
 * @module
 */

import type { ScryptParams } from "../crypto/mod.ts";
import { UnsupportedError, UsageError } from "../errors.ts";

/** What a derivation costs: bytes of memory at once, and bytes mixed in all (memory × p). */
export interface ScryptCost {
  memory: number;
  work: number;
}

/** The most a Qubes backup's `backup-header.hmac` may ask for (see the module text). */
export const QUBES_SCRYPT_LIMIT: ScryptCost = { memory: 2 * 1024 ** 3, work: 16 * 1024 ** 3 };

/** The cost of deriving a key with `params`. */
export function scryptCost(params: Pick<ScryptParams, "logN" | "r" | "p">): ScryptCost {
  const memory = 128 * params.r * 2 ** params.logN;
  return { memory, work: memory * params.p };
}

/** Which scrypt costs a backup may ask for: first the header's, then the chunks'. */
export class ScryptPolicy {
  readonly #user: ScryptCost | undefined;
  #header: ScryptCost | undefined;

  /** @param maxMemory What the user allows per derivation, in bytes (`--max-scrypt-memory`). */
  constructor(maxMemory?: number) {
    this.#user = maxMemory === undefined ? undefined : { memory: maxMemory, work: 2 * maxMemory };
  }

  /** Checks the parameters of `backup-header.hmac`; remembers its cost once it is authentic. */
  checkHeader(name: string, params: ScryptParams): void {
    check(name, params, widen(QUBES_SCRYPT_LIMIT, this.#user), "a Qubes backup may use");
  }

  /** Records the cost of the authenticated header: it widens the bound of every later file. */
  headerAuthenticated(params: ScryptParams): void {
    this.#header = scryptCost(params);
  }

  /** Checks the parameters of a later file (a chunk). */
  checkChunk(name: string, params: ScryptParams): void {
    const header = this.#header ?? QUBES_SCRYPT_LIMIT;
    const limit = widen(QUBES_SCRYPT_LIMIT, { memory: header.memory, work: 4 * header.work });
    check(name, params, widen(limit, this.#user), "a file of this backup may use");
  }
}

function widen(limit: ScryptCost, user: ScryptCost | undefined): ScryptCost {
  if (user === undefined) return limit;
  return { memory: Math.max(limit.memory, user.memory), work: Math.max(limit.work, user.work) };
}

function check(name: string, params: ScryptParams, limit: ScryptCost, what: string): void {
  const cost = scryptCost(params);
  if (cost.memory <= limit.memory && cost.work <= limit.work) return;
  throw new UnsupportedError({
    reason: "beyond-limit",
    action: "decrypt",
    subject: { kind: "chunk", name },
    detail: `it asks for scrypt logN=${params.logN}, r=${params.r}, p=${params.p} (${
      size(cost.memory)
    } of memory, ${size(cost.work)} of work), more than ${what} (${size(limit.memory)}, ${
      size(limit.work)
    })`,
  });
}

function size(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${Number((bytes / 1024 ** 3).toFixed(2))} GiB`
    : `${Number((bytes / 1024 ** 2).toFixed(2))} MiB`;
}

/**
 * Reads a memory size as the user writes it: bytes, or a number with `K`, `M`, `G` (powers of
 * 1024, an optional `iB`/`B`): `4G`, `1536M`, `2GiB`. Undefined for undefined.
 *
 * @throws {UsageError} For anything else.
 */
export function parseMemorySize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (match === null) {
    throw new UsageError({
      reason: "usage",
      action: `read --max-scrypt-memory "${text}"`,
      detail: "give a size such as 4G or 1536M",
    });
  }
  const power = " kmgt".indexOf((match[2] || " ").toLowerCase());
  return Math.floor(Number(match[1]) * 1024 ** power);
}
