/**
 * The worker behind `WriteWorker` (_worker_file.ts): writes batches of small files on another
 * core while the main thread reads the image. Each file goes through `SmallFile`, the same
 * protocol as on the main thread (exclusive create, data, exact length, time, mode, and the
 * `link()` that never replaces unless it was created in place). The batches' buffers are
 * shared with the main thread: once a batch is written, its slot in the shared state is set to
 * 0 (free) at once, so the main thread may fill the buffer again before the outcomes (posted
 * after) reach it.
 *
 * @module
 */

import { lchownSync } from "node:fs";
import { type InPlace, SmallFile } from "./_small_file.ts";

/** One small file to write. */
export interface WriteJob {
  dir: string;
  name: string;
  inPlace?: InPlace;
  finalPath: string;
  replace: boolean;
  size: number;
  mode: number;
  mtime: number;
  /** The data: triples of (offset in the file, length, offset in the batch's buffer). */
  ranges: number[];
}

/** A request from the main thread. */
export type WriteRequest =
  | {
    seq: number;
    ping: true;
    /** One Int32 per buffer: 1 while the worker has it, 0 once it is free again. */
    state: SharedArrayBuffer;
    buffers: SharedArrayBuffer[];
  }
  | { seq: number; jobs: WriteJob[]; slot: number }
  | { seq: number; owners: Owner[] };

/** An owner to give a written node (as root): `lchown`, which never follows a symlink. */
export interface Owner {
  path: string;
  uid: number;
  gid: number;
}

/** Gives each node its owner; best effort, like modes and times. */
export function chownAll(owners: readonly Owner[]): void {
  for (const { path, uid, gid } of owners) {
    try {
      lchownSync(path, uid, gid);
    } catch {
      // As for modes and times: the data is what matters.
    }
  }
}

/** What became of a job: written, not written because its name exists, or an error. */
export type WriteOutcome = "done" | "exists" | { name: string; message: string; code?: string };

/** A reply to the main thread: one outcome per job. */
export interface WriteReply {
  seq: number;
  outcomes: WriteOutcome[];
}

/** Writes one file of a batch; never throws (nothing is left under a temporary name). */
function runJob(job: WriteJob, data: Uint8Array): WriteOutcome {
  let file: SmallFile | undefined;
  try {
    file = SmallFile.create(job.dir, job.name, job.inPlace);
    const ranges = job.ranges;
    for (let i = 0; i < ranges.length; i += 3) {
      const at = ranges[i + 2]!;
      file.write(ranges[i]!, data.subarray(at, at + ranges[i + 1]!));
    }
    file.commit(job.size, job.mode, job.mtime);
    if (file.publish(job.finalPath, job.replace)) return "done";
    file.discard();
    return "exists";
  } catch (error) {
    file?.discard();
    const err = error instanceof Error ? error : new Error(String(error));
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === "string" ? { code } : {}) };
  }
}

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<WriteRequest>) => void) | null;
  postMessage(message: WriteReply): void;
};

let state: Int32Array | undefined;
let buffers: Uint8Array[] = [];

scope.onmessage = ({ data: request }) => {
  if ("ping" in request) {
    state = new Int32Array(request.state);
    buffers = request.buffers.map((buffer) => new Uint8Array(buffer));
    scope.postMessage({ seq: request.seq, outcomes: [] });
    return;
  }
  if ("owners" in request) {
    chownAll(request.owners);
    scope.postMessage({ seq: request.seq, outcomes: [] });
    return;
  }
  const data = buffers[request.slot]!;
  const outcomes = request.jobs.map((job) => runJob(job, data));
  // Free for the main thread from here: nothing more is read from it.
  Atomics.store(state!, request.slot, 0);
  scope.postMessage({ seq: request.seq, outcomes });
};
