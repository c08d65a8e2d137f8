/**
 * ReadIndex (thesis §6.4): a leader serves a linearizable read once it knows its commit index
 * is current (it has committed an entry of its term) and a quorum has confirmed, after the read
 * arrived, that it is still the leader. Confirmation rides on heartbeats: each carries the latest
 * round, so all reads that arrive together share one round.
 */
import type { Ctx } from "./context.ts";
import { termAt } from "./log.ts";
import { activeConfig } from "./membership.ts";
import { committedIndex } from "./quorum.ts";
import { sendHeartbeats } from "./replication.ts";
import type { PendingRead, RaftState } from "./state.ts";

export function handleReadIndex(c: Ctx, requestId: number): void {
  if (c.s.role !== "leader") {
    c.effects.push({ type: "readIndexRejected", requestId, leaderId: c.s.leaderId });
    return;
  }
  const read: PendingRead = { requestId, index: 0, round: 0 };
  c.s.pendingReads = [...c.s.pendingReads, read];
  // A new leader does not know the commit index until an entry of its term commits (§6.4 step 1).
  if (termAt(c.s.log, c.s.commitIndex) === c.s.term) startWaitingReads(c);
}

/** Starts one confirmation round for every read not yet in a round. */
export function startWaitingReads(c: Ctx): void {
  if (!c.s.pendingReads.some((read) => read.round === 0)) return;
  const round = c.s.readRound + 1;
  c.s.readRound = round;
  const index = c.s.commitIndex;
  c.s.pendingReads = c.s.pendingReads.map((read) =>
    read.round === 0 ? { requestId: read.requestId, index, round } : read,
  );
  sendHeartbeats(c);
  confirmReads(c); // a single voter confirms alone
}

/**
 * The latest round a quorum has answered: the leader was still leader when it sent that round's
 * heartbeats. 0 when not leader.
 */
export function confirmedRound(state: RaftState): number {
  if (state.role !== "leader") return 0;
  return committedIndex(activeConfig(state.configs).membership, (id) =>
    id === state.id ? state.readRound : (state.progress.get(id)?.ackedRound ?? 0),
  );
}

/** Answers every read whose round a quorum has confirmed. */
export function confirmReads(c: Ctx): void {
  if (c.s.pendingReads.length === 0) return;
  const confirmed = confirmedRound(c.s);
  const waiting: PendingRead[] = [];
  for (const read of c.s.pendingReads) {
    if (read.round !== 0 && read.round <= confirmed) {
      c.effects.push({ type: "readIndexReady", requestId: read.requestId, index: read.index });
    } else {
      waiting.push(read);
    }
  }
  if (waiting.length !== c.s.pendingReads.length) c.s.pendingReads = waiting;
}

/** A leader stepping down answers its waiting reads: it can no longer confirm them. */
export function rejectReads(c: Ctx): void {
  for (const read of c.s.pendingReads) {
    c.effects.push({
      type: "readIndexRejected",
      requestId: read.requestId,
      leaderId: c.s.leaderId,
    });
  }
  c.s.pendingReads = [];
}
