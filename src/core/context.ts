/**
 * The working state of one `step`: a shallow draft of the state (nested values are replaced,
 * never mutated, so the input state stays valid) and the effects emitted so far, in order.
 * The helpers here are the only places that change the log, the term or the commit index.
 */
import * as raftLog from "./log.ts";
import {
  activeConfig,
  allMembers,
  type ConfigEntry,
  compactConfigs,
  isLearner,
  isVoter,
  truncateConfigs,
} from "./membership.ts";
import { newProgress, type Progress } from "./progress.ts";
import { nextRandom } from "./rng.ts";
import type { RaftState } from "./state.ts";
import type { Effect, Entry, Membership, Message, NodeId, TimerName } from "./types.ts";

export type Draft = { -readonly [K in keyof RaftState]: RaftState[K] };

export interface Ctx {
  readonly s: Draft;
  readonly effects: Effect[];
  /** The progress map this step already copied, so it may be updated in place. */
  ownProgress: ReadonlyMap<NodeId, Progress> | null;
}

/**
 * A private draft of `state`. Written out field by field: a spread of this many fields is several
 * times slower on some engines, and this runs once per step.
 */
export function newCtx(state: RaftState): Ctx {
  const s: Draft = {
    id: state.id,
    config: state.config,
    role: state.role,
    term: state.term,
    votedFor: state.votedFor,
    leaderId: state.leaderId,
    log: state.log,
    commitIndex: state.commitIndex,
    persistedIndex: state.persistedIndex,
    logEpoch: state.logEpoch,
    applyingIndex: state.applyingIndex,
    appliedIndex: state.appliedIndex,
    applyingConfig: state.applyingConfig,
    snapshotBuilding: state.snapshotBuilding,
    configs: state.configs,
    votes: state.votes,
    progress: state.progress,
    readRound: state.readRound,
    pendingReads: state.pendingReads,
    transfer: state.transfer,
    random: state.random,
    timers: state.timers,
  };
  return { s, effects: [], ownProgress: null };
}

/** Replaces one follower's progress; the map is copied at most once per step. */
export function setProgress(c: Ctx, peer: NodeId, pr: Progress): void {
  if (c.ownProgress !== c.s.progress) {
    c.s.progress = new Map(c.s.progress);
    c.ownProgress = c.s.progress;
  }
  (c.s.progress as Map<NodeId, Progress>).set(peer, pr);
}

export function membership(c: Ctx): Membership {
  return activeConfig(c.s.configs).membership;
}

/** May this node start an election? Only voters of the active configuration may (thesis §4.2.1). */
export function canCampaign(c: Ctx): boolean {
  return mayLead(c.s);
}

/**
 * Voters of the active configuration may lead; so may voters of the one before it while the
 * active one is not known to be committed. At most one configuration is ever uncommitted, so the
 * previous one is still in force: a leader that appended a configuration without itself and then
 * lost leadership before it committed must be able to win again and finish the change, or the
 * voters left in the older configuration could wait for its vote forever. Safety does not depend
 * on who campaigns: votes are counted in the candidate's active configuration only.
 */
export function mayLead(s: RaftState): boolean {
  const { configs, id } = s;
  const active = configs[configs.length - 1];
  if (!active) return false;
  if (isVoter(active.membership, id)) return true;
  const previous = configs[configs.length - 2];
  return previous !== undefined && active.index > s.commitIndex && isVoter(previous.membership, id);
}

export function send(c: Ctx, message: Message, afterPersist: boolean): void {
  c.effects.push({ type: "send", message, afterPersist });
}

/**
 * Sends a leader's request. Until an entry of its term is durable here, its term and vote may
 * not be (a single voter wins in the step that raised its term): a crash could then let it win
 * the same term again with another log (§5.2 election safety), so its messages wait until
 * everything written before them is durable.
 */
export function sendAsLeader(c: Ctx, message: Message): void {
  send(c, message, raftLog.termAt(c.s.log, c.s.persistedIndex) !== c.s.term);
}

/** Term and vote must be durable before any message that depends on them leaves (§5.1). */
export function setTermAndVote(c: Ctx, term: number, votedFor: NodeId | null): void {
  if (term < c.s.term) throw new Error(`invariant: term moving back from ${c.s.term} to ${term}`);
  if (term === c.s.term && c.s.votedFor !== null && votedFor !== c.s.votedFor) {
    throw new Error(`invariant: second vote in term ${term} (${c.s.votedFor}, then ${votedFor})`);
  }
  if (term === c.s.term && votedFor === c.s.votedFor) return;
  c.s.term = term;
  c.s.votedFor = votedFor;
  c.effects.push({ type: "saveHardState", hardState: { term, votedFor } });
}

