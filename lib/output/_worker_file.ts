/**
 * Small files written on another core (`files get`): the main thread reads the image and
 * gathers each small file's data into a batch buffer; a worker (write_worker.ts) creates,
 * writes, times and publishes the files of a batch with the protocol of `SmallFile`. A tree of
 * thousands of small files is mostly file-system calls, and these then run beside the reading
 * instead of after it.
 *
 * The buffers are shared with the worker, which marks one free (an `Atomics` store) as soon as
 * it has written its batch. When every buffer is with the worker, {@link WriteWorker.file}
 * returns undefined and the caller writes that file on this thread: the worker has two batches
 * queued then, and this thread, which would otherwise wait, takes a share of the writing. No
 * turn of the event loop is needed to see a buffer come back.
 *
 * Memory: {@link BUFFERS} buffers of {@link BATCH_BYTES} bytes. `TreeWriter` waits for every
 * file before it finishes (directory times, renaming folders into place) or gives up, as for
 * `BackgroundFile`.
 *
 * @module
 */

import type { InPlace } from "./_small_file.ts";
import type { Owner, WriteJob, WriteOutcome, WriteReply, WriteRequest } from "./write_worker.ts";

/** Bytes of file data per batch (one buffer); no small file is larger. */
const BATCH_BYTES = 4 << 20;
/** Files per batch at most (empty files take no room in the buffer). */
const BATCH_FILES = 256;
/** Buffers: one being filled while the others are with the worker. */
const BUFFERS = 3;

/** A batch being filled, then written by the worker. */
interface Batch {
  /** Which shared buffer holds its data. */
  slot: number;
  bytes: Uint8Array;
  used: number;
  jobs: WriteJob[];
  settle: Array<{ resolve: (outcome: WriteOutcome) => void; reject: (error: unknown) => void }>;
  /** Files with room in it that are neither submitted nor dropped yet. */
  open: number;
  /** To be sent as soon as no file is open in it. */
  due: boolean;
}

/** The worker that writes small files, and the batches on their way to it. */
export class WriteWorker {
  readonly #worker: Worker;
  #seq = 0;
  readonly #replies = new Map<number, (reply: WriteReply) => void>();
  readonly #sent = new Map<number, Batch>();
  /** Rejects the {@link chown} calls not answered yet. */
  readonly #chowning = new Set<(error: Error) => void>();
  /** One Int32 per buffer, shared: 1 while the worker has the buffer. */
  readonly #state: Int32Array;
  readonly #buffers: Uint8Array[] = [];
  #batch: Batch | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failure: Error | undefined;
  /** Whether the worker answered; false when it could not start (then write on this thread). */
  readonly ready: Promise<boolean>;

  private constructor(worker: Worker) {
    this.#worker = worker;
    const state = new SharedArrayBuffer(4 * BUFFERS);
    this.#state = new Int32Array(state);
    const buffers: SharedArrayBuffer[] = [];
    for (let i = 0; i < BUFFERS; i++) {
      buffers.push(new SharedArrayBuffer(BATCH_BYTES));
      this.#buffers.push(new Uint8Array(buffers[i]!));
    }
    worker.onmessage = ({ data }: MessageEvent<WriteReply>) => {
      const reply = this.#replies.get(data.seq);
      this.#replies.delete(data.seq);
      reply?.(data);
    };
    let started: (ok: boolean) => void;
    this.ready = new Promise((resolve) => started = resolve);
    worker.onerror = (event) => {
      event.preventDefault();
      started(false);
      this.#fail(new Error(`the worker writing small files stopped: ${event.message}`));
    };
    this.#post({ seq: 0, ping: true, state, buffers }, () => started(true));
  }

  /** Starts the worker; undefined when none can be made here. */
  static start(): WriteWorker | undefined {
    try {
      // A literal URL: the release build finds the worker's file by it.
      return new WriteWorker(
        new Worker(new URL("./write_worker.ts", import.meta.url), { type: "module" }),
      );
    } catch {
      return undefined;
    }
  }

  /** A `WriteWorker` over `worker`, a stand-in for write_worker.ts (tests). */
  static over(worker: Worker): WriteWorker {
    return new WriteWorker(worker);
  }

