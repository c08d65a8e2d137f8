/** Role transitions. Each sets the role and the timers that role runs. */
import {
  appendToLog,
  armCheckQuorumTimer,
  armHeartbeatTimer,
  type Ctx,
  cancelTimer,
  mayLead,
  membership,
  resetElectionTimer,
  setTermAndVote,
  syncProgress,
} from "./context.ts";
import { isLearner } from "./membership.ts";
import { rejectReads } from "./read-index.ts";
import { broadcastAppend } from "./replication.ts";
import type { Entry, NodeId } from "./types.ts";

function announce(c: Ctx): void {
  c.effects.push({ type: "roleChanged", role: c.s.role, term: c.s.term, leaderId: c.s.leaderId });
}

/** Follows `leaderId` (null if unknown) in `term`; a newer term clears the vote (§5.1). */
export function becomeFollower(c: Ctx, term: number, leaderId: NodeId | null): void {
  const before = { role: c.s.role, term: c.s.term, leaderId: c.s.leaderId };
  if (term > c.s.term) setTermAndVote(c, term, null);
  const wasLeader = c.s.role === "leader";
  c.s.role = isLearner(membership(c), c.s.id) ? "learner" : "follower";
  c.s.leaderId = leaderId;
  if (c.s.votes.size > 0) c.s.votes = new Map();
  if (wasLeader) {
    // A stream of an older term is superseded: its follower will hear from the new leader.
    for (const [peer, pr] of c.s.progress) {
      if (pr.pendingSnapshot !== 0) c.effects.push({ type: "cancelSnapshot", peer });
    }
    c.s.progress = new Map();
    c.s.transfer = null;
    cancelTimer(c, "heartbeat");
    rejectReads(c);
  }
  resetElectionTimer(c);
  if (before.role !== c.s.role || before.term !== c.s.term || before.leaderId !== leaderId)
    announce(c);
}

/** PreVote (thesis §9.6): ask whether we could win before disturbing anyone's term. */
export function becomePreCandidate(c: Ctx): void {
  c.s.role = "precandidate";
  c.s.leaderId = null;
  c.s.votes = new Map([[c.s.id, true]]);
  resetElectionTimer(c);
  announce(c);
}

/** §5.2: increment the term, vote for ourselves. */
export function becomeCandidate(c: Ctx): void {
  setTermAndVote(c, c.s.term + 1, c.s.id);
  c.s.role = "candidate";
  c.s.leaderId = null;
  c.s.votes = new Map([[c.s.id, true]]);
  resetElectionTimer(c);
  announce(c);
}

/**
 * §5.2 won: start replicating to every member (of every configuration in `configs`). The new leader appends a blank entry of its term,
 * since it may commit only entries of its own term by counting replicas (§5.4.2, §8).
 */
export function becomeLeader(c: Ctx): void {
  if (!mayLead(c.s)) throw new Error("invariant: a non-voter became leader");
  c.s.role = "leader";
  c.s.leaderId = c.s.id;
  c.s.votes = new Map();
  c.s.transfer = null;
  const next = c.s.log.lastIndex + 1;
  // Every member of every kept configuration, so a joint change in progress goes on (§4.3).
  c.s.progress = new Map();
  syncProgress(c);
  armCheckQuorumTimer(c);
  armHeartbeatTimer(c);
  announce(c);
  appendAsLeader(c, [{ index: next, term: c.s.term, kind: "blank" }]);
}

/** The leader appends to its own log and replicates in parallel (thesis §10.2.1). */
export function appendAsLeader(c: Ctx, entries: readonly Entry[]): void {
  appendToLog(c, entries);
  broadcastAppend(c);
}
