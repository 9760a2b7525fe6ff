/**
 * Where a file's data lies: runs of consecutive blocks, in logical order.
 *
 * @module
 */

/** `length` blocks of a file from logical block `logical` lie at physical block `physical`. */
export interface Run {
  logical: number;
  physical: number;
  length: number;
}

/** What a run walker needs to know about the file system and the file. */
export interface RunContext {
  /** Reads one block of the file system. */
  readBlock(block: number): Promise<Uint8Array>;
  blockSize: number;
  /** Blocks in the file system: no pointer may reach this far. */
  blocksCount: number;
  /** Inode number, for messages. */
  inode: number;
  /** Blocks covered by the file's size: runs are clipped to it, nothing past it is read. */
  limit: number;
}

/** Gathers single blocks into runs; yields a run when the next block does not continue it. */
export class RunBuilder {
  #run: Run | undefined;

  /** Adds `length` blocks at `logical` -> `physical`; returns the finished run, if any. */
  add(logical: number, physical: number, length: number): Run | undefined {
    const run = this.#run;
    if (
      run !== undefined && run.logical + run.length === logical &&
      run.physical + run.length === physical
    ) {
      run.length += length;
      return undefined;
    }
    this.#run = { logical, physical, length };
    return run;
  }

  /** The last run, if any. */
  finish(): Run | undefined {
    const run = this.#run;
    this.#run = undefined;
    return run;
  }
}
