/**
 * Format 4 costs one scrypt key derivation per chunk (about a second or more at Qubes' cost,
 * Qubes issue 6362). Derivations run off the main thread, so the next chunks are read and their
 * keys derived while the current one is decrypted and written: both cores stay busy.
 *
 * @module
 */

import {
  deriveScryptKeys,
  parseScryptHeader,
  type ScryptKeys,
  type ScryptParams,
} from "../crypto/mod.ts";
import type { OuterEntry } from "../outer/mod.ts";

/** An outer entry already read into memory, with its scrypt keys being derived. */
export interface PrefetchedEntry extends OuterEntry {
  /** Keys for this chunk's scrypt file, derived in the background; undefined if not a chunk. */
  readonly keys: Promise<ScryptKeys> | undefined;
}

/**
 * How many chunks to read and derive keys for ahead of the one being decrypted: one per core,
 * at most two (each derivation needs `128 * r * N` bytes, 1 GiB at logN 20).
 */
export const PREFETCH_DEPTH = Math.max(1, Math.min(2, navigator.hardwareConcurrency ?? 1));

/**
 * Reads entries ahead of the consumer and starts each chunk's key derivation at once.
 *
 * @param entries The remaining outer entries (after the header).
 * @param passwordFor The scrypt password of an entry, or undefined when it is not a chunk.
 * @param depth Entries kept ready ahead of the consumer.
 */
export async function* prefetchScryptEntries(
  entries: AsyncIterable<OuterEntry>,
  passwordFor: (name: string) => Uint8Array | undefined,
  depth = PREFETCH_DEPTH,
  checkParams: (name: string, params: ScryptParams) => void = () => {},
): AsyncGenerator<PrefetchedEntry> {
  const source = entries[Symbol.asyncIterator]();
  const limit = limiter(depth);
  // Reads must stay in archive order: each one starts when the previous one is done.
  let previous: Promise<unknown> = Promise.resolve();
  const fetchOne = (): Promise<PrefetchedEntry | undefined> => {
    const next = previous.then(async () => {
      const result = await source.next();
      if (result.done) return undefined;
      const data = await result.value.read();
      return prepare(result.value, data, passwordFor(result.value.name), limit, checkParams);
    });
    previous = next.catch(() => {});
    return next;
  };
  const window: Promise<PrefetchedEntry | undefined>[] = [];
  for (let i = 0; i < depth; i++) window.push(fetchOne());
  try {
    for (;;) {
      const entry = await window.shift()!;
      if (entry === undefined) return;
      window.push(fetchOne());
      yield entry;
    }
  } finally {
    // Settle what is in flight so no rejection goes unhandled, then release the source.
    await Promise.allSettled(window.map((p) => p.then((e) => e?.keys)));
    await source.return?.();
  }
}

/**
 * Runs at most `count` tasks at once: the window holds `depth` chunks, but the chunk being
 * decrypted may still be deriving, and every derivation needs its own `128 * r * N` bytes.
 */
function limiter(count: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    while (running >= count) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

function prepare(
  entry: OuterEntry,
  data: Uint8Array,
  password: Uint8Array | undefined,
  limit: <T>(task: () => Promise<T>) => Promise<T>,
  checkParams: (name: string, params: ScryptParams) => void,
): PrefetchedEntry {
  let consumed = false;
  let skipped = false;
  let keys: Promise<ScryptKeys> | undefined;
  if (password !== undefined) {
    // A chunk skipped (a VM not selected) before its turn costs no derivation.
    keys = limit(() =>
      skipped ? Promise.reject(new Error(`Entry "${entry.name}" was skipped`)) : (() => {
        const params = parseScryptHeader(data);
        checkParams(entry.name, params);
        return deriveScryptKeys(password, params);
      })()
    );
    keys.catch(() => {});
  }
  return {
    name: entry.name,
    size: entry.size,
    keys,
    read(onPiece) {
      if (consumed) throw new Error(`Entry "${entry.name}" was already read`);
      consumed = true;
      onPiece?.(data);
      return Promise.resolve(data);
    },
    async readPieces(_pieceSize, onPiece) {
      await onPiece(await this.read());
    },
    skip() {
      consumed = true;
      skipped = true;
      return Promise.resolve();
    },
  };
}
