/**
 * Compresses and encrypts converted items on other cores: the item's bytes are cut into blocks
 * of {@link BLOCK} bytes; gzip workers (one per core, at most 4) each turn a block into one gzip
 * member, several blocks at once; one more worker runs the item's single `openssl enc` CBC
 * chain over the result. The main thread only cuts, hands over and puts results back in order.
 * Where no worker can run, the same steps run on the main thread (pack_ops.ts).
 *
 * Memory: at most {@link GZIP_AHEAD} blocks per gzip worker and {@link SEAL_AHEAD} blocks of
 * encryption in flight, 1 MiB each, plus their results. The workers hand each block's buffer
 * back with its result, and it is reused: a buffer left in a worker is freed only when that
 * worker's garbage collector runs, which is rarely (measured: 335 MiB peak for 512 MiB through
 * gzip and encryption when they stayed there, 167-205 MiB now).
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { evpBytesToKey } from "../crypto/mod.ts";
import { CbcChain, gzipMember } from "./pack_ops.ts";
import type { PackReply, PackRequest } from "./pack_worker.ts";

/** Bytes per gzip member and per encryption call (a multiple of the AES block). */
export const BLOCK = 1 * 1024 * 1024;
/** Blocks in flight per gzip worker. */
const GZIP_AHEAD = 4;
/** Blocks in flight in the encryption worker. */
const SEAL_AHEAD = 4;
/** Gzip level: 1, the fastest (Qubes' `gzip` used 6; `gzip -d` reads any). */
const LEVEL = 1;

type Request = PackRequest extends infer R ? R extends { seq: number } ? Omit<R, "seq"> : never
  : never;

/** Block buffers handed back by the workers, reused for the next blocks. */
class BlockPool {
  #free: ArrayBuffer[] = [];

  take(): Uint8Array {
    const buffer = this.#free.pop();
    return buffer === undefined ? new Uint8Array(BLOCK) : new Uint8Array(buffer);
  }

  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength === BLOCK && this.#free.length < 16) this.#free.push(buffer);
  }
}

class PackWorker {
  #worker: Worker;
  #seq = 0;
  #pending = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<boolean>;

  constructor(pool: BlockPool) {
    this.#worker = new Worker(new URL("./pack_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = ({ data }: MessageEvent<PackReply>) => {
      const waiter = this.#pending.get(data.seq);
      this.#pending.delete(data.seq);
      if ("error" in data) {
        waiter?.reject(new Error(data.error));
        return;
      }
      if (data.input !== undefined) pool.give(data.input);
      waiter?.resolve(new Uint8Array(data.buffer, 0, data.length));
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#failAll(new Error(event.message));
    };
    this.ready = this.ask({ op: "ping" }).then(() => true, () => false);
  }

  #failAll(error: Error): void {
    for (const waiter of this.#pending.values()) waiter.reject(error);
    this.#pending.clear();
  }

  ask(request: Request, transfer: Transferable[] = []): Promise<Uint8Array> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      this.#worker.postMessage({ ...request, seq } as PackRequest, transfer);
    });
  }

  terminate(): void {
    this.#worker.terminate();
    this.#failAll(new Error("pack worker stopped"));
  }
}

/** A block of an item, and whether it is the item's last (possibly empty). */
interface Block {
  bytes: Uint8Array;
  last: boolean;
}

/** Cuts `source` into blocks of {@link BLOCK} bytes; the last one is shorter (maybe empty). */
async function* blocks(source: AsyncIterable<Uint8Array>, pool: BlockPool): AsyncGenerator<Block> {
  const size = BLOCK;
  let block = pool.take();
  let filled = 0;
  for await (let piece of source) {
    while (piece.length > 0) {
      const take = Math.min(size - filled, piece.length);
      block.set(piece.subarray(0, take), filled);
      filled += take;
      piece = piece.subarray(take);
      if (filled === size) {
        yield { bytes: block, last: false };
        block = pool.take();
        filled = 0;
      }
    }
  }
  yield { bytes: block.subarray(0, filled), last: true };
}

/** `work` on every block, up to `ahead` at once, results in order. */
async function* inOrder(
  source: AsyncIterable<Block>,
  work: (block: Block) => Promise<Uint8Array>,
  ahead: number,
): AsyncGenerator<Uint8Array> {
  const queue: Promise<Uint8Array>[] = [];
  for await (const block of source) {
    const result = work(block);
    result.catch(() => {}); // awaited below; an error after an earlier one is not unhandled
    queue.push(result);
    if (queue.length >= ahead) yield await queue.shift()!;
  }
  while (queue.length > 0) yield await queue.shift()!;
}

/** The bytes of a block as a transferable buffer of their own. */
function own(bytes: Uint8Array): ArrayBuffer {
  return (bytes.byteOffset === 0 ? bytes : bytes.slice()).buffer as ArrayBuffer;
}

