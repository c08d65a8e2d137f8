/**
 * `step(state, input) → { state, effects }`: Raft as a pure, deterministic function.
 * This file applies the rules common to every role (§5.1 terms) and dispatches to the role's
 * handlers; each rule lives in exactly one place.
 */
import {
  appendToLog,
  applyCommitted,
  armHeartbeatTimer,
  type Ctx,
  canCampaign,
  newCtx,
  resetElectionTimer,
  send,
  trimWindow,
} from "./context.ts";
import { campaign, checkQuorum, handleVoteRequest, handleVoteResponse } from "./election.ts";
import { handleAppendEntries, handleHeartbeat } from "./follower.ts";
import { checkInvariants } from "./invariants.ts";
import { isUpToDate, termAt } from "./log.ts";
import { allVoters, isVoter } from "./membership.ts";
import { handleChangeMembership } from "./membership-change.ts";
import { handleReadIndex } from "./read-index.ts";
import {
  handleAppendResponse,
  handleEntriesLoaded,
  handleHeartbeatResponse,
  handleInstallSnapshotResponse,
  handleSnapshotSent,
  handleUnreachable,
  maybeCommit,
  sendHeartbeats,
} from "./replication.ts";
import { appendAsLeader, becomeFollower } from "./roles.ts";
import {
  handleInstallSnapshot,
  handleSnapshotBuilt,
  handleSnapshotInstalled,
  handleTriggerSnapshot,
} from "./snapshot.ts";
import type { RaftState } from "./state.ts";
import { abortTransfer, handleTransferLeadership } from "./transfer.ts";
import type { Effect, Entry, Input, Membership, Message, NodeId, TimerName } from "./types.ts";

/** What {@link step} returns: the next state and the effects the driver must carry out. */
export interface StepResult {
  readonly state: RaftState;
  readonly effects: readonly Effect[];
}

/**
 * Raft as a pure function: applies `input` to `state` and returns the new state with the effects
 * to carry out, in order. Never mutates `state`, performs no I/O, reads no clock and never
 * awaits; the same state and input give the same result on every runtime.
 *
 * @throws InvariantError, or an Error whose message starts with "invariant:", when the step
 *   would break a safety invariant (a committed entry truncated, the term or commit index moving
 *   back, two leaders in one term); an Error for input a correct driver never gives (an
 *   `applied` beyond what `apply` handed out). Either way the node must stop.
 */
export function step(state: RaftState, input: Input): StepResult {
  const c = newCtx(state);
  switch (input.type) {
    case "start":
      if (c.s.role !== "leader") resetElectionTimer(c);
      break;
    case "message":
      onMessage(c, input.message);
      break;
    case "timeout":
      if (input.generation !== 0 && input.generation === c.s.timers[input.timer])
        onTimeout(c, input.timer);
      break;
    case "propose":
      onPropose(c, input.requestId, input.commands);
      break;
    case "initialize":
      onInitialize(c, input.membership);
      break;
    case "readIndex":
      handleReadIndex(c, input.requestId);
      break;
    case "persisted":
      if (input.epoch === c.s.logEpoch) onPersisted(c, input.index, input.term);
      break;
    case "applied":
      if (input.index > c.s.applyingIndex)
        throw new Error(`applied ${input.index} was never handed out`);
      if (input.index > c.s.appliedIndex) {
        c.s.appliedIndex = input.index;
        trimWindow(c);
      }
      break;
    case "entriesLoaded":
      handleEntriesLoaded(c, input.peer, input.entries);
      break;
    case "unreachable":
      if (c.s.role === "leader") handleUnreachable(c, input.peer);
      break;
    case "changeMembership":
      handleChangeMembership(c, input.requestId, input.membership);
      break;
    case "transferLeadership":
      handleTransferLeadership(c, input.requestId, input.to);
      break;
    case "triggerSnapshot":
      handleTriggerSnapshot(c, input.requestId);
      break;
    case "snapshotBuilt":
      handleSnapshotBuilt(c, input.index, input.term);
      break;
    case "snapshotSent":
      handleSnapshotSent(c, input.peer, input.index, input.success);
      break;
    case "snapshotInstalled":
      handleSnapshotInstalled(c, input.index);
      break;
  }
  checkInvariants(state, c.s);
  return { state: c.s, effects: c.effects };
}

