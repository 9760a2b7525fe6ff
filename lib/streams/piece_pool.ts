/**
 * Buffer ownership along the pipeline, so that memory is reused or freed as soon as the last
 * stage is done with it instead of whenever the garbage collector runs:
 *
 * - {@linkcode PiecePool}: the buffers chunks are read into. Each has
 *   {@linkcode SCRATCH_BYTES} spare bytes after the longest piece, so a stage that needs room
 *   after its input (AES-CBC decryption appends one block) works in place instead of copying.
 * - {@linkcode soleView}: marks a buffer that one view owns (a decryption result), so that
 *   {@linkcode recycle} frees its memory at once.
 *
 * The ownership rules:
 *
 * 1. A piece belongs to one stage at a time. A stage that passes a whole piece on (enqueues it)
 *    gives it up: {@linkcode handOver} says so, and it must not touch the piece afterwards.
 * 2. Only the stage that is last to read a piece calls {@linkcode recycle}, once; a piece split
 *    into parts is given back with its last part (earlier parts change nothing).
 * 3. A piece that is never recycled is simply collected: forgetting is safe, recycling too
 *    early or twice is not (the next read overwrites the buffer).
 *
 * With checks on ({@linkcode setPieceChecks}, or `QUBES_RECOVER_PIECE_CHECKS=1` in the
 * environment, as `deno task test` sets it), rules 1 and 2 are enforced: a recycled or
 * handed-over buffer is moved to a new `ArrayBuffer` object, so every stale view of it is
 * detached (reads see no bytes, writes throw), and recycling a detached buffer throws
 * {@linkcode PieceOwnershipError}. Without checks the cost is one boolean test per call.
 *
 * @module
 */

/** Spare bytes after each pooled piece: one AES block. */
export const SCRATCH_BYTES = 16;

/** A lent buffer: its pool, and where the data read into it ends. */
interface Loan {
  pool: PiecePool;
  end: number;
}

const loans = new WeakMap<ArrayBufferLike, Loan>();
const sole = new WeakSet<ArrayBufferLike>();

/** A piece used against the ownership rules (only raised with checks on). */
export class PieceOwnershipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PieceOwnershipError";
  }
}

let checks = checksFromEnvironment();

function checksFromEnvironment(): boolean {
  const variable = "QUBES_RECOVER_PIECE_CHECKS";
  // Asked without a prompt: the release binary may not read it, and runs without checks.
  if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return false;
  return Deno.env.get(variable) === "1";
}

/**
 * Turns the ownership checks on or off (tests); returns whether they were on.
 *
 * @example
 * ```ts
 * const before = setPieceChecks(true);
 * try {
 *   await run(); // stages that take, hand over and recycle pieces
 * } finally {
 *   setPieceChecks(before);
 * }
 * ```
 */
export function setPieceChecks(on: boolean): boolean {
  const before = checks;
  checks = on;
  return before;
}

/** Whether the ownership checks are on. */
export function pieceChecks(): boolean {
  return checks;
}

/**
 * A free list of equal buffers, of `pieceSize + SCRATCH_BYTES` bytes each.
 *
 * @example
 * ```ts
 * const pool = new PiecePool(2 * 1024 * 1024, 8);
 * const piece = pool.take(1000); // 1000 bytes to read into, with scratch room after them
 * recycle(piece); // the buffer is taken again by the next take()
 * ```
 */
export class PiecePool {
  #free: ArrayBuffer[] = [];
  #created = 0;

  /**
   * @param pieceSize The longest piece.
   * @param keep How many free buffers are kept for reuse; more are left to the collector.
   */
  constructor(readonly pieceSize: number, readonly keep: number) {}

  /** A view of `length` bytes (contents undefined) at the start of a pooled buffer. */
  take(length: number): Uint8Array {
    if (length > this.pieceSize) return new Uint8Array(length);
    const buffer = this.#free.pop() ?? this.#create();
    loans.set(buffer, { pool: this, end: length });
    return new Uint8Array(buffer, 0, length);
  }

  /** How many buffers the pool has made: the rest of what it lent were reused. */
  get created(): number {
    return this.#created;
  }

  #create(): ArrayBuffer {
    this.#created++;
    return new ArrayBuffer(this.pieceSize + SCRATCH_BYTES);
  }

  /**
   * Lends again a piece of this pool that came back from a transfer (to a worker and back)
   * in a new ArrayBuffer object.
   */
  adopt(piece: Uint8Array): void {
    if (piece.buffer.byteLength !== this.pieceSize + SCRATCH_BYTES) return;
    loans.set(piece.buffer, { pool: this, end: piece.byteOffset + piece.byteLength });
  }

  /** Takes back a buffer of this pool; called by {@linkcode recycle}. */
  put(buffer: ArrayBuffer): void {
    if (this.#free.length < this.keep) this.#free.push(checks ? buffer.transfer() : buffer);
  }
}

/**
 * How many scratch bytes follow `piece`, which its owner may overwrite: the spare room of its
 * pooled buffer when the piece ends where the data read into that buffer ends, else 0.
 */
export function scratchAfter(piece: Uint8Array): number {
  const loan = loans.get(piece.buffer);
  if (loan === undefined || piece.byteOffset + piece.byteLength !== loan.end) return 0;
  return piece.buffer.byteLength - loan.end;
}

/**
 * Marks `piece` as the only view of its new buffer (fresh from the call that made it), so that
 * {@linkcode recycle} may free the memory at once.
 */
export function soleView(piece: Uint8Array): Uint8Array {
  sole.add(piece.buffer);
  return piece;
}

/**
 * Ends the use of the buffer under `piece`: a pooled one goes back to its pool (the next read
 * overwrites it), a {@linkcode soleView} one is freed; others are left to the collector. Only
 * the piece's last user may call this. A view that stops short of the end of the buffer's data
 * is a part whose rest is still to come (a stage split the piece), so it changes nothing: the
 * buffer is given back with its last part, once the parts before it are done.
 */
export function recycle(piece: Uint8Array): void {
  const buffer = piece.buffer;
  if (!(buffer instanceof ArrayBuffer)) return;
  if (checks && buffer.detached) {
    throw new PieceOwnershipError(
      "A piece was recycled after it was recycled or handed over (its buffer is detached)",
    );
  }
  const end = piece.byteOffset + piece.byteLength;
  if (sole.has(buffer)) {
    if (end !== buffer.byteLength) return;
    sole.delete(buffer);
    buffer.transfer(0); // Detaching releases the memory now.
    return;
  }
  const loan = loans.get(buffer);
  if (loan === undefined || end !== loan.end) return;
  loans.delete(buffer);
  loan.pool.put(buffer);
}

/**
 * Gives up `piece` to the next stage (rule 1), returning the view the next stage owns. With
 * checks on, a whole pooled piece moves to a new `ArrayBuffer` object, so the giver's view is
 * detached and any later use of it shows; otherwise (and for parts, foreign buffers and sole
 * views) the piece is returned as it is.
 */
export function handOver(piece: Uint8Array): Uint8Array {
  if (!checks) return piece;
  const buffer = piece.buffer;
  if (!(buffer instanceof ArrayBuffer)) return piece;
  if (buffer.detached) {
    throw new PieceOwnershipError(
      "A piece was handed over after it was recycled or handed over (its buffer is detached)",
    );
  }
  const loan = loans.get(buffer);
  if (loan === undefined || piece.byteOffset !== 0 || piece.byteLength !== loan.end) return piece;
  const length = piece.byteLength;
  loans.delete(buffer);
  const moved = buffer.transfer();
  loans.set(moved, loan);
  return new Uint8Array(moved, 0, length);
}