let nextChain = 0;

/**
 * Gzip and encryption for the items of one conversion. Every piece it yields starts its own
 * buffer, which nothing else uses: it may be transferred. Call {@linkcode close} at the end.
 */
export class Packer {
  #gzippers: PackWorker[] = [];
  /** The gzip workers, started when gzip is first asked for (undefined: none may be started). */
  #gzipStart: Promise<PackWorker[]> | undefined;
  #sealer: PackWorker | undefined;
  #pool: BlockPool;
  #next = 0;

  private constructor(sealer: PackWorker | undefined, pool: BlockPool, workers: boolean) {
    this.#sealer = sealer;
    this.#pool = pool;
    if (!workers) this.#gzipStart = Promise.resolve([]);
  }

  /**
   * Starts the encryption worker when encrypting (none where workers cannot run, or with
   * `workers: false`: then everything runs on the main thread). The gzip workers start when
   * {@linkcode gzip} is first called: a conversion that keeps the source's gzip data
   * (gzip_splice.ts) may need none (each costs about 0.1 s of main-thread time to start).
   */
  static async start(
    options: { encrypt: boolean; workers?: boolean },
  ): Promise<Packer> {
    const pool = new BlockPool();
    const workers = options.workers !== false;
    const sealer = workers && options.encrypt ? (await startWorkers(1, pool))[0] : undefined;
    return new Packer(sealer, pool, workers);
  }

  /** `source` as a series of gzip members, one per {@link BLOCK} bytes (at least one). */
  async *gzip(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    this.#gzipStart ??= startWorkers(
      Math.max(1, Math.min(4, navigator.hardwareConcurrency ?? 1)),
      this.#pool,
    );
    this.#gzippers = await this.#gzipStart;
    let first = true;
    const members = inOrder(
      blocks(source, this.#pool),
      (block) => {
        // An empty last block makes a member only when it is the whole stream.
        if (block.bytes.length === 0 && !first) return Promise.resolve(new Uint8Array(0));
        first = false;
        if (this.#gzippers.length === 0) {
          return Promise.resolve(gzipMember(block.bytes, LEVEL));
        }
        const worker = this.#gzippers[this.#next++ % this.#gzippers.length]!;
        const buffer = own(block.bytes);
        return worker.ask(
          { op: "gzip", buffer, length: block.bytes.length, level: LEVEL },
          [buffer],
        );
      },
      GZIP_AHEAD * Math.max(1, this.#gzippers.length),
    );
    for await (const member of members) if (member.length > 0) yield member;
  }

  /**
   * `openssl enc -e -aes-256-cbc -md md5 -pass pass:P` of `source` (spec section 6):
   * `Salted__`, a random 8-byte salt, then one CBC chain over the whole input with PKCS#7
   * padding at its end.
   */
  async *encrypt(
    source: AsyncIterable<Uint8Array>,
    passphrase: Uint8Array,
  ): AsyncGenerator<Uint8Array> {
    const salt = new Uint8Array(randomBytes(8));
    const { key, iv } = evpBytesToKey("md5", passphrase, salt, 32, 16);
    const head = new Uint8Array(16);
    head.set(new TextEncoder().encode("Salted__"));
    head.set(salt, 8);
    yield head;
    const sealer = this.#sealer;
    let work: (block: Block) => Promise<Uint8Array>;
    if (sealer === undefined) {
      const chain = new CbcChain(key, iv);
      work = (block) => chain.encrypt(block.bytes, block.last);
    } else {
      const id = ++nextChain;
      await sealer.ask({ op: "seal-init", id, key, iv });
      work = (block) => {
        const buffer = own(block.bytes);
        return sealer.ask(
          { op: "seal", id, buffer, length: block.bytes.length, last: block.last },
          [buffer],
        );
      };
    }
    yield* inOrder(blocks(source, this.#pool), work, SEAL_AHEAD);
  }

  /** Stops the workers. */
  close(): void {
    this.#gzipStart?.then((workers) => {
      for (const worker of workers) worker.terminate();
    });
    this.#gzipStart = Promise.resolve([]);
    this.#sealer?.terminate();
    this.#gzippers = [];
    this.#sealer = undefined;
  }
}

/** `count` pack workers, or none where one cannot start or does not answer. */
async function startWorkers(count: number, pool: BlockPool): Promise<PackWorker[]> {
  const started: PackWorker[] = [];
  try {
    for (let i = 0; i < count; i++) started.push(new PackWorker(pool));
  } catch {
    for (const worker of started) worker.terminate();
    return []; // No workers here: the work runs on the main thread.
  }
  const answered = await Promise.all(started.map((worker) => worker.ready));
  if (answered.includes(false)) {
    for (const worker of started) worker.terminate();
    return [];
  }
  return started;
}
