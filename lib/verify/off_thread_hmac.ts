/**
 * HMACs of chunks computed on another core while the main thread decodes: each piece is
 * transferred to a worker (no copy), hashed with node:crypto, and transferred back.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import type { HmacReply, HmacRequest } from "./hmac_worker.ts";

class HmacWorker {
  #worker: Worker;
  #seq = 0;
  #pending = new Map<number, { resolve: (reply: HmacReply) => void; reject: (e: Error) => void }>();

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
 * An incremental HMAC computed off the main thread.
 *
 * @example
 * ```ts
 * const mac = new OffThreadHmac("sha512", passphrase);
 * const kept = await Promise.all(pieces.map((piece) => mac.update(piece)));
 * const hex = await mac.digestHex();
 * ```
 */
export class OffThreadHmac {
  #id = ++nextId;
  #worker: HmacWorker | undefined;
  #local: ReturnType<typeof createHmac> | undefined;

  /**
   * @param digest A node:crypto digest name.
   * @param key The HMAC key.
   */
  constructor(digest: string, key: Uint8Array) {
    this.#worker = worker();
    if (this.#worker === undefined) this.#local = createHmac(digest, key);
    else this.#worker.post({ op: "init", id: this.#id, digest, key: key.slice() });
  }

  /**
   * Feeds the next piece. The piece must own its whole buffer: it is transferred away and the
   * promise gives it back (as a new view) once hashed. Pieces are hashed in call order.
   */
  async update(piece: Uint8Array): Promise<Uint8Array> {
    if (this.#worker === undefined) {
      this.#local!.update(piece);
      return piece;
    }
    // Only a whole buffer can be transferred; a view is copied first.
    const whole = piece.byteOffset === 0 && piece.byteLength === piece.buffer.byteLength
      ? piece
      : piece.slice();
    const buffer = whole.buffer as ArrayBuffer;
    const reply = await this.#worker.ask((seq) => ({ op: "update", id: this.#id, seq, buffer }), [
      buffer,
    ]);
    return new Uint8Array((reply as { buffer: ArrayBuffer }).buffer);
  }

  /** The HMAC of everything fed, as lower-case hex. */
  async digestHex(): Promise<string> {
    if (this.#worker === undefined) return this.#local!.digest("hex");
    const reply = await this.#worker.ask((seq) => ({ op: "digest", id: this.#id, seq }));
    return (reply as { hex: string }).hex;
  }
}
