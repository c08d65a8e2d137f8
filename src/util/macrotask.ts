/**
 * Runs a task on a later macrotask, once the I/O that is ready now has been handled: the point
 * where the driver and the SQLite store gather everything that arrived together into one batch
 * (one core step, one transaction) without adding a fixed delay.
 *
 * Where the runtime has `setImmediate` (Node, Bun and Deno) the task runs in the same turn of the
 * event loop, right after its I/O callbacks, at no system call. Elsewhere (browsers, workers) a
 * MessageChannel message carries it. Never `setTimeout(0)`: that waits a millisecond or more.
 */
type Schedule = (task: () => void) => void;

/** Posts `task` as a MessageChannel message; the channel is closed once used. */
function viaMessageChannel(task: () => void): void {
  const channel = new MessageChannel();
  // (Node's types describe the worker_threads port, without the web `onmessage`.)
  const port = channel.port1 as unknown as { onmessage: (() => void) | null; close(): void };
  port.onmessage = () => {
    port.close();
    task();
  };
  channel.port2.postMessage(null);
}

// Read from globalThis: `setImmediate` is not a web global, so its use is feature-detected here
// only (Biome bars the bare name from src/).
const immediate = (globalThis as { setImmediate?: (task: () => void) => unknown }).setImmediate;

export const nextMacrotask: Schedule =
  immediate === undefined ? viaMessageChannel : (task) => void immediate(task);
