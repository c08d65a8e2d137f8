/** The state of one Raft node, as the core sees it. Immutable: `step` returns a new one. */
import { type RaftConfig, resolveConfig } from "./config.ts";
import { createLog, type RaftLog } from "./log.ts";
import { activeConfig, type ConfigEntry, isLearner } from "./membership.ts";
import type { Progress } from "./progress.ts";
import { seedFromId } from "./rng.ts";
import type { Entry, HardState, NodeId, Role, TimerName } from "./types.ts";

/**
 * The whole state of one node as the core sees it: durable state (term, vote, log metadata),
 * volatile state (role, commit, per-follower progress) and its timers' generations. Immutable:
 * {@link step} returns a new one and never changes the one it is given.
 */
export interface RaftState {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly role: Role;
  /** §5.1 currentTerm (durable). */
  readonly term: number;
  /** §5.2 votedFor in `term` (durable). */
  readonly votedFor: NodeId | null;
  /** The leader of `term` this node knows of. */
  readonly leaderId: NodeId | null;
  readonly log: RaftLog;
  /** Highest index known to be committed (§5.3). Never decreases. */
  readonly commitIndex: number;
  /** Every entry up to here is durable in local storage. */
  readonly persistedIndex: number;
  /**
   * Truncations so far. A `persisted` report from an earlier epoch is ignored: an entry with the
   * same index and term may have been truncated and appended again since, not yet durable.
   */
  readonly logEpoch: number;
  /** Highest index handed to the state machine with an `apply` effect. */
  readonly applyingIndex: number;
  /** Highest index the state machine reported applied. */
  readonly appliedIndex: number;
  /**
   * The configuration in force at applyingIndex: the metadata of a snapshot taken there. Kept
   * apart from `configs`, which forgets configurations once a newer one commits.
   */
  readonly applyingConfig: ConfigEntry;
  /** Index of the snapshot a `buildSnapshot` effect asked for and not yet reported; 0: none. */
  readonly snapshotBuilding: number;
  /** Configurations from the log, newest (active) last; see membership.ts. */
  readonly configs: readonly ConfigEntry[];
  /** Votes received in the current (pre)campaign. */
  readonly votes: ReadonlyMap<NodeId, boolean>;
  /** Leader only: replication progress of every other member. */
  readonly progress: ReadonlyMap<NodeId, Progress>;
  /** Leader only: the latest ReadIndex round started. */
  readonly readRound: number;
  /** Leader only: reads waiting for confirmation (round 0: for a commit in this term first). */
  readonly pendingReads: readonly PendingRead[];
  /** Leader only: the leadership transfer under way (thesis §3.10), if any. */
  readonly transfer: Transfer | null;
  /** PRNG state for election jitter. */
  readonly random: number;
  /** The generation each timer was last armed with; a firing of an older one is stale. */
  readonly timers: Readonly<Record<TimerName, number>>;
}

/** A leadership transfer the leader is running (thesis §3.10). */
export interface Transfer {
  readonly requestId: number;
  readonly to: NodeId;
  /** TimeoutNow was sent (once the target's log matched the leader's). */
  readonly timeoutSent: boolean;
}

/** A linearizable read waiting for the leader to confirm its leadership (thesis §6.4). */
export interface PendingRead {
  readonly requestId: number;
  /** The commit index when the round started: the read must see at least this. */
  readonly index: number;
  readonly round: number;
}

/** What a node recovers from storage when it (re)starts. */
export interface RestoredState {
  readonly hardState: HardState;
  /** Last entry covered by a snapshot; (0, 0) without one. */
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  /** The entry just before `entries` (snapshotIndex/Term when entries start the log). */
  readonly prevIndex: number;
  readonly prevTerm: number;
  /** The log from prevIndex + 1 to its end. Must include every entry after appliedIndex. */
  readonly entries: readonly Entry[];
  /**
   * The latest membership entries of the log or the snapshot, oldest first; at least the latest
   * one at or before prevIndex. Entries repeated in `entries` are ignored here.
   */
  readonly memberships: readonly ConfigEntry[];
  /** The state machine's last applied index. */
  readonly appliedIndex: number;
}

/** Arguments of {@link createState}. */
export interface CreateOptions {
  readonly id: NodeId;
  readonly config?: Partial<RaftConfig>;
  /** Seed for election jitter; defaults to one derived from the id. */
  readonly seed?: number;
  /** Persisted state to resume from; omitted for a brand new node. */
  readonly restored?: RestoredState;
}

/**
 * A node's initial state: new and uninitialized, or resumed from storage.
 *
 * @throws RangeError when `config` cannot work (see {@link resolveConfig}).
 * @throws Error when `restored` is inconsistent: a state machine ahead of the log, or entries
 *   that do not cover everything after the applied index.
 */
export function createState(options: CreateOptions): RaftState {
  const config = resolveConfig(options.config);
  const r = options.restored;
  const log = r
    ? createLog(r.snapshotIndex, r.snapshotTerm, r.prevIndex, r.prevTerm, r.entries)
    : createLog(0, 0, 0, 0, []);
  const configs: ConfigEntry[] = (r?.memberships ?? []).filter(
    (m) => m.index <= (r?.prevIndex ?? 0),
  );
  for (const entry of r?.entries ?? []) {
    if (entry.kind === "membership")
      configs.push({ index: entry.index, membership: entry.membership });
  }
  // Nothing above the state machine's applied index is known to be committed after a restart.
  const applied = Math.max(r?.appliedIndex ?? 0, log.snapshotIndex);
  if (applied > log.lastIndex) throw new Error("state machine is ahead of the log");
  if (r && applied < r.prevIndex)
    throw new Error("restored entries must cover everything after appliedIndex");
  const membership = activeConfig(configs).membership;
  let applyingConfig = activeConfig([]);
  for (const entry of configs) if (entry.index <= applied) applyingConfig = entry;
  return {
    id: options.id,
    config,
    role: isLearner(membership, options.id) ? "learner" : "follower",
    term: r?.hardState.term ?? 0,
    votedFor: r?.hardState.votedFor ?? null,
    leaderId: null,
    log,
    commitIndex: applied,
    persistedIndex: log.lastIndex,
    logEpoch: 0,
    applyingIndex: applied,
    appliedIndex: applied,
    applyingConfig,
    snapshotBuilding: 0,
    configs,
    votes: new Map(),
    progress: new Map(),
    readRound: 0,
    pendingReads: [],
    transfer: null,
    random:
      options.seed === undefined ? seedFromId(options.id) : seedFromId(options.id, options.seed),
    timers: { election: 0, heartbeat: 0 },
  };
}
