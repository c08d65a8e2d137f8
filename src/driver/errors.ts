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
