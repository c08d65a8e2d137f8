/**
 * The vocabulary of the pure core: entries, membership, messages, inputs and effects.
 * Plain data only, so states, inputs and effects can be logged, compared and replayed.
 */

/** A node's identity. Stable for the node's lifetime; addresses live in the membership. */
export type NodeId = string;

/**
 * A cluster configuration (§6, thesis §4.3). While `outgoing` is set the configuration is joint
 * (C_old,new): elections and commitment need a majority of `voters` AND of `outgoing`.
 */
export interface Membership {
  /** Voters of the new (or only) configuration. */
  readonly voters: readonly NodeId[];
  /** Voters of the old configuration during a joint change; absent otherwise. */
  readonly outgoing?: readonly NodeId[];
  /** Non-voting members that receive the log (thesis §4.2.1). */
  readonly learners: readonly NodeId[];
  /** Address of every member, opaque to the core (the transport interprets it). */
  readonly addresses: Readonly<Record<NodeId, string>>;
}

/** What an entry carries. The library never interprets `command` payloads. */
export type Entry = CommandEntry | BlankEntry | MembershipEntry;

interface EntryBase {
  /** Position in the log, from 1. */
  readonly index: number;
  /** Term of the leader that created the entry (§5.3). */
  readonly term: number;
}

/** An application command. */
export interface CommandEntry extends EntryBase {
  readonly kind: "command";
  /** The application's bytes, as given to `propose` (or `Raft.write`). */
  readonly data: Uint8Array;
}

/** The empty entry a new leader appends to commit its predecessors' entries (§5.4.2, §8). */
export interface BlankEntry extends EntryBase {
  readonly kind: "blank";
}

/** A configuration change; takes effect as soon as it is appended (thesis §4.1). */
export interface MembershipEntry extends EntryBase {
  readonly kind: "membership";
  readonly membership: Membership;
}

/** State that must be durable before the node answers a vote or an AppendEntries (§5.1). */
export interface HardState {
  /** §5.1 currentTerm. */
  readonly term: number;
  /** §5.2 the candidate voted for in `term`, if any. */
  readonly votedFor: NodeId | null;
}

/**
 * A node's role. `learner`: a non-voting member (thesis §4.2.1); `precandidate`: running a PreVote
 * (thesis §9.6) before a real election.
 */
export type Role = "follower" | "learner" | "precandidate" | "candidate" | "leader";

// ---------------------------------------------------------------------------------------------
// Messages between peers. Every message carries the sender's term (§5.1).

interface MessageBase {
  /** The sender's current term; a higher one makes the receiver adopt it (§5.1). */
  readonly term: number;
  /** The sender. */
  readonly from: NodeId;
  /** The receiver. */
  readonly to: NodeId;
}

/** §5.3. Sent by the leader; `entries` may be empty. */
export interface AppendEntriesRequest extends MessageBase {
  readonly type: "appendEntries";
  /** Index of the entry just before `entries`: the follower must hold it to accept them. */
  readonly prevLogIndex: number;
  /** Term of that entry (the consistency check, §5.3). */
  readonly prevLogTerm: number;
  /** Entries prevLogIndex + 1, + 2, ...; empty for a probe. */
  readonly entries: readonly Entry[];
  /** The leader's commit index; the follower commits up to min(this, its last new entry). */
  readonly leaderCommit: number;
}

/**
 * Answer to AppendEntries. On success `matchIndex` is the index of the last entry known to match
 * the leader's log. On rejection `rejectedIndex` echoes the request's prevLogIndex and the
 * conflict hint lets the leader skip a whole term per round trip (§5.3, "optimization").
 */
export interface AppendEntriesResponse extends MessageBase {
  readonly type: "appendEntriesResponse";
  readonly success: boolean;
  readonly matchIndex: number;
  readonly rejectedIndex: number;
  /** Term of the follower's entry at rejectedIndex, or 0 if its log is shorter. */
  readonly conflictTerm: number;
  /** First index of conflictTerm in the follower's log, or its lastLogIndex + 1. */
  readonly conflictIndex: number;
}

/** Keeps followers from starting elections and carries commit to those already matched. */
export interface HeartbeatRequest extends MessageBase {
  readonly type: "heartbeat";
  /** min(commitIndex, the follower's matchIndex): safe for the follower to commit. */
  readonly leaderCommit: number;
  /** The leader's latest ReadIndex round; an answer confirms leadership for it (thesis §6.4). */
  readonly round: number;
}

