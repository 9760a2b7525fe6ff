/**
 * Worker side of {@link OffThreadHmac}: HMACs computed with node:crypto on another core.
 * Pieces arrive transferred (not copied) and are transferred back once hashed.
 *
 * @module
 */

import { createHmac, type Hmac } from "node:crypto";

/** A request from the main thread. */
export type HmacRequest =
  | { op: "init"; id: number; digest: string; key: Uint8Array }
  | { op: "update"; id: number; buffer: ArrayBuffer; byteOffset: number; byteLength: number }
  | { op: "digest"; id: number; seq: number }
  | { op: "discard"; id: number }
  | { op: "ping"; seq: number };

/** An answer to the main thread: a digest comes with every buffer of its HMAC, in order. */
export type HmacReply =
  | { seq: number; hex: string; buffers: ArrayBuffer[] }
  | { seq: number; error: string };

/** An HMAC in progress: the buffers it has hashed, and the first error of an update. */
interface Job {
  mac: Hmac;
  buffers: ArrayBuffer[];
  error?: string;
}

const jobs = new Map<number, Job>();
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<HmacRequest>) => void) | null;
  postMessage(message: HmacReply, transfer?: Transferable[]): void;
};

scope.onmessage = ({ data: request }) => {
  if (request.op === "ping") {
    scope.postMessage({ seq: request.seq, hex: "", buffers: [] });
  } else if (request.op === "init") {
    try {
      jobs.set(request.id, { mac: createHmac(request.digest, request.key), buffers: [] });
    } catch (error) {
      jobs.set(request.id, { error: (error as Error).message } as Job);
    }
  } else if (request.op === "update") {
    const job = jobs.get(request.id);
    if (job === undefined) return;
    const { buffer, byteOffset, byteLength } = request;
    job.buffers.push(buffer);
    if (job.error !== undefined) return;
    try {
      job.mac.update(new Uint8Array(buffer, byteOffset, byteLength));
    } catch (error) {
      job.error = (error as Error).message;
    }
  } else if (request.op === "discard") {
    jobs.delete(request.id);
  } else {
    const job = jobs.get(request.id);
    jobs.delete(request.id);
    if (job === undefined || job.error !== undefined) {
      scope.postMessage({ seq: request.seq, error: job?.error ?? "unknown HMAC" });
      return;
    }
    try {
      const hex = job.mac.digest("hex");
      scope.postMessage({ seq: request.seq, hex, buffers: job.buffers }, job.buffers);
    } catch (error) {
      scope.postMessage({ seq: request.seq, error: (error as Error).message });
    }
  }
};
