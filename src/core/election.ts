/** Leader election (§5.2, §5.4.1), PreVote (thesis §9.6) and CheckQuorum (thesis §6.2). */
import {
  armCheckQuorumTimer,
  type Ctx,
  canCampaign,
  membership,
  resetElectionTimer,
  send,
  setProgress,
  setTermAndVote,
} from "./context.ts";
import { isUpToDate } from "./log.ts";
import { allVoters } from "./membership.ts";
import { voteResult } from "./quorum.ts";
import { becomeCandidate, becomeFollower, becomeLeader, becomePreCandidate } from "./roles.ts";
import type { VoteRequest, VoteResponse } from "./types.ts";

/** Starts an election; with PreVote, a pre-election first unless a transfer asked for it. */
export function campaign(c: Ctx, transfer: boolean): void {
  if (!canCampaign(c)) return;
  if (c.s.config.preVote && !transfer) {
    becomePreCandidate(c);
    requestVotes(c, true, false);
  } else {
    becomeCandidate(c);
    requestVotes(c, false, transfer);
  }
}

function requestVotes(c: Ctx, preVote: boolean, transfer: boolean): void {
  const { log } = c.s;
  const term = preVote ? c.s.term + 1 : c.s.term;
  for (const to of allVoters(membership(c))) {
    if (to === c.s.id) continue;
    const request: VoteRequest = {
      type: "requestVote",
      term,
      from: c.s.id,
      to,
      preVote,
      transfer,
      lastLogIndex: log.lastIndex,
      lastLogTerm: log.lastTerm,
    };
    // A real candidate's vote for itself must be durable before it asks for others (§5.2).
    send(c, request, !preVote);
  }
  tallyVotes(c, transfer);
}

function tallyVotes(c: Ctx, transfer: boolean): void {
  const result = voteResult(membership(c), (id) => c.s.votes.get(id));
  if (result === "lost") {
    becomeFollower(c, c.s.term, null);
  } else if (result === "won") {
    if (c.s.role === "precandidate") {
      becomeCandidate(c);
      requestVotes(c, false, transfer);
    } else {
      becomeLeader(c);
    }
  }
}

/**
 * §5.2, §5.4.1: one vote per term, only to a candidate whose log is at least as up to date.
 * A PreVote is granted on the same conditions for the next term but changes nothing here.
 * Whose vote counts is the candidate's business (its configuration, quorum.ts): a node that is
 * a learner in its own, possibly stale, configuration still answers, since it may already be a
 * voter in the candidate's newer one (thesis §4.3; etcd's TestLearnerCanVote). Learners never
 * campaign and never count toward a quorum.
 */
export function handleVoteRequest(c: Ctx, m: VoteRequest): void {
  const { s } = c;
  const canVote =
    s.votedFor === m.from ||
    (s.votedFor === null && s.leaderId === null) ||
    (m.preVote && m.term > s.term);
  const granted = canVote && isUpToDate(s.log, m.lastLogTerm, m.lastLogIndex);
  if (granted && !m.preVote) {
    setTermAndVote(c, s.term, m.from);
    resetElectionTimer(c);
  }
  const response: VoteResponse = {
    type: "requestVoteResponse",
    // A granted PreVote answers in the candidate's prospective term, so it can be counted.
    term: granted && m.preVote ? m.term : s.term,
    from: s.id,
    to: m.from,
    preVote: m.preVote,
    granted,
  };
  send(c, response, true);
}

export function handleVoteResponse(c: Ctx, m: VoteResponse): void {
  const { s } = c;
  if (s.role === "precandidate") {
    if (!m.preVote || (m.granted && m.term !== s.term + 1)) return;
  } else if (s.role === "candidate") {
    if (m.preVote || m.term !== s.term) return;
  } else {
    return;
  }
  const votes = new Map(s.votes);
  votes.set(m.from, m.granted);
  s.votes = votes;
  tallyVotes(c, false);
}

/** CheckQuorum: a leader that has not heard from a quorum since the last round steps down. */
export function checkQuorum(c: Ctx): void {
  if (c.s.config.checkQuorum) {
    const heard = voteResult(membership(c), (id) =>
      id === c.s.id ? true : (c.s.progress.get(id)?.recentActive ?? false),
    );
    if (heard !== "won") {
      becomeFollower(c, c.s.term, null);
      return;
    }
    for (const [id, pr] of c.s.progress) {
      if (pr.recentActive) setProgress(c, id, { ...pr, recentActive: false });
    }
  }
  armCheckQuorumTimer(c);
}