/** Gives `timer` a generation no earlier arming carried, so a late firing is seen as stale. */
function newGeneration(c: Ctx, timer: TimerName): number {
  const { timers } = c.s;
  const generation = Math.max(timers.election, timers.heartbeat) + 1;
  c.s.timers = {
    election: timer === "election" ? generation : timers.election,
    heartbeat: timer === "heartbeat" ? generation : timers.heartbeat,
  };
  return generation;
}

function arm(c: Ctx, timer: TimerName, afterMs: number): void {
  const generation = newGeneration(c, timer);
  c.effects.push({ type: "armTimer", timer, afterMs, generation });
}

/** Arms the election timer with a fresh randomized timeout (§5.2); disarms it for non-voters. */
export function resetElectionTimer(c: Ctx): void {
  if (!canCampaign(c) && c.s.role !== "leader") {
    cancelTimer(c, "election");
    return;
  }
  const { electionTimeoutMinMs: min, electionTimeoutMaxMs: max } = c.s.config;
  const [r, next] = nextRandom(c.s.random);
  c.s.random = next;
  arm(c, "election", min + Math.floor(r * (max - min)));
}

/** The leader's CheckQuorum round runs once per minimum election timeout. */
export function armCheckQuorumTimer(c: Ctx): void {
  arm(c, "election", c.s.config.electionTimeoutMinMs);
}

export function armHeartbeatTimer(c: Ctx): void {
  arm(c, "heartbeat", c.s.config.heartbeatIntervalMs);
}

export function cancelTimer(c: Ctx, timer: TimerName): void {
  if (c.s.timers[timer] === 0) return;
  newGeneration(c, timer);
  c.effects.push({ type: "cancelTimer", timer });
}

/** Appends entries after the last one, in memory and (by effect) in storage. */
export function appendToLog(c: Ctx, entries: readonly Entry[]): void {
  if (entries.length === 0) return;
  c.s.log = raftLog.append(c.s.log, entries);
  let configs: ConfigEntry[] | undefined;
  for (const entry of entries) {
    if (entry.kind !== "membership") continue;
    configs ??= [...c.s.configs];
    configs.push({ index: entry.index, membership: entry.membership });
  }
  if (configs) setConfigs(c, configs);
  c.effects.push({ type: "appendLog", entries, epoch: c.s.logEpoch });
}

/** Removes the entries from `fromIndex` on; a committed entry is never removed (§5.3, §5.4). */
export function truncateLog(c: Ctx, fromIndex: number): void {
  if (fromIndex <= c.s.commitIndex) {
    throw new Error(
      `invariant: truncating committed entry ${fromIndex} (commit ${c.s.commitIndex})`,
    );
  }
  c.s.log = raftLog.truncate(c.s.log, fromIndex);
  c.s.persistedIndex = Math.min(c.s.persistedIndex, fromIndex - 1);
  c.s.logEpoch++;
  if (c.s.configs.some((entry) => entry.index >= fromIndex)) {
    setConfigs(c, truncateConfigs(c.s.configs, fromIndex));
  }
  c.effects.push({ type: "truncateLog", fromIndex });
}

/**
 * A node uses its latest configuration, committed or not (thesis §4.1): a follower becomes a
 * learner or a voter (and arms or disarms its election timer) as soon as the entry is appended.
 */
function setConfigs(c: Ctx, configs: readonly ConfigEntry[]): void {
  const couldCampaign = canCampaign(c);
  c.s.configs = configs;
  if (c.s.role === "follower" || c.s.role === "learner") {
    c.s.role = isLearner(membership(c), c.s.id) ? "learner" : "follower";
    // A new or promoted voter arms its timer now: the leader may die before its next message.
    if (canCampaign(c) !== couldCampaign) resetElectionTimer(c);
  }
  syncProgress(c);
}

/**
 * The leader replicates to every member of every configuration it keeps (the latest committed
 * one and newer ones): a new member gets a probe from the end of the log as soon as its
 * configuration is appended; a removed one is dropped once no kept configuration has it, i.e.
 * once C_new commits (thesis §4.3, §4.2.2).
 */
export function syncProgress(c: Ctx): void {
  if (c.s.role !== "leader") return;
  const members = new Set<NodeId>();
  for (const entry of c.s.configs) {
    for (const id of allMembers(entry.membership)) if (id !== c.s.id) members.add(id);
  }
  const { progress } = c.s;
  let same = progress.size === members.size;
  for (const id of members) if (!progress.has(id)) same = false;
  if (same) return;
  const next = new Map<NodeId, Progress>();
  for (const id of members) next.set(id, progress.get(id) ?? newProgress(c.s.log.lastIndex + 1));
  for (const [peer, pr] of progress) {
    if (!members.has(peer) && pr.pendingSnapshot !== 0) {
      c.effects.push({ type: "cancelSnapshot", peer });
    }
  }
  c.s.progress = next;
  c.ownProgress = next;
}