/**
 * Leader lease (thesis §4.2.3): while a node hears from a leader, it ignores vote requests. Only
 * a node that runs an election timer (a voter) ends its lease; a learner or a node new to the
 * cluster may be a voter of the candidate's newer configuration, so it always answers.
 */
function inLease(c: Ctx, m: Message): boolean {
  const { preVote, checkQuorum } = c.s.config;
  return (
    (preVote || checkQuorum) &&
    c.s.leaderId !== null &&
    canCampaign(c) &&
    !(m.type === "requestVote" && m.transfer)
  );
}

/**
 * A removed server must not disrupt the cluster (thesis §4.2.3). It lacks C_new (or it could
 * not campaign), so its log is behind ours: a vote request from a node in none of our
 * configurations with a log behind ours is denied without adopting its term (as hashicorp/raft
 * does), so it cannot depose the leader even with PreVote and CheckQuorum off.
 */
function fromRemoved(c: Ctx, m: Message): boolean {
  return (
    m.type === "requestVote" &&
    c.s.configs.length > 0 &&
    !c.s.configs.some((entry) => isVoter(entry.membership, m.from)) &&
    !isUpToDate(c.s.log, m.lastLogTerm, m.lastLogIndex)
  );
}

function onMessage(c: Ctx, m: Message): void {
  if (m.to !== c.s.id) return;
  if (fromRemoved(c, m)) {
    rejectStale(c, m);
    return;
  }
  if (m.term > c.s.term) {
    if (m.type === "requestVote") {
      if (inLease(c, m)) return;
      if (!m.preVote) becomeFollower(c, m.term, null);
    } else if (m.type === "requestVoteResponse" && m.preVote && m.granted) {
      // The term of the campaign we asked about, not a newer term to adopt.
    } else {
      const fromLeader =
        m.type === "appendEntries" ||
        m.type === "heartbeat" ||
        m.type === "timeoutNow" ||
        m.type === "installSnapshot";
      becomeFollower(c, m.term, fromLeader ? m.from : null); // §5.1
    }
  } else if (m.term < c.s.term) {
    rejectStale(c, m);
    return;
  }
  switch (c.s.role) {
    case "leader":
      stepLeader(c, m);
      return;
    case "candidate":
    case "precandidate":
      stepCandidate(c, m);
      return;
    case "follower":
    case "learner":
      stepFollower(c, m);
      return;
  }
}

/**
 * §5.1: a request from an older term is rejected; the answer tells the sender our term.
 * (Also the denial of a removed server's vote request.)
 */
function rejectStale(c: Ctx, m: Message): void {
  const from = c.s.id;
  if (m.type === "heartbeat") {
    send(c, { type: "heartbeatResponse", term: c.s.term, from, to: m.from, round: m.round }, false);
  } else if (m.type === "appendEntries") {
    send(
      c,
      {
        type: "appendEntriesResponse",
        term: c.s.term,
        from,
        to: m.from,
        success: false,
        matchIndex: 0,
        rejectedIndex: m.prevLogIndex,
        conflictTerm: 0,
        conflictIndex: 0,
      },
      false,
    );
  } else if (m.type === "requestVote") {
    send(
      c,
      {
        type: "requestVoteResponse",
        term: c.s.term,
        from,
        to: m.from,
        preVote: m.preVote,
        granted: false,
      },
      false,
    );
  } else if (m.type === "installSnapshot") {
    const response = { term: c.s.term, from, to: m.from, success: false, matchIndex: 0 };
    send(c, { type: "installSnapshotResponse", ...response }, false);
  }
}

function stepLeader(c: Ctx, m: Message): void {
  switch (m.type) {
    case "appendEntriesResponse":
      handleAppendResponse(c, m);
      return;
    case "heartbeatResponse":
      handleHeartbeatResponse(c, m);
      return;
    case "installSnapshotResponse":
      handleInstallSnapshotResponse(c, m);
      return;
    case "requestVote":
      handleVoteRequest(c, m);
      return;
    case "appendEntries":
    case "heartbeat":
    case "installSnapshot":
      throw new Error(`invariant: two leaders in term ${m.term} (${c.s.id} and ${m.from})`);
  }
}

function stepCandidate(c: Ctx, m: Message): void {
  switch (m.type) {
    case "appendEntries":
    case "heartbeat":
    case "installSnapshot":
      // A leader won this term (§5.2): follow it.
      becomeFollower(c, m.term, m.from);
      stepFollower(c, m);
      return;
    case "requestVote":
      handleVoteRequest(c, m);
      return;
    case "requestVoteResponse":
      handleVoteResponse(c, m);
      return;
  }
}