  /**
   * A file of `size` bytes (at most {@link BATCH_BYTES}) to be written by the worker, or
   * undefined when every buffer is with the worker (write it on this thread then).
   */
  file(dir: string, name: string, size: number, inPlace?: InPlace): WorkerFile | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    let batch = this.#batch;
    if (
      batch !== undefined &&
      (batch.used + size > BATCH_BYTES || batch.jobs.length >= BATCH_FILES)
    ) {
      batch.due = true;
      this.#sendIfReady(batch);
      if (this.#batch === batch) throw new TypeError("WriteWorker: a file of the batch is open");
      batch = undefined;
    }
    if (batch === undefined) {
      const slot = this.#freeSlot();
      if (slot < 0) return undefined;
      batch = this.#batch = {
        slot,
        bytes: this.#buffers[slot]!,
        used: 0,
        jobs: [],
        settle: [],
        open: 0,
        due: false,
      };
    }
    const at = batch.used;
    batch.used += size;
    batch.open++;
    return new WorkerFile(this, batch, at, size, dir, name, inPlace);
  }

  /** Queue `job` (whose data is in `batch`) for the worker. */
  submit(batch: Batch, job: WriteJob): Promise<WriteOutcome> {
    const outcome = new Promise<WriteOutcome>((resolve, reject) => {
      batch.jobs.push(job);
      batch.settle.push({ resolve, reject });
    });
    batch.open--;
    if (batch.jobs.length >= BATCH_FILES) batch.due = true;
    this.#sendIfReady(batch);
    // Whatever is gathered goes out once this thread waits for anything.
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      const current = this.#batch;
      if (current === undefined || current.jobs.length === 0) return;
      current.due = true;
      this.#sendIfReady(current);
    }, 0);
    return outcome;
  }

  /** A file of `batch` that will not be written. */
  drop(batch: Batch): void {
    batch.open--;
    this.#sendIfReady(batch);
  }

  /** Has the worker give `owners` their owners (`chownAll`); resolves when it is done. */
  chown(owners: Owner[]): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        this.#post({ seq: ++this.#seq, owners }, () => {
          this.#chowning.delete(reject);
          resolve();
        });
        this.#chowning.add(reject);
      } catch (error) {
        reject(error);
      }
    });
  }

  /** Stops the worker (after every file has settled). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#worker.terminate();
    this.#fail(new Error("the worker writing small files was stopped"));
  }

  #sendIfReady(batch: Batch): void {
    if (!batch.due || batch.open > 0) return;
    if (this.#batch === batch) this.#batch = undefined;
    // A batch without jobs leaves its buffer free (its state is still 0).
    if (batch.jobs.length === 0) return;
    if (this.#failure !== undefined) {
      for (const { reject } of batch.settle) reject(this.#failure);
      return;
    }
    const seq = ++this.#seq;
    this.#sent.set(seq, batch);
    Atomics.store(this.#state, batch.slot, 1);
    this.#post({ seq, jobs: batch.jobs, slot: batch.slot }, (reply) => {
      this.#sent.delete(seq);
      batch.settle.forEach(({ resolve }, i) => resolve(reply.outcomes[i]!));
    });
  }

  #post(request: WriteRequest, onReply: (r: WriteReply) => void): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#replies.set(request.seq, onReply);
    this.#worker.postMessage(request);
  }

  /** A buffer neither with the worker nor being filled; -1 when there is none. */
  #freeSlot(): number {
    for (let slot = 0; slot < BUFFERS; slot++) {
      if (Atomics.load(this.#state, slot) === 0) return slot;
    }
    return -1;
  }

  /** Every file not written yet fails with `error`; nothing more is sent. */
  #fail(error: Error): void {
    this.#failure ??= error;
    for (const batch of this.#sent.values()) {
      for (const { reject } of batch.settle) reject(this.#failure);
      // A file the worker was writing when it stopped must not stay under its name.
      for (const job of batch.jobs) {
        if (job.inPlace === undefined) continue;
        try {
          Deno.removeSync(`${job.dir}/${job.name}`);
        } catch {
          // Not there, or written and kept: either way nothing half-written is left.
        }
      }
    }
    this.#sent.clear();
    this.#replies.clear();
    for (const reject of this.#chowning) reject(this.#failure);
    this.#chowning.clear();
  }
}

/**
 * A small file gathered into a batch buffer, then written by the worker: a `SinkFile` (not
 * named here, which would make an import cycle with writer_fs.ts).
 */
export class WorkerFile {
  /** Written in the background: the writer may go on before {@link publish} settles. */
  readonly background = true;
  /** How many such files the writer may have in flight: as many as the buffers hold. */
  readonly window = BATCH_FILES * BUFFERS;
  readonly #worker: WriteWorker;
  readonly #batch: Batch;
  readonly #at: number;
  readonly #room: number;
  readonly #dir: string;
  readonly #name: string;
  readonly #inPlace: InPlace | undefined;
  /** Triples: offset in the file, length, offset in the buffer. */
  readonly #ranges: number[] = [];
  #size = 0;
  #mode = 0;
  #mtime = 0;
  #open = true;

  constructor(
    worker: WriteWorker,
    batch: Batch,
    at: number,
    room: number,
    dir: string,
    name: string,
    inPlace: InPlace | undefined,
  ) {
    this.#worker = worker;
    this.#batch = batch;
    this.#at = at;
    this.#room = room;
    this.#dir = dir;
    this.#name = name;
    this.#inPlace = inPlace;
  }

  write(offset: number, bytes: Uint8Array): Promise<void> {
    if (!this.#open) return Promise.reject(new TypeError("WorkerFile is closed"));
    if (offset + bytes.length > this.#room) {
      return Promise.reject(new RangeError(`this file holds at most ${this.#room} bytes`));
    }
    if (bytes.length === 0) return Promise.resolve();
    // Read straight into the buffer (see `target`): nothing to copy.
    const filled = bytes.buffer === this.#batch.bytes.buffer &&
      bytes.byteOffset === this.#batch.bytes.byteOffset + this.#at + offset;
    if (!filled) this.#batch.bytes.set(bytes, this.#at + offset);
    const ranges = this.#ranges;
    const last = ranges.length - 3;
    if (last >= 0 && ranges[last]! + ranges[last + 1]! === offset) {
      ranges[last + 1]! += bytes.length;
    } else ranges.push(offset, bytes.length, this.#at + offset);
    return Promise.resolve();
  }

  target(offset: number, length: number): Uint8Array | undefined {
    if (!this.#open || offset < 0 || offset + length > this.#room) return undefined;
    const at = this.#at + offset;
    return this.#batch.bytes.subarray(at, at + length);
  }

  commit(size: number, mode: number, mtime: number): Promise<void> {
    this.#size = size;
    this.#mode = mode;
    this.#mtime = mtime;
    return Promise.resolve();
  }

  async publish(finalPath: string, replace: boolean): Promise<boolean> {
    if (!this.#open) throw new TypeError("WorkerFile is closed");
    this.#open = false;
    const outcome = await this.#worker.submit(this.#batch, {
      dir: this.#dir,
      name: this.#name,
      ...(this.#inPlace === undefined ? {} : { inPlace: this.#inPlace }),
      finalPath,
      replace,
      size: this.#size,
      mode: this.#mode,
      mtime: this.#mtime,
      ranges: this.#ranges,
    });
    if (outcome === "done") return true;
    if (outcome === "exists") return false;
    throw revive(outcome);
  }

  discard(): Promise<void> {
    if (this.#open) this.#worker.drop(this.#batch);
    this.#open = false;
    return Promise.resolve();
  }
}

/** The worker's error as the Deno error it was (`AlreadyExists`, ...), with its `code`. */
function revive(outcome: { name: string; message: string; code?: string }): Error {
  const known = (Deno.errors as unknown as Record<string, new (message: string) => Error>)[
    outcome.name
  ];
  const error = known === undefined ? new Error(outcome.message) : new known(outcome.message);
  if (outcome.code !== undefined) Object.defineProperty(error, "code", { value: outcome.code });
  return error;
}
