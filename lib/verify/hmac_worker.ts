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
  | {
    op: "update";
    id: number;
    seq: number;
    buffer: ArrayBuffer;
    byteOffset: number;
    byteLength: number;
  }
  | { op: "digest"; id: number; seq: number }
  | { op: "ping"; seq: number };

/** An answer to the main thread. */
export type HmacReply =
  | { seq: number; buffer: ArrayBuffer }
  | { seq: number; hex: string }
  | { seq: number; error: string };

const macs = new Map<number, Hmac>();
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<HmacRequest>) => void) | null;
  postMessage(message: HmacReply, transfer?: Transferable[]): void;
};

scope.onmessage = ({ data: request }) => {
  try {
    if (request.op === "ping") {
      scope.postMessage({ seq: request.seq, hex: "" });
    } else if (request.op === "init") {
      macs.set(request.id, createHmac(request.digest, request.key));
    } else if (request.op === "update") {
      const { buffer, byteOffset, byteLength } = request;
      macs.get(request.id)!.update(new Uint8Array(buffer, byteOffset, byteLength));
      scope.postMessage({ seq: request.seq, buffer: request.buffer }, [request.buffer]);
    } else {
      const hex = macs.get(request.id)!.digest("hex");
      macs.delete(request.id);
      scope.postMessage({ seq: request.seq, hex });
    }
  } catch (error) {
    if (request.op !== "init") {
      scope.postMessage({ seq: request.seq, error: (error as Error).message });
    }
  }
};