function stepFollower(c: Ctx, m: Message): void {
  switch (m.type) {
    case "appendEntries":
      followLeader(c, m.from);
      handleAppendEntries(c, m);
      return;
    case "heartbeat":
      followLeader(c, m.from);
      handleHeartbeat(c, m);
      return;
    case "installSnapshot":
      followLeader(c, m.from);
      handleInstallSnapshot(c, m);
      return;
    case "requestVote":
      handleVoteRequest(c, m);
      return;
    case "timeoutNow":
      // Leadership transfer (thesis §3.10): campaign now, without PreVote. Only the leader of
      // this term sends TimeoutNow; we follow it like any message from that leader.
      followLeader(c, m.from);
      campaign(c, true);
      return;
  }
}

function followLeader(c: Ctx, leaderId: NodeId): void {
  if (c.s.leaderId === leaderId) return;
  if (c.s.leaderId !== null) {
    throw new Error(`invariant: two leaders in term ${c.s.term} (${c.s.leaderId} and ${leaderId})`);
  }
  becomeFollower(c, c.s.term, leaderId);
}

function onTimeout(c: Ctx, timer: TimerName): void {
  if (timer === "heartbeat") {
    if (c.s.role !== "leader") return;
    // Every periodic heartbeat is a new round, so its answers renew leadership confirmation
    // (what a driver's leader lease is measured from).
    c.s.readRound++;
    sendHeartbeats(c);
    armHeartbeatTimer(c);
  } else if (c.s.role === "leader") {
    abortTransfer(c); // thesis §3.10: the target did not take over within an election timeout
    checkQuorum(c);
  } else {
    campaign(c, false); // §5.2: no word from a leader for an election timeout
  }
}

function onPropose(c: Ctx, requestId: number, commands: readonly Uint8Array[]): void {
  if (c.s.role !== "leader") {
    const reason = c.s.configs.length === 0 ? "uninitialized" : "not_leader";
    c.effects.push({ type: "proposalRejected", requestId, reason, leaderId: c.s.leaderId });
    return;
  }
  if (c.s.transfer !== null) {
    // thesis §3.10: no new entries while leadership moves, or the target could never catch up.
    const reason = "transferring";
    c.effects.push({ type: "proposalRejected", requestId, reason, leaderId: c.s.leaderId });
    return;
  }
  if (commands.length === 0) return;
  const first = c.s.log.lastIndex + 1;
  const entries: Entry[] = commands.map((data, i) => ({
    index: first + i,
    term: c.s.term,
    kind: "command",
    data,
  }));
  c.effects.push({ type: "proposalAccepted", requestId, firstIndex: first, term: c.s.term });
  appendAsLeader(c, entries);
}

function onInitialize(c: Ctx, membership: Membership): void {
  const reason = initializeProblem(c, membership);
  if (reason) {
    c.effects.push({ type: "initializeRejected", reason });
    return;
  }
  // Every founding member writes the same first entry, so their logs agree from the start.
  appendToLog(c, [{ index: 1, term: 0, kind: "membership", membership }]);
  if (!canCampaign(c)) return;
  const voters = allVoters(membership);
  if (voters.length === 1) campaign(c, false);
  else resetElectionTimer(c);
}

function initializeProblem(c: Ctx, membership: Membership): string | undefined {
  if (c.s.log.lastIndex > 0 || c.s.term > 0 || c.s.configs.length > 0) return "already initialized";
  if (membership.outgoing !== undefined) return "the initial membership cannot be joint";
  if (membership.voters.length === 0) return "the initial membership needs at least one voter";
  const all = [...membership.voters, ...membership.learners];
  if (new Set(all).size !== all.length) return "a member is listed twice";
  if (!all.includes(c.s.id)) return `this node (${c.s.id}) is not a member`;
  return undefined;
}

function onPersisted(c: Ctx, index: number, term: number): void {
  // A report for entries since truncated and replaced carries the old term: ignore it.
  if (index <= c.s.persistedIndex || index > c.s.log.lastIndex || termAt(c.s.log, index) !== term)
    return;
  c.s.persistedIndex = index;
  if (c.s.role === "leader") maybeCommit(c);
  applyCommitted(c);
}
