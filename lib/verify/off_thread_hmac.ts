/**
 * HMACs of chunks computed on another core while the main thread decodes: each piece is
 * transferred to a worker (no copy) and hashed with node:crypto; all of a chunk's pieces come
 * back in one message with its digest.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import type { HmacReply, HmacRequest } from "./hmac_worker.ts";

class HmacWorker {
  #worker: Worker;
  #seq = 0;
  #pending = new Map<number, { resolve: (reply: HmacReply) => void; reject: (e: Error) => void }>();
  /** Whether the worker answered: a worker that cannot load must not be sent any data. */
  readonly ready: Promise<boolean>;

  constructor() {
    this.#worker = new Worker(new URL("./hmac_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = ({ data }: MessageEvent<HmacReply>) => {
      const waiter = this.#pending.get(data.seq);
      this.#pending.delete(data.seq);
      if ("error" in data) waiter?.reject(new Error(data.error));
      else waiter?.resolve(data);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      for (const waiter of this.#pending.values()) waiter.reject(new Error(event.message));
      this.#pending.clear();
    };
    this.ready = this.ask((seq) => ({ op: "ping", seq })).then(() => true, () => false);
  }

  post(request: HmacRequest, transfer: Transferable[] = []): void {
    this.#worker.postMessage(request, transfer);
  }

  ask(request: (seq: number) => HmacRequest, transfer: Transferable[] = []): Promise<HmacReply> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      this.#worker.postMessage(request(seq), transfer);
    });
  }

  terminate(): void {
    this.#worker.terminate();
    for (const waiter of this.#pending.values()) waiter.reject(new Error("HMAC worker stopped"));
    this.#pending.clear();
  }
}

let shared: HmacWorker | undefined;
let nextId = 0;

function worker(): HmacWorker | undefined {
  if (shared === undefined) {
    try {
      shared = new HmacWorker();
    } catch {
      return undefined; // No workers here: hash on the main thread.
    }
  }
  return shared;
}

/** Starts the shared worker now (it takes a moment to load) for a user registered already. */
export function startHmacWorker(): void {
  if (users > 0) worker();
}

let users = 0;

/**
 * Registers a user of the shared worker; the returned function ends the use, and the worker
 * (which would keep the process alive) stops when its last user is done. Call it once.
 */
export function useHmacWorker(): () => void {
  users++;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--users === 0) {
      shared?.terminate();
      shared = undefined;
    }
  };
}

/**
 * An incremental HMAC computed off the main thread (on the main thread where no worker can run).
 *
 * @example
 * ```ts
 * const mac = await OffThreadHmac.create("sha512", passphrase);
 * for (const piece of pieces) mac.update(piece);
 * const { hex, pieces: back } = await mac.finish();
 * ```
 */
export class OffThreadHmac {
  #id = ++nextId;
  #worker: HmacWorker | undefined;
  #local: ReturnType<typeof createHmac> | undefined;
  /** Pieces fed to the local HMAC. */
  #kept: Uint8Array[] = [];
  /** Offset and length of each piece sent to the worker. */
  #shapes: Array<[number, number]> = [];

  /**
   * Starts an HMAC, in the shared worker when it runs.
   *
   * @param digest A node:crypto digest name.
   * @param key The HMAC key.
   */
  static async create(digest: string, key: Uint8Array): Promise<OffThreadHmac> {
    const candidate = worker();
    return new OffThreadHmac(
      digest,
      key,
      candidate && await candidate.ready ? candidate : undefined,
    );
  }

  private constructor(digest: string, key: Uint8Array, on: HmacWorker | undefined) {
    this.#worker = on;
    if (on === undefined) this.#local = createHmac(digest, key);
    else on.post({ op: "init", id: this.#id, digest, key: key.slice() });
  }

  /**
   * Feeds the next piece. Its whole buffer is transferred to the worker (other views of it are
   * emptied) until {@linkcode finish} hands every piece back at once. Pieces are hashed in call
   * order.
   */
  update(piece: Uint8Array): void {
    if (this.#worker === undefined) {
      this.#local!.update(piece);
      this.#kept.push(piece);
      return;
    }
    // A SharedArrayBuffer cannot be transferred: its piece is copied first.
    const own = piece.buffer instanceof ArrayBuffer ? piece : piece.slice();
    const { byteOffset, byteLength } = own;
    const buffer = own.buffer as ArrayBuffer;
    this.#shapes.push([byteOffset, byteLength]);
    this.#worker.post({ op: "update", id: this.#id, buffer, byteOffset, byteLength }, [buffer]);
  }

  /** Drops what was fed without a digest (the worker lets go of the pieces it holds). */
  discard(): void {
    this.#kept = [];
    this.#worker?.post({ op: "discard", id: this.#id });
  }

  /**
   * The HMAC of everything fed, as lower-case hex, and the pieces fed, in order: views of the
   * same bytes as given (in the buffers the worker sends back).
   */
  async finish(): Promise<{ hex: string; pieces: Uint8Array[] }> {
    if (this.#worker === undefined) return { hex: this.#local!.digest("hex"), pieces: this.#kept };
    const reply = await this.#worker.ask((seq) => ({ op: "digest", id: this.#id, seq }));
    const { hex, buffers } = reply as { hex: string; buffers: ArrayBuffer[] };
    const pieces = buffers.map((buffer, index) => {
      const [byteOffset, byteLength] = this.#shapes[index]!;
      return new Uint8Array(buffer, byteOffset, byteLength);
    });
    return { hex, pieces };
  }
}