/** Answer to a heartbeat; it tells the leader the follower is alive and confirms a read round. */
export interface HeartbeatResponse extends MessageBase {
  readonly type: "heartbeatResponse";
  /** The round of the heartbeat answered. */
  readonly round: number;
}

/**
 * §5.2 RequestVote, or a PreVote (thesis §9.6) when `preVote` is set: a PreVote carries the term
 * the candidate would campaign in, and granting it changes no state on the voter.
 */
export interface VoteRequest extends MessageBase {
  readonly type: "requestVote";
  /** A PreVote (thesis §9.6): granting it changes nothing on the voter. */
  readonly preVote: boolean;
  /** The candidate's last entry, for the up-to-date check (§5.4.1). */
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set by a leadership transfer: voters must not ignore it because they know a leader. */
  readonly transfer: boolean;
}

/** Answer to a RequestVote or PreVote (§5.2); `granted`: the voter gives its vote. */
export interface VoteResponse extends MessageBase {
  readonly type: "requestVoteResponse";
  /** Answers a PreVote. */
  readonly preVote: boolean;
  /** The vote (or the PreVote) is given. */
  readonly granted: boolean;
}

/** Leadership transfer (thesis §3.10): the target starts an election at once. */
export interface TimeoutNowRequest extends MessageBase {
  readonly type: "timeoutNow";
}

/**
 * InstallSnapshot (§7, thesis §5.3): stepped by the follower's driver once it has received the
 * whole snapshot from the leader and written it aside. The snapshot's data never enters the core:
 * only its metadata (last included index and term, and the configuration in force there).
 */
export interface InstallSnapshotRequest extends MessageBase {
  readonly type: "installSnapshot";
  readonly lastIncludedIndex: number;
  readonly lastIncludedTerm: number;
  readonly membership: Membership;
}

/** Answer to InstallSnapshot, sent once the install is durable: the log matches up to matchIndex. */
export interface InstallSnapshotResponse extends MessageBase {
  readonly type: "installSnapshotResponse";
  readonly success: boolean;
  readonly matchIndex: number;
}

/** Every message peers exchange; `type` tells them apart. The transport carries them as data. */
export type Message =
  | AppendEntriesRequest
  | AppendEntriesResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | VoteRequest
  | VoteResponse
  | TimeoutNowRequest
  | InstallSnapshotRequest
  | InstallSnapshotResponse;

// ---------------------------------------------------------------------------------------------
// Inputs: everything that can happen to a node.

/**
 * The core's two timers: `election` (followers and candidates; on the leader, the CheckQuorum
 * round) and `heartbeat` (leader).
 */
export type TimerName = "election" | "heartbeat";

/**
 * Everything that can happen to a node, given to {@link step}: messages, timer firings, client
 * and admin requests, and the driver's reports that an effect completed. See docs/core.md.
 */
