/**
 * Leadership transfer (thesis §3.10): the leader stops accepting proposals and changes, brings
 * the target's log up to its own, then sends it TimeoutNow so it campaigns at once (with the
 * `transfer` flag, which voters honour despite the leader lease). If the target has not taken
 * over within an election timeout, the transfer is aborted: the leader answers transferAborted
 * and accepts proposals again.
 */
import { armCheckQuorumTimer, type Ctx, membership, sendAsLeader } from "./context.ts";
import { rejectAdmin } from "./membership-change.ts";
import { sendAppend } from "./replication.ts";
import type { NodeId } from "./types.ts";

export function handleTransferLeadership(c: Ctx, requestId: number, to: NodeId | null): void {
  const problem =
    c.s.role !== "leader" ? "not_leader" : c.s.transfer !== null ? "transfer_in_progress" : null;
  if (problem !== null) {
    rejectAdmin(c, requestId, problem);
    return;
  }
  const target = to ?? bestVoter(c);
  if (target === c.s.id) {
    c.effects.push({ type: "adminAccepted", requestId, index: c.s.term });
    return;
  }
  // Only a voter of the newest configuration can take over (an outgoing one is being removed).
  if (target === null || !membership(c).voters.includes(target) || !c.s.progress.has(target)) {
    rejectAdmin(c, requestId, "unknown_target");
    return;
  }
  c.s.transfer = { requestId, to: target, timeoutSent: false };
  c.effects.push({ type: "adminAccepted", requestId, index: c.s.term });
  // The transfer gets a full election timeout from now before it is aborted (CheckQuorum's
  // round runs on the same timer, so it is only delayed, never skipped).
  armCheckQuorumTimer(c);
  maybeSendTimeoutNow(c);
  sendAppend(c, target);
}

/** The voter (other than the leader) with the highest match; null if there is none. */
function bestVoter(c: Ctx): NodeId | null {
  let best: NodeId | null = null;
  let bestMatch = -1;
  for (const id of membership(c).voters) {
    const pr = c.s.progress.get(id);
    if (id !== c.s.id && pr && pr.match > bestMatch) {
      best = id;
      bestMatch = pr.match;
    }
  }
  return best;
}

/** Once the target's log matches ours, tell it to campaign now (thesis §3.10). */
export function maybeSendTimeoutNow(c: Ctx): void {
  const t = c.s.transfer;
  if (t === null || t.timeoutSent) return;
  if ((c.s.progress.get(t.to)?.match ?? 0) !== c.s.log.lastIndex) return;
  c.s.transfer = { ...t, timeoutSent: true };
  sendAsLeader(c, { type: "timeoutNow", term: c.s.term, from: c.s.id, to: t.to });
}

/** The election timer fired during a transfer: the target did not take over in time. */
export function abortTransfer(c: Ctx): void {
  const t = c.s.transfer;
  if (t === null) return;
  c.s.transfer = null;
  c.effects.push({ type: "transferAborted", requestId: t.requestId, to: t.to });
}
