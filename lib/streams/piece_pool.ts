/**
 * Buffer ownership along the pipeline, so that memory is reused or freed as soon as the last
 * stage is done with it instead of whenever the garbage collector runs.
 *
 * A {@linkcode Piece} is bytes that one stage owns. The type says who owns a buffer: a stage
 * that takes a `Piece` owns it and must end it (pass it on, recycle it or give it away); a
 * stage that takes a plain `Uint8Array` only borrows it and never gives it back. Pieces come
 * in three kinds, which only {@linkcode Piece.recycle} tells apart:
 *
 * - pooled ({@linkcode PiecePool.take}): the buffers chunks are read into. Each has
 *   {@linkcode SCRATCH_BYTES} spare bytes after the longest piece ({@linkcode Piece.scratch}),
 *   so a stage that needs room after its input (AES-CBC decryption appends one block) works in
 *   place instead of copying; recycling returns the buffer to its pool.
 * - sole ({@linkcode Piece.sole}): the only view of a new buffer (a decryption result);
 *   recycling frees its memory at once.
 * - plain ({@linkcode Piece.from}): any other bytes; recycling leaves them to the collector.
 *
 * The ownership rules:
 *
 * 1. A piece belongs to one stage at a time. A stage that passes a piece on gives it up:
 *    {@linkcode Piece.handOver} returns the piece the next stage owns, and the giver must not
 *    touch the old one afterwards.
 * 2. Only the stage that is last to read a piece calls {@linkcode Piece.recycle}, once. A piece
 *    cut into parts ({@linkcode Piece.split}, {@linkcode Piece.part}) is given back with the
 *    part that ends where its data ends; recycling an earlier part changes nothing.
 * 3. A piece that is never recycled is simply collected: forgetting is safe, recycling too
 *    early or twice is not (the next read overwrites the buffer). A stage whose next reader
 *    does not recycle (the tar parser, a worker, salvage) ends the piece with
 *    {@linkcode Piece.giveAway} and passes on its bytes.
 *
 * Every method that ends a piece marks it spent; recycling a spent piece again does nothing.
 * With checks on ({@linkcode setPieceChecks}, or `QUBES_RECOVER_PIECE_CHECKS=1` in the
 * environment, as `deno task test` sets it), misuse throws {@linkcode PieceOwnershipError}:
 * reading, passing on or recycling a spent piece, and recycling a buffer whose last part was
 * already given back. A recycled or handed-over pooled buffer also moves to a new
 * `ArrayBuffer` object, so every stale `Uint8Array` view of it is detached (reads see no bytes,
 * writes throw). Without checks the cost is one boolean test per call.
 *
 * @example
 * ```ts
 * const pool = new PiecePool(2 * 1024 * 1024, 8);
 * const piece = pool.take(1000); // 1000 bytes to read into, with scratch room after them
 * await file.read(piece.bytes);
 * const next = piece.handOver(); // given to the next stage: `piece` is spent
 * next.recycle(); // the last reader: the buffer is taken again by the next take()
 * ```
 *
 * @module
 */

/** Spare bytes after each pooled piece: one AES block. */
export const SCRATCH_BYTES = 16;

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

/** How a piece's buffer is given back when its last part is recycled. */
const enum Kind {
  /** Left to the collector. */
  Plain,
  /** Returned to its pool. */
  Pooled,
  /** Freed at once (detached). */
  Sole,
}

/** Makes a pooled piece (for {@linkcode PiecePool}; the constructor is private). */
let pooledPiece: (bytes: Uint8Array, pool: PiecePool, end: number) => Piece;

/**
 * Bytes owned by one stage at a time, with the methods that pass them on or end them (the
 * rules are in the module documentation).
 *
 * @example
 * ```ts
 * const result = Piece.sole(new Uint8Array(await crypto.subtle.decrypt(algorithm, key, data)));
 * controller.enqueue(result); // the next stage owns it, and recycles it when done
 * ```
 */
export class Piece {
  #bytes: Uint8Array;
  #kind: Kind;
  #pool: PiecePool | undefined;
  /** Where the data of the buffer ends (pooled pieces): the part ending there gives it back. */
  #end: number;
  #spent = false;

  private constructor(bytes: Uint8Array, kind: Kind, pool: PiecePool | undefined, end: number) {
    this.#bytes = bytes;
    this.#kind = kind;
    this.#pool = pool;
    this.#end = end;
  }

  static {
    pooledPiece = (bytes, pool, end) => new Piece(bytes, Kind.Pooled, pool, end);
  }

  /**
   * A plain piece of `bytes`: recycling it leaves the buffer to the collector, so this is safe
   * for any bytes, also borrowed ones (the piece's owner only reads them).
   */
  static from(bytes: Uint8Array): Piece {
    return new Piece(bytes, Kind.Plain, undefined, 0);
  }

  /**
   * A piece of `bytes`, the only view of a buffer fresh from the call that made it (a
   * decryption result), so that {@linkcode recycle} may free the memory at once.
   */
  static sole(bytes: Uint8Array): Piece {
    return new Piece(bytes, Kind.Sole, undefined, 0);
  }

