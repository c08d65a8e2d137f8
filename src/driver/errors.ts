/** Typed errors of the `Raft` API. */
import type { NodeId } from "../core/types.ts";

/** This node is not the leader; `leaderId`/`leaderAddr` name the leader it knows of, if any. */
export class NotLeaderError extends Error {
  override name = "NotLeaderError";
  constructor(
    readonly leaderId: NodeId | null,
    readonly leaderAddr: string | null,
  ) {
    super(
      leaderId ? `not the leader; the leader is ${leaderId}` : "not the leader; no leader known",
    );
  }
}

/** Too many writes are pending: retry later (backpressure, never an unbounded queue). */
export class BackpressureError extends Error {
  override name = "BackpressureError";
}

/** The node shut down (or stopped after a fatal error) before the request completed. */
export class ShutdownError extends Error {
  override name = "ShutdownError";
}

/** The request did not complete in time; its outcome is unknown. */
export class TimeoutError extends Error {
  override name = "TimeoutError";
}

/** The write's entry was replaced by another leader's: it was not committed. */
export class LeadershipLostError extends Error {
  override name = "LeadershipLostError";
}

/** The node stopped because storage or the state machine failed; `cause` says how. */
export class FatalError extends Error {
  override name = "FatalError";
}

/**
 * Why an admin request (`addLearner`, `changeMembership`, `transferLeadership`) failed. A
 * request sent to a follower rejects with NotLeaderError instead.
 * - `change_in_progress`: another membership change is under way (one at a time), or a new
 *   leader has not yet committed an entry of its term; retry shortly.
 * - `transfer_in_progress`: a leadership transfer is under way.
 * - `invalid_membership`: the requested configuration is not valid (no voters, duplicates, a new
 *   voter without an address, a learner that is already a voter...).
 * - `unknown_target`: the transfer target is not a voter of the configuration.
 * - `transfer_aborted`: the target did not take over within an election timeout; this node
 *   still leads.
 * - `leadership_lost`: this node stopped leading before the change completed: its outcome is
 *   unknown (a new leader may still complete it).
 * - `timeout`: the request did not complete in time; its outcome is unknown.
 */
export type AdminErrorCode =
  | "change_in_progress"
  | "transfer_in_progress"
  | "invalid_membership"
  | "unknown_target"
  | "transfer_aborted"
  | "leadership_lost"
  | "timeout";

/** An admin request failed; `code` says why (see {@link AdminErrorCode}). */
export class AdminError extends Error {
  override name = "AdminError";
  constructor(
    readonly code: AdminErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/**
 * A write arrived while this leader is handing leadership over (thesis §3.10): it was not
 * appended. Retry shortly, on the new leader (`leaderId` is this node until the transfer ends).
 */
export class TransferInProgressError extends Error {
  override name = "TransferInProgressError";
  constructor(readonly leaderId: NodeId | null) {
    super("a leadership transfer is under way; retry shortly");
  }
}

/**
 * This node was removed from the cluster (a committed configuration no longer names it) while
 * the write waited to commit. Nothing will tell it the write's fate: its outcome is unknown (the
 * new configuration's leader may still commit it).
 */
export class RemovedError extends Error {
  override name = "RemovedError";
}
