/**
 * Configuration changes, leader side (§6, thesis §4.3): one change at a time; a change of the
 * voter set goes through the joint configuration C_old,new, and the leader appends C_new by
 * itself once C_old,new commits. A leader that is not a voter of C_new leads until C_new
 * commits, then steps down (thesis §4.2.2).
 */
import { type Ctx, membership, sendAsLeader } from "./context.ts";
import { termAt } from "./log.ts";
import { activeConfig, allMembers, isVoter } from "./membership.ts";
import { appendAsLeader, becomeFollower } from "./roles.ts";
import type { AdminRejection, Membership, NodeId } from "./types.ts";

export function rejectAdmin(c: Ctx, requestId: number, reason: AdminRejection): void {
  c.effects.push({ type: "adminRejected", requestId, reason, leaderId: c.s.leaderId });
}

/** Is a configuration change under way: the latest one uncommitted, or joint? */
export function changeInProgress(c: Ctx): boolean {
  const active = activeConfig(c.s.configs);
  return active.index > c.s.commitIndex || active.membership.outgoing !== undefined;
}

export function handleChangeMembership(c: Ctx, requestId: number, target: Membership): void {
  const problem = changeProblem(c, target);
  if (problem) {
    rejectAdmin(c, requestId, problem);
    return;
  }
  const current = membership(c);
  const index = c.s.log.lastIndex + 1;
  const next: Membership = sameSet(current.voters, target.voters)
    ? // Learners only: no quorum changes, so no joint phase is needed.
      { voters: [...target.voters], learners: [...target.learners], addresses: target.addresses }
    : // thesis §4.3: C_old,new first; both majorities decide until C_new commits.
      {
        voters: [...target.voters],
        outgoing: [...current.voters],
        learners: [...target.learners],
        addresses: { ...current.addresses, ...target.addresses },
      };
  c.effects.push({ type: "adminAccepted", requestId, index });
  appendAsLeader(c, [{ index, term: c.s.term, kind: "membership", membership: next }]);
}

function changeProblem(c: Ctx, target: Membership): AdminRejection | undefined {
  if (c.s.role !== "leader") return "not_leader";
  if (c.s.transfer !== null) return "transfer_in_progress";
  if (!validMembership(target)) return "invalid_membership";
  if (changeInProgress(c)) return "change_in_progress";
  // thesis §4.1 (bug fix): a new leader must commit an entry of its term (its blank entry)
  // before it starts a change, or a change of a deposed leader could be lost after commit.
  if (termAt(c.s.log, c.s.commitIndex) !== c.s.term) return "change_in_progress";
  return undefined;
}

function validMembership(m: Membership): boolean {
  if (m.outgoing !== undefined || m.voters.length === 0) return false;
  const all = [...m.voters, ...m.learners];
  return new Set(all).size === all.length;
}

function sameSet(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

/**
 * Called whenever the leader's commit index advances. Once C_old,new commits, append C_new
 * (thesis §4.3); once a C_new without this leader commits, step down (thesis §4.2.2).
 */
export function advanceMembership(c: Ctx): void {
  const active = activeConfig(c.s.configs);
  if (c.s.role !== "leader" || active.index > c.s.commitIndex) return;
  const joint = active.membership;
  if (joint.outgoing !== undefined) {
    const members = allMembers({ voters: joint.voters, learners: joint.learners, addresses: {} });
    const addresses: Record<NodeId, string> = {};
    for (const id of members) {
      const address = joint.addresses[id];
      if (address !== undefined) addresses[id] = address;
    }
    const next: Membership = { voters: joint.voters, learners: joint.learners, addresses };
    const index = c.s.log.lastIndex + 1;
    appendAsLeader(c, [{ index, term: c.s.term, kind: "membership", membership: next }]);
    return;
  }
  if (!isVoter(joint, c.s.id)) stepDownRemoved(c);
}

/**
 * The leader is not in the committed C_new: hand over to the most up-to-date voter of C_new
 * with TimeoutNow (thesis §3.10) so the cluster need not wait an election timeout, then step down.
 */
function stepDownRemoved(c: Ctx): void {
  let best: NodeId | null = null;
  let bestMatch = -1;
  for (const id of membership(c).voters) {
    const match = c.s.progress.get(id)?.match ?? -1;
    if (match > bestMatch) {
      best = id;
      bestMatch = match;
    }
  }
  if (best !== null)
    sendAsLeader(c, { type: "timeoutNow", term: c.s.term, from: c.s.id, to: best });
  becomeFollower(c, c.s.term, null);
}
