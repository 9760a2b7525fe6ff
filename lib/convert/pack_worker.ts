/**
 * Worker side of {@link Packer} (`convert`): gzip members and `openssl enc` encryption computed
 * off the main thread (pack_ops.ts). Blocks arrive transferred (not copied); results go back
 * transferred.
 *
 * - `gzip`: one block becomes one complete gzip member. Members are independent, so several
 *   workers compress consecutive blocks at once; their concatenation is a multi-member gzip
 *   stream, which `gzip -d` (what Qubes' restore runs) reads whole.
 * - `seal`: the blocks of one AES-256-CBC chain, encrypted in the order they arrive.
 *
 * @module
 */

import { CbcChain, gzipMember } from "./pack_ops.ts";

/** A request from the main thread. */
export type PackRequest =
  | { op: "ping"; seq: number }
  | { op: "gzip"; seq: number; buffer: ArrayBuffer; length: number; level: number }
  | { op: "seal-init"; seq: number; id: number; key: Uint8Array; iv: Uint8Array }
  | { op: "seal"; seq: number; id: number; buffer: ArrayBuffer; length: number; last: boolean };

/** An answer: the bytes made (one whole buffer), or the error that stopped it. */
export type PackReply =
  | { seq: number; buffer: ArrayBuffer }
  | { seq: number; error: string };

const chains = new Map<number, CbcChain>();
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<PackRequest>) => void) | null;
  postMessage(message: PackReply, transfer?: Transferable[]): void;
};

function reply(seq: number, bytes: Uint8Array): void {
  // A view of part of a buffer (node's shared pool, a dropped padding block) is copied first.
  const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : bytes.slice();
  scope.postMessage({ seq, buffer: own.buffer as ArrayBuffer }, [own.buffer as ArrayBuffer]);
}

function fail(seq: number, error: unknown): void {
  scope.postMessage({ seq, error: error instanceof Error ? error.message : String(error) });
}

scope.onmessage = ({ data: request }) => {
  if (request.op === "ping") {
    reply(request.seq, new Uint8Array(0));
  } else if (request.op === "gzip") {
    try {
      reply(
        request.seq,
        gzipMember(new Uint8Array(request.buffer, 0, request.length), request.level),
      );
    } catch (error) {
      fail(request.seq, error);
    }
  } else if (request.op === "seal-init") {
    chains.set(request.id, new CbcChain(request.key, request.iv));
    reply(request.seq, new Uint8Array(0));
  } else {
    const chain = chains.get(request.id);
    if (chain === undefined) {
      fail(request.seq, `unknown encryption stream ${request.id}`);
      return;
    }
    if (request.last) chains.delete(request.id);
    chain.encrypt(new Uint8Array(request.buffer, 0, request.length), request.last).then(
      (out) => reply(request.seq, out),
      (error) => fail(request.seq, error),
    );
  }
};
