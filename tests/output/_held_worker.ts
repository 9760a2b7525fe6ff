// A stand-in for write_worker.ts (worker_file_test.ts): answers the ping, then keeps every
// batch (never writes it, never frees its buffer), as a worker far behind the main thread would.
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<{ seq: number; ping?: true }>) => void) | null;
  postMessage(message: unknown): void;
};
scope.onmessage = ({ data }) => {
  if (data.ping) scope.postMessage({ seq: data.seq, outcomes: [] });
};