  /** The bytes, for the owner to read (or fill); valid until the piece is ended. */
  get bytes(): Uint8Array {
    if (this.#spent && checks) throw spentError("read");
    return this.#bytes;
  }

  /** How many bytes the piece holds. */
  get length(): number {
    return this.#bytes.length;
  }

  /**
   * How many scratch bytes follow the piece, which its owner may overwrite: the spare room of
   * its pooled buffer when the piece ends where the data read into that buffer ends, else 0.
   */
  get scratch(): number {
    const bytes = this.#bytes;
    if (this.#kind !== Kind.Pooled || bytes.byteOffset + bytes.byteLength !== this.#end) return 0;
    return bytes.buffer.byteLength - this.#end;
  }

  /** The piece's bytes followed by `room` of its {@linkcode scratch} bytes, as one view. */
  withScratch(room: number): Uint8Array {
    const bytes = this.bytes;
    if (room > this.scratch) throw new RangeError(`a piece has no ${room} scratch bytes`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength + room);
  }

  /**
   * Gives the piece up to the next stage (rule 1), returning the piece the next stage owns;
   * this one is spent. With checks on, a whole pooled piece moves to a new `ArrayBuffer`
   * object, so the giver's views are detached and any later use of them shows.
   */
  handOver(): Piece {
    this.#finish("hand over");
    const bytes = this.#bytes;
    if (!checks || this.#kind !== Kind.Pooled) {
      return new Piece(bytes, this.#kind, this.#pool, this.#end);
    }
    const buffer = bytes.buffer as ArrayBuffer;
    if (buffer.detached) throw detachedError("handed over");
    const length = bytes.byteLength;
    if (bytes.byteOffset !== 0 || length !== this.#end) {
      // A part cannot be moved: its siblings still read the buffer.
      return new Piece(bytes, this.#kind, this.#pool, this.#end);
    }
    return new Piece(
      new Uint8Array(buffer.transfer(), 0, length),
      Kind.Pooled,
      this.#pool,
      this.#end,
    );
  }

  /**
   * Ends the use of the piece (rule 2): a pooled buffer goes back to its pool (the next read
   * overwrites it), a sole one is freed, a plain one is left to the collector. A part that
   * stops short of the end of its buffer's data (or holds no bytes) changes nothing: the buffer
   * is given back with its last part, once the parts before it are done.
   */
  recycle(): void {
    if (this.#spent) {
      if (checks) throw spentError("recycle");
      return; // Ended already: giving the buffer back twice would lend it twice.
    }
    this.#spent = true;
    const kind = this.#kind;
    if (kind === Kind.Plain) return;
    const bytes = this.#bytes;
    const buffer = bytes.buffer;
    if (!(buffer instanceof ArrayBuffer)) return;
    if (checks && buffer.detached) throw detachedError("recycled");
    // An empty part may sit at the end of a buffer whose other parts are still read.
    if (bytes.byteLength === 0) return;
    const end = bytes.byteOffset + bytes.byteLength;
    if (kind === Kind.Sole) {
      if (end === buffer.byteLength) buffer.transfer(0); // Detaching releases the memory now.
      return;
    }
    if (end === this.#end) this.#pool!.put(buffer);
  }

  /**
   * Cuts the piece in two at `at`: the parts own the buffer together (this piece is spent),
   * and it is given back with the second part.
   */
  split(at: number): [Piece, Piece] {
    const bytes = this.bytes;
    const parts: [Piece, Piece] = [this.part(0, at), this.part(at, bytes.length)];
    this.#spent = true;
    return parts;
  }

  /**
   * A part of the piece (`start` to `end` of its bytes), for a stage that cuts a piece into
   * several parts and passes each on: the buffer is given back with the part that ends where
   * its data ends. The piece itself must not be used once its parts are passed on.
   */
  part(start: number, end = this.length): Piece {
    return new Piece(this.bytes.subarray(start, end), this.#kind, this.#pool, this.#end);
  }

  /**
   * Ends the piece without giving its buffer back (rule 3), for a reader that does not recycle
   * (the tar parser, salvage) or a transfer to a worker (see {@linkcode PiecePool.adopt} for
   * what comes back): returns the bytes, which now belong to the caller.
   */
  giveAway(): Uint8Array {
    this.#finish("give away");
    return this.#bytes;
  }

  /** Marks the piece spent; with checks, a piece ended already throws. */
  #finish(what: string): void {
    if (this.#spent && checks) throw spentError(what);
    this.#spent = true;
  }
}

function spentError(what: string): PieceOwnershipError {
  return new PieceOwnershipError(
    `A piece was used (${what}) after it was recycled, handed over, split or given away`,
  );
}

function detachedError(what: string): PieceOwnershipError {
  return new PieceOwnershipError(
    `A piece was ${what} after its buffer was given back or moved (its buffer is detached)`,
  );
}

/**
 * A free list of equal buffers, of `pieceSize + SCRATCH_BYTES` bytes each.
 *
 * @example
 * ```ts
 * const pool = new PiecePool(2 * 1024 * 1024, 8);
 * const piece = pool.take(1000); // 1000 bytes to read into, with scratch room after them
 * piece.recycle(); // the buffer is taken again by the next take()
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

  /**
   * A piece of `length` bytes (contents undefined) at the start of a pooled buffer; a plain
   * piece when `length` is more than the pool's pieces.
   */
  take(length: number): Piece {
    if (length > this.pieceSize) return Piece.from(new Uint8Array(length));
    const buffer = this.#free.pop() ?? this.#create();
    return pooledPiece(new Uint8Array(buffer, 0, length), this, length);
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
   * The piece again of bytes that were given away ({@linkcode Piece.giveAway}) and came back
   * from a transfer (to a worker and back) in a new ArrayBuffer object: a pooled piece when
   * the buffer is one of this pool's size, else a plain one.
   */
  adopt(bytes: Uint8Array): Piece {
    const buffer = bytes.buffer;
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength !== this.pieceSize + SCRATCH_BYTES) {
      return Piece.from(bytes);
    }
    return pooledPiece(bytes, this, bytes.byteOffset + bytes.byteLength);
  }

  /** Takes back a buffer of this pool; called by {@linkcode Piece.recycle}. */
  put(buffer: ArrayBuffer): void {
    if (this.#free.length < this.keep) this.#free.push(checks ? buffer.transfer() : buffer);
  }
}
