/**
 * The worker behind `WriteWorker` (_worker_file.ts): writes batches of small files on another
 * core while the main thread reads the image. Each file goes through `SmallFile`, the same
 * protocol as on the main thread (exclusive create, data, exact length, time, mode, and the
 * `link()` that never replaces unless it was created in place). The batch's buffer goes back
 * with the outcomes, to be filled again.
 *
 * @module
 */

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
  | { seq: number; ping: true }
  | { seq: number; jobs: WriteJob[]; buffer: ArrayBuffer };

/** What became of a job: written, not written because its name exists, or an error. */
export type WriteOutcome = "done" | "exists" | { name: string; message: string; code?: string };

/** A reply to the main thread: one outcome per job, and the buffer back. */
export interface WriteReply {
  seq: number;
  outcomes: WriteOutcome[];
  buffer?: ArrayBuffer;
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
  postMessage(message: WriteReply, transfer?: Transferable[]): void;
};

scope.onmessage = ({ data: request }) => {
  if ("ping" in request) {
    scope.postMessage({ seq: request.seq, outcomes: [] });
    return;
  }
  const data = new Uint8Array(request.buffer);
  const outcomes = request.jobs.map((job) => runJob(job, data));
  scope.postMessage({ seq: request.seq, outcomes, buffer: request.buffer }, [request.buffer]);
};