export type Input =
  /** The driver started the node (new or restarted): arms its timers. */
  | { readonly type: "start" }
  /** A message from a peer. */
  | { readonly type: "message"; readonly message: Message }
  /** A timer armed by an `armTimer` effect fired; `generation` is the one it was armed with. */
  | { readonly type: "timeout"; readonly timer: TimerName; readonly generation: number }
  /** Client commands to append; `requestId` is echoed in the answer effect. */
  | {
      readonly type: "propose";
      readonly requestId: number;
      readonly commands: readonly Uint8Array[];
    }
  /** Linearizable read (ReadIndex, thesis §6.4): answered by readIndexReady or readIndexRejected. */
  | { readonly type: "readIndex"; readonly requestId: number }
  /** Form a new cluster with this membership. Safe to give every founding member the same one. */
  | { readonly type: "initialize"; readonly membership: Membership }
  /** Storage finished every write up to and including the entry (index, term). */
  | {
      readonly type: "persisted";
      readonly index: number;
      readonly term: number;
      /** The `epoch` of the appendLog that wrote this entry. */
      readonly epoch: number;
    }
  /** The state machine applied every entry up to `index`. */
  | { readonly type: "applied"; readonly index: number }
  /** Answer to a `loadEntries` effect: entries fromIndex..toIndex read from storage. */
  | { readonly type: "entriesLoaded"; readonly peer: NodeId; readonly entries: readonly Entry[] }
  /** The transport could not deliver to `peer`; replication to it falls back to probing. */
  | { readonly type: "unreachable"; readonly peer: NodeId }
  /**
   * Admin: move to the configuration `membership` (voters, learners, addresses; never joint).
   * A change of the voter set goes through C_old,new (thesis §4.3); learner-only changes are
   * appended directly. Answered by adminAccepted (with the entry's index) or adminRejected.
   */
  | {
      readonly type: "changeMembership";
      readonly requestId: number;
      readonly membership: Membership;
    }
  /**
   * Admin: hand leadership to `to`, or to the most up-to-date voter when null (thesis §3.10).
   * Answered by adminAccepted (with the leader's term) or adminRejected; a transfer that does
   * not complete within an election timeout ends with transferAborted.
   */
  | { readonly type: "transferLeadership"; readonly requestId: number; readonly to: NodeId | null }
  /** Take a snapshot now (on demand); answered by snapshotTriggered. */
  | { readonly type: "triggerSnapshot"; readonly requestId: number }
  /** The snapshot asked for by `buildSnapshot` is durable (data and metadata). */
  | { readonly type: "snapshotBuilt"; readonly index: number; readonly term: number }
  /**
   * Leader: the stream started by `sendSnapshot` ended. `success`: the follower received all of
   * it (its answer, installSnapshotResponse, reports the install); otherwise it failed or was
   * aborted, and the follower is probed again (and sent the snapshot again if it still needs it).
   */
  | {
      readonly type: "snapshotSent";
      readonly peer: NodeId;
      readonly index: number;
      readonly success: boolean;
    }
  /** Follower: the state machine was restored from the snapshot of an `installSnapshot` effect. */
  | { readonly type: "snapshotInstalled"; readonly index: number; readonly term: number };

/** Why an admin request was refused. */
export type AdminRejection =
  | "not_leader"
  | "change_in_progress"
  | "invalid_membership"
  | "transfer_in_progress"
  | "unknown_target";

// ---------------------------------------------------------------------------------------------
// Effects: what the driver must do, in order.
//
// Ordering contract (written down in docs/ and tested):
// 1. Storage effects (saveHardState, truncateLog, appendLog) are executed in the order given,
//    across steps: storage is one sequence of writes.
// 2. A `send` with `afterPersist: true` may leave only once every storage effect emitted before
//    it, by this step or an earlier one, is durable. This covers votes (§5.2: votedFor is durable
//    before the vote is granted) and AppendEntries responses (the follower's entries are durable
//    before it acknowledges them). Other sends may leave at once: the leader replicates in
//    parallel with its own append (thesis §10.2.1). Messages to one peer keep their order.
// 3. After appendLog's entries are durable the driver reports `persisted` with the last one.
// 4. `apply` entries are given to the state machine in order; the driver reports `applied`.
// 5. Snapshots (buildSnapshot, purgeLog, sendSnapshot, installSnapshot): see docs/core.md rules 7-11.

/**
 * What {@link step} asks the driver to do, in order: storage writes, messages, state machine
 * work, timers and answers to requests. The ordering contract above (and in docs/core.md) says
 * what must be durable before a message may leave.
 */
