/** The application's replicated state machine, written by users. */
import type { Entry } from "../core/types.ts";
import type { SnapshotMeta } from "../storage/snapshot-store.ts";

/**
 * What `apply` answers for one entry: bytes, which the `write` that proposed the entry resolves
 * with, or an {@link ApplyFailure}, which it rejects with. Blank and membership entries get an
 * empty `Uint8Array`.
 */
export type ApplyResponse = Uint8Array | ApplyFailure;

/**
 * Applies committed entries in log order. Entries of every kind are given (blank and membership
 * entries too) so the state machine can track its applied index; it interprets only `command`
 * entries' `data` and returns an empty response for the others.
 *
 * With `snapshot` and `restore` (both or neither) and a `snapshotStore` given to `Raft`, the log
 * is compacted (§7): the driver calls them in log order with `apply`, never concurrently with
 * another call of this interface, except that the stream `snapshot` returns is consumed while
 * later `apply` calls run.
 */
export interface StateMachine {
  /**
   * Applies a batch of committed entries, returning one response per entry, in order. An entry
   * whose command failed deterministically gets an `ApplyFailure` as its response.
   */
  apply(entries: readonly Entry[]): Promise<ApplyResponse[]> | ApplyResponse[];
  /**
   * The index of the last entry the state machine has applied and will still have after a
   * restart (0 for a state machine that keeps nothing). Entries after it are replayed on start,
   * after a restore from the latest snapshot if this is below it.
   */
  lastApplied(): Promise<number> | number;
  /**
   * Captures the state as of the last entry applied and returns it as a stream of chunks. The
   * driver calls `apply` again before the stream is consumed, so the stream must be of the state
   * at the time of the call (a copy, copy-on-write, or a read transaction). The chunks are
   * written to the SnapshotStore as they come: the state never needs to sit whole in memory.
   */
  snapshot?(): AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>;
  /**
   * Replaces the whole state with the snapshot `meta` read from `data` (a leader's snapshot, or
   * the latest one on start). Afterwards the state is as of `meta.index`. If it throws, the node
   * stops (the state may be half restored); a durable state machine should switch atomically.
   */
  restore?(meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void>;
}

/**
 * A deterministic failure of one command (a failed compare-and-set, say): every replica fails it
 * the same way, so only that write is rejected. Any other error thrown by `apply` stops the node,
 * because replicas could have diverged.
 */
export class ApplyFailure extends Error {
  override name = "ApplyFailure";
}
