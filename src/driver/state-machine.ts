/** The application's replicated state machine, written by users. */
import type { Entry } from "../core/types.ts";

export type ApplyResponse = Uint8Array | ApplyFailure;

/**
 * Applies committed entries in log order. Entries of every kind are given (blank and membership
 * entries too) so the state machine can track its applied index; it interprets only `command`
 * entries' `data` and returns an empty response for the others.
 */
export interface StateMachine {
  /**
   * Applies a batch of committed entries, returning one response per entry, in order. An entry
   * whose command failed deterministically gets an `ApplyFailure` as its response.
   */
  apply(entries: readonly Entry[]): Promise<ApplyResponse[]> | ApplyResponse[];
  /**
   * The index of the last entry the state machine has applied and will still have after a
   * restart (0 for a state machine that keeps nothing). Entries after it are replayed on start.
   */
  lastApplied(): Promise<number> | number;
}

/**
 * A deterministic failure of one command (a failed compare-and-set, say): every replica fails it
 * the same way, so only that write is rejected. Any other error thrown by `apply` stops the node,
 * because replicas could have diverged.
 */
export class ApplyFailure extends Error {
  override name = "ApplyFailure";
}