export type Effect =
  | { readonly type: "saveHardState"; readonly hardState: HardState }
  /** Delete every entry with index >= fromIndex. */
  | { readonly type: "truncateLog"; readonly fromIndex: number }
  /** Append entries directly after the current last entry. */
  /** `epoch` counts the truncations before this append; `persisted` echoes it. */
  | { readonly type: "appendLog"; readonly entries: readonly Entry[]; readonly epoch: number }
  | { readonly type: "send"; readonly message: Message; readonly afterPersist: boolean }
  /** Give these committed, durable entries to the state machine, in order. */
  | { readonly type: "apply"; readonly entries: readonly Entry[] }
  /** (Re)arm a timer; an earlier arming of the same timer is cancelled. */
  | {
      readonly type: "armTimer";
      readonly timer: TimerName;
      readonly afterMs: number;
      readonly generation: number;
    }
  | { readonly type: "cancelTimer"; readonly timer: TimerName }
  /** Read entries fromIndex..toIndex (inclusive) and answer with `entriesLoaded` for `peer`. */
  | {
      readonly type: "loadEntries";
      readonly peer: NodeId;
      readonly fromIndex: number;
      readonly toIndex: number;
    }
  /** A proposal was appended at firstIndex..; it is answered when those entries apply. */
  | {
      readonly type: "proposalAccepted";
      readonly requestId: number;
      readonly firstIndex: number;
      readonly term: number;
    }
  /** A proposal was refused; `leaderId` is the leader this node knows of, if any. */
  | {
      readonly type: "proposalRejected";
      readonly requestId: number;
      /** `transferring`: a leadership transfer is under way (thesis §3.10); retry shortly. */
      readonly reason: "not_leader" | "uninitialized" | "transferring";
      readonly leaderId: NodeId | null;
    }
  /**
   * Leadership was confirmed by a quorum after the read arrived: once the state machine has
   * applied `index`, reading it is linearizable.
   */
  | { readonly type: "readIndexReady"; readonly requestId: number; readonly index: number }
  /** This node is not (or no longer) the leader; `leaderId` is the leader it knows of. */
  | {
      readonly type: "readIndexRejected";
      readonly requestId: number;
      readonly leaderId: NodeId | null;
    }
  /**
   * An admin request was accepted: for changeMembership, `index` is the configuration entry's
   * index (the change is done once C_new commits); for transferLeadership, it is the term.
   */
  | { readonly type: "adminAccepted"; readonly requestId: number; readonly index: number }
  | {
      readonly type: "adminRejected";
      readonly requestId: number;
      readonly reason: AdminRejection;
      readonly leaderId: NodeId | null;
    }
  /** A leadership transfer did not complete within an election timeout; the leader goes on. */
  | { readonly type: "transferAborted"; readonly requestId: number; readonly to: NodeId }
  /**
   * Snapshot the state machine as of `index` (term `term`): the driver takes it after applying
   * every entry handed out by `apply` effects before this one and before any handed out after it
   * (the state machine sees apply and buildSnapshot in emission order). Store it durably with
   * this metadata (`membership`: the configuration in force at `index`), then report
   * `snapshotBuilt`. At most one build is asked for at a time.
   */
  | {
      readonly type: "buildSnapshot";
      readonly index: number;
      readonly term: number;
      readonly membership: Membership;
    }
  /**
   * Answer to triggerSnapshot: once a snapshot covering `index` is durable (snapshotBuilt with
   * an index >= this), the request is done; `index` 0 means there was nothing to snapshot.
   */
  | { readonly type: "snapshotTriggered"; readonly requestId: number; readonly index: number }
  /**
   * Storage: drop log entries up to and including `upToIndex` (covered by a durable snapshot).
   * Executed in order with the other storage effects; a no-op for entries already purged.
   */
  | { readonly type: "purgeLog"; readonly upToIndex: number }
  /**
   * Leader: stream the latest durable snapshot (last included `index`, `term`) to `peer`, then
   * report `snapshotSent`. One stream per peer; a new sendSnapshot to the same peer replaces
   * (aborts) an earlier stream.
   */
  | {
      readonly type: "sendSnapshot";
      readonly peer: NodeId;
      readonly index: number;
      readonly term: number;
    }
  /** Leader: abort the snapshot stream to `peer`, if one is running (no report is needed). */
  | { readonly type: "cancelSnapshot"; readonly peer: NodeId }
  /**
   * Follower, storage (§7, thesis §5.3): install the received snapshot (index, term, membership)
   * atomically — restore the state machine from it, make it durable, and in the log drop every
   * entry up to `index` (`discardLog` false: the entries after it match and are kept) or the
   * whole log (`discardLog` true: the log becomes empty, following (index, term)). A crash
   * before it is durable leaves the previous state intact. Executed in order with the other
   * storage effects and, for the state machine, with `apply`; report `snapshotInstalled`.
   */
  | {
      readonly type: "installSnapshot";
      readonly index: number;
      readonly term: number;
      readonly membership: Membership;
      readonly discardLog: boolean;
    }
  /** `initialize` was refused: the node already has a log or a term. */
  | { readonly type: "initializeRejected"; readonly reason: string }
  /** Role, term or leader changed (for metrics and for failing pending requests). */
  | {
      readonly type: "roleChanged";
      readonly role: Role;
      readonly term: number;
      readonly leaderId: NodeId | null;
    };
