/**
 * `openssl enc` CBC decryption of a salvaged stream (format 3, encrypted, uncompressed): the
 * item's ciphertext with lost chunks as marked zeros (see `chunks.ts`) becomes its plaintext
 * with lost ranges as marked zeros. CBC decrypts a block with the ciphertext block before it,
 * so after a lost range the first verified block serves only to restart the chain: its
 * plaintext is lost too (one extra 16-byte block, listed with the lost chunk's cause).
 *
 * @module
 */

import {
  evpBytesToKey,
  hasOpensslMagic,
  type KdfDigest,
  type OpensslCipher,
} from "../crypto/mod.ts";
import { CbcChain } from "../crypto/mod.ts";
import { DamagedError, IncompleteError } from "../errors.ts";
import { gapCause } from "./gap.ts";
import { lostBytes, type LostCause, lostCause } from "./lost.ts";

const BLOCK = 16;
/** Verified ciphertext decrypted at once. */
const SLICE = 4 * 1024 * 1024;

/** Options of {@link cbcSalvaged}. */
export interface CbcSalvageOptions {
  password: Uint8Array;
  digest: KdfDigest;
  cipher: OpensslCipher;
  /** The item, named in errors. */
  item: string;
}

/**
 * The plaintext of a salvaged `openssl enc` stream.
 *
 * @throws {IncompleteError} When the first 16 bytes (the salt) are lost: nothing can be decrypted.
 */
export async function* cbcSalvaged(
  input: AsyncIterable<Uint8Array>,
  options: CbcSalvageOptions,
): AsyncGenerator<Uint8Array> {
  const header = new Uint8Array(BLOCK);
  let headerFill = 0;
  let key: Uint8Array | undefined;
  /** The chain, or undefined while the block that restarts it is being gathered. */
  let chain: CbcChain | undefined;
  const restart = new Uint8Array(BLOCK);
  let restartFill = 0;
  /** The cause of the lost range before (the restart block is lost with it). */
  let before: LostCause | undefined;
  /** Verified ciphertext not decrypted yet. */
  let run: Uint8Array[] = [];
  let runLength = 0;

  /** Decrypts the run; keeps its last block back unless `all` (padding is in the last block). */
  async function* decryptRun(all: boolean, cause?: LostCause): AsyncGenerator<Uint8Array> {
    if (runLength === 0 || chain === undefined) return;
    const aligned = runLength - (runLength % BLOCK);
    const length = all ? aligned : aligned - BLOCK;
    if (length <= 0 && !(all && runLength % BLOCK !== 0)) return;
    const bytes = new Uint8Array(runLength + BLOCK);
    let at = 0;
    for (const piece of run) {
      bytes.set(piece, at);
      at += piece.length;
    }
    if (length > 0) {
      const framed = bytes.slice(0, length + BLOCK);
      yield (await chain.decryptMiddle(framed)).giveAway();
    }
    const rest = bytes.subarray(Math.max(length, 0), runLength);
    run = [];
    runLength = 0;
    if (all) {
      // A partial block before a lost range cannot be decrypted: it is lost with it.
      if (rest.length > 0) yield* lostBytes(rest.length, cause ?? before!);
    } else if (rest.length > 0) {
      run = [rest.slice()];
      runLength = rest.length;
    }
  }

  for await (let piece of input) {
    const cause = lostCause(piece);
    if (headerFill < BLOCK) {
      // A lost first chunk (lost bytes, or a break: `chunks.ts`) held the salt.
      const lost = cause ?? gapCause(piece);
      if (lost !== undefined) {
        throw new IncompleteError({
          reason: lost.reason === "missing" ? "missing" : "truncated",
          action: "salvage item",
          subject: { kind: "item", name: options.item },
          detail:
            `its first chunk ("${lost.chunk}") is lost (${lost.reason}), and it held the salt every key of it needs: nothing of it can be decrypted`,
        });
      }
      const n = Math.min(BLOCK - headerFill, piece.length);
      header.set(piece.subarray(0, n), headerFill);
      headerFill += n;
      piece = piece.subarray(n);
      if (headerFill === BLOCK) {
        if (!hasOpensslMagic(header)) {
          throw new DamagedError({
            reason: "damaged",
            action: "salvage item",
            subject: { kind: "item", name: options.item },
            detail: "its data does not start with openssl's salt",
          });
        }
        const derived = evpBytesToKey(
          options.digest,
          options.password,
          header.subarray(8, BLOCK),
          options.cipher.keyLength,
          options.cipher.ivLength,
        );
        key = derived.key;
        chain = await CbcChain.create(key, derived.iv);
      }
      if (piece.length === 0) continue;
    }
    if (cause !== undefined) {
      yield* decryptRun(true, cause);
      chain = undefined;
      restartFill = 0;
      before = cause;
      yield piece; // Marked zeros already.
      continue;
    }
    if (chain === undefined) {
      // After a lost range: these bytes only restart the chain; their plaintext is lost.
      const n = Math.min(BLOCK - restartFill, piece.length);
      restart.set(piece.subarray(0, n), restartFill);
      restartFill += n;
      yield* lostBytes(n, before!);
      piece = piece.subarray(n);
      if (restartFill < BLOCK) continue;
      chain = await CbcChain.create(key!, restart);
      if (piece.length === 0) continue;
    }
    run.push(piece);
    runLength += piece.length;
    if (runLength >= SLICE + BLOCK) yield* decryptRun(false);
  }
  // The end: the last block holds the padding, when the stream's end is there.
  if (chain === undefined || runLength === 0) return;
  const aligned = runLength - (runLength % BLOCK);
  if (aligned !== runLength || aligned === 0) {
    yield* decryptRun(true, { reason: "truncated", chunk: "" });
    return;
  }
  yield* decryptRun(false);
  const last = run[0]!;
  run = [];
  runLength = 0;
  const plain = await chain.decryptEnd(last);
  if (plain !== undefined) {
    if (plain.length > 0) yield plain;
    return;
  }
  // No valid padding: the stream's end is not there (its last chunk is missing). The last
  // block is listed as lost with the rest (its chain state is spent).
  yield* lostBytes(BLOCK, { reason: "truncated", chunk: "" });
}