/** Moves the commit index forward (never back) and applies what is now committed. */
export function commitTo(c: Ctx, index: number): void {
  if (index <= c.s.commitIndex) return;
  if (index > c.s.log.lastIndex) {
    throw new Error(`invariant: commit ${index} beyond last index ${c.s.log.lastIndex}`);
  }
  c.s.commitIndex = index;
  if (c.s.configs.length > 1) {
    const before = c.s.configs;
    c.s.configs = compactConfigs(before, index);
    if (c.s.configs !== before) syncProgress(c);
  }
  applyCommitted(c);
}

/**
 * Hands committed entries that are durable here to the state machine, in order, and asks for a
 * snapshot once snapshotThreshold entries were handed out since the last one (§7).
 */
export function applyCommitted(c: Ctx): void {
  const upTo = Math.min(c.s.commitIndex, c.s.persistedIndex);
  if (upTo <= c.s.applyingIndex) return;
  const entries = raftLog.slice(c.s.log, c.s.applyingIndex + 1, upTo);
  c.s.applyingIndex = upTo;
  for (const entry of entries) {
    if (entry.kind === "membership") {
      c.s.applyingConfig = { index: entry.index, membership: entry.membership };
    }
  }
  c.effects.push({ type: "apply", entries });
  maybeBuildSnapshot(c);
}

/** The snapshot policy: every snapshotThreshold entries handed to the state machine. */
export function maybeBuildSnapshot(c: Ctx): void {
  const threshold = c.s.config.snapshotThreshold;
  if (threshold > 0 && c.s.applyingIndex - c.s.log.snapshotIndex >= threshold) buildSnapshot(c);
}

/**
 * Asks the driver to snapshot the state machine as of applyingIndex: the state machine sees
 * `apply` and `buildSnapshot` in emission order, so that is exactly its state at that point.
 * One build at a time; none if nothing was applied since the last snapshot.
 */
export function buildSnapshot(c: Ctx): void {
  const index = c.s.applyingIndex;
  if (c.s.snapshotBuilding !== 0 || index <= c.s.log.snapshotIndex) return;
  const term = raftLog.termAt(c.s.log, index);
  if (term === undefined) throw new Error(`invariant: no term for applied index ${index}`);
  c.s.snapshotBuilding = index;
  const { membership } = c.s.applyingConfig;
  c.effects.push({ type: "buildSnapshot", index, term, membership });
}

/**
 * A snapshot of the leader's state (§7, thesis §5.3): our log becomes the snapshot, followed by
 * our entries after its last included entry if we hold that entry ("retain log entries
 * following it"), or by nothing ("discard the entire log"). Everything it covers is committed
 * and, once the install effect runs, applied. Only for a snapshot beyond our commit index.
 */
export function installSnapshot(c: Ctx, index: number, term: number, membership: Membership): void {
  if (index <= c.s.commitIndex) {
    throw new Error(`invariant: installing snapshot ${index} at commit ${c.s.commitIndex}`);
  }
  const { log } = c.s;
  const keep = index <= log.lastIndex && raftLog.termAt(log, index) === term;
  const suffix = keep && index < log.lastIndex ? raftLog.slice(log, index + 1, log.lastIndex) : [];
  c.s.log = raftLog.createLog(index, term, index, term, suffix);
  // The install is one storage write, ordered after the appends of the entries kept.
  c.s.persistedIndex = Math.min(Math.max(c.s.persistedIndex, index), c.s.log.lastIndex);
  c.s.commitIndex = index;
  c.s.applyingIndex = index;
  const config: ConfigEntry = { index, membership };
  c.s.applyingConfig = config;
  c.effects.push({ type: "installSnapshot", index, term, membership, discardLog: !keep });
  const kept = keep ? c.s.configs.filter((entry) => entry.index > index) : [];
  setConfigs(c, [config, ...kept]);
}

/**
 * Forgets entries the core no longer needs in memory: applied, durable and more than
 * maxWindowEntries behind the end. A follower that lags further is served by `loadEntries`,
 * so a dead follower cannot pin memory.
 */
export function trimWindow(c: Ctx): void {
  const { log } = c.s;
  const upTo = Math.min(
    c.s.appliedIndex,
    c.s.persistedIndex,
    log.lastIndex - c.s.config.maxWindowEntries,
  );
  if (upTo - log.baseIndex >= 64) c.s.log = raftLog.forget(log, upTo);
}
