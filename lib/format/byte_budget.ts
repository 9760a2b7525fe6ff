/**
 * A bound on the chunk bytes held in memory at once, so reading ahead stays within about one
 * chunk plus a margin: the next chunk is read while the current one is decoded, as fast as
 * the decoder lets go of the current one's pieces.
 *
 * @module
 */

/** Who holds bytes: one chunk being read. */
export type BudgetOwner = object;

/** Counts held bytes and makes readers wait when over the limit. */
export class ByteBudget {
  #limit: number;
  #held = 0;
  #byOwner = new Map<BudgetOwner, number>();
  #waiting: Array<() => void> = [];

  /** @param limit Bytes that may be held at once (a chunk and a margin). */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Bytes held now. */
  get held(): number {
    return this.#held;
  }

  /**
   * Waits until `bytes` more fit, then counts them for `owner`. An owner alone is never
   * kept waiting, so a chunk larger than the limit is still read (without overlap).
   */
  async reserve(owner: BudgetOwner, bytes: number): Promise<void> {
    while (this.#held + bytes > this.#limit && this.#held - (this.#byOwner.get(owner) ?? 0) > 0) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#held += bytes;
    this.#byOwner.set(owner, (this.#byOwner.get(owner) ?? 0) + bytes);
  }

  /** Gives back bytes counted for `owner`. */
  release(owner: BudgetOwner, bytes: number): void {
    const mine = this.#byOwner.get(owner) ?? 0;
    const given = Math.min(mine, bytes);
    this.#held -= given;
    if (mine - given === 0) this.#byOwner.delete(owner);
    else this.#byOwner.set(owner, mine - given);
    for (const wake of this.#waiting.splice(0)) wake();
  }

  /**
   * Forgets every byte held and wakes every waiting reader: for an item whose read failed,
   * whose held pieces nobody will give back.
   */
  releaseAll(): void {
    this.#held = 0;
    this.#byOwner.clear();
    for (const wake of this.#waiting.splice(0)) wake();
  }
}
