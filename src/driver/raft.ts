/**
 * The driver: runs the pure core against a LogStore, a Network, a StateMachine and real timers,
 * and gives applications a promise-based API.
 *
 * It owns one core state and one input queue. Inputs that arrive in the same turn of the event
 * loop are stepped together and their effects executed as one batch: one LogStore write (the
 * next batch collects while one is in flight, which is group commit), merged AppendEntries per
 * peer, one timer reset per timer. No fixed delay is added anywhere.
 */
import { type RaftConfig, resolveConfig } from "../core/config.ts";
import { termAt } from "../core/log.ts";
import { activeConfig, allMembers, isVoter } from "../core/membership.ts";
import { confirmedRound } from "../core/read-index.ts";
import { createState, type RaftState } from "../core/state.ts";
import { step } from "../core/step.ts";
import type {
  AdminRejection,
  Effect,
  Entry,
  Input,
  Membership,
  Message,
  NodeId,
  TimerName,
} from "../core/types.ts";
import type {
  Network,
  RequestMessage,
  ResponseMessage,
  RpcHandler,
  SnapshotChunk,
  SnapshotChunkResponse,
} from "../net/network.ts";
import type { LogStore } from "../storage/log-store.ts";
import type { SnapshotMeta, SnapshotStore } from "../storage/snapshot-store.ts";
import { nextMacrotask } from "../util/macrotask.ts";
import {
  AdminError,
  BackpressureError,
  FatalError,
  LeadershipLostError,
  NotLeaderError,
  RemovedError,
  ShutdownError,
  TimeoutError,
  TransferInProgressError,
} from "./errors.ts";
import { type LogFields, type Logger, type LogLevel, silentLogger } from "./logger.ts";
import {
  MetricsHub,
  type MetricsWatch,
  type RaftMetrics,
  type ReplicationMetrics,
} from "./metrics.ts";
import { recover, restoreFrom } from "./recover.ts";
import {
  type ReceivedSnapshot,
  SnapshotReceiver,
  SnapshotSenders,
  SnapshotSlot,
  type TransferHost,
} from "./snapshot-transfer.ts";
import { ApplyFailure, type ApplyResponse, type StateMachine } from "./state-machine.ts";
import { WriteBatch } from "./write-batch.ts";

/** Driver settings, beside the core's. Limits are named with their unit. */
export interface DriverConfig {
  /** Writes accepted but not yet applied; past it `write` rejects with BackpressureError. */
  readonly maxPendingWrites: number;
  /** Timeout of one RPC to a peer. */
  readonly rpcTimeoutMs: number;
  /** Default timeout of `ensureLinearizable`. */
  readonly readTimeoutMs: number;
  /**
   * Leader lease reads (off by default). While a quorum answered a heartbeat sent less than
   * `electionTimeoutMinMs × (1 − leaseClockDrift)` ago, reads skip the confirmation round.
   * This is safe only if clocks run at rates within that drift of each other and no quorum of
   * followers restarts (a restarted node has no leader and may vote at once). Requires
   * CheckQuorum, which makes followers ignore elections while they hear from a leader.
   */
  readonly leaseReads: boolean;
  /** Bound on relative clock drift between nodes assumed by lease reads, e.g. 0.1 for 10%. */
  readonly leaseClockDrift: number;
  /** Default timeout of `addLearner`, `changeMembership` and `transferLeadership`. */
  readonly adminTimeoutMs: number;
  /** Largest snapshot data per chunk streamed to a follower (default 1 MiB). */
  readonly snapshotChunkBytes: number;
  /**
   * Timeout of a snapshot stream's last chunk, which the follower answers only once it has
   * restored its state machine and made the install durable (default 60 s; other chunks use
   * rpcTimeoutMs). Like openraft's `install_snapshot_timeout`.
   */
  readonly snapshotInstallTimeoutMs: number;
}

/**
 * The `config` of {@link RaftOptions}: the core's settings (RaftConfig: election and heartbeat
 * timing, windows, snapshot policy) and the driver's (DriverConfig), each optional with its
 * default. `new Raft` throws a RangeError naming a setting it finds invalid.
 */
export type RaftOptionsConfig = Partial<RaftConfig & DriverConfig>;

/** What `new Raft(options)` needs: the node's identity and the parts it runs on. */
export interface RaftOptions {
  /** This node's id, unique in the cluster and never reused by another node. */
  readonly id: NodeId;
  /** Timing, limits and snapshot policy; every field has a default. */
  readonly config?: RaftOptionsConfig;
  /** The durable log, term and vote (`SqliteLogStore`, or `MemoryLogStore` for tests). */
  readonly logStore: LogStore;
  /** The application, which applies committed entries in log order. */
  readonly stateMachine: StateMachine;
  /** How this node reaches its peers (`FetchNetwork`, or a `MemoryNetwork` endpoint). */
  readonly network: Network;
  /**
   * Where snapshots are kept (`SqliteLogStore.snapshots`, or a MemorySnapshotStore); the state
   * machine must then implement `snapshot` and `restore`. Without it the node never compacts
   * its log (snapshotThreshold is 0) and cannot receive a leader's snapshot.
   */
  readonly snapshotStore?: SnapshotStore;
  /** Where log lines go (default: {@link silentLogger}). */
  readonly logger?: Logger;
  /** Seed of the core's election jitter (default: derived from the id). */
  readonly seed?: number;
}

/** Options of {@link Raft.addLearner}. */
export interface AddLearnerOptions {
  /** Resolve only once the learner is caught up (within `maxLag` entries). Default false. */
  readonly blocking?: boolean;
  /** How far behind the leader's last index a learner may be to count as caught up. Default 100. */
  readonly maxLag?: number;
  /** Default: config.adminTimeoutMs. */
  readonly timeoutMs?: number;
}

/** Options of {@link Raft.changeMembership}. */
export interface ChangeMembershipOptions {
  /** Keep removed voters as learners. Default false: they leave the cluster. */
  readonly retain?: boolean;
  /** How far behind a new voter may be before it is promoted. Default 100 entries. */
  readonly maxLag?: number;
  /** Default: config.adminTimeoutMs. */
  readonly timeoutMs?: number;
}

/** A committed configuration: its entry's index and the membership. */
export interface MembershipChangeResult {
  readonly index: number;
  readonly membership: Membership;
}

/** What a committed and applied {@link Raft.write} resolves with. */
export interface WriteResult {
  /** The log index of the entry. */
  readonly index: number;
  /** The state machine's answer to it (`apply`'s response). */
  readonly response: Uint8Array;
}

interface PendingWrite {
  readonly data: Uint8Array;
  readonly resolve: (result: WriteResult) => void;
  readonly reject: (error: Error) => void;
  term: number;
}

interface AcceptedBatch {
  readonly firstIndex: number;
  readonly term: number;
  readonly writes: PendingWrite[];
}

interface PendingRead {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  /** Known once a quorum confirmed leadership: the read waits until applied reaches it. */
  index: number;
}

interface PendingAdmin {
  readonly resolve: (accepted: { requestId: number; index: number }) => void;
  readonly reject: (error: Error) => void;
}

type Reply = (response: Message | null) => void;

interface QueuedInput {
  readonly input: Input;
  /** For a request from a peer: where its answer goes. */
  readonly reply?: Reply;
}

interface HeldMessage {
  readonly waitSeq: number;
  readonly message: Message;
  readonly reply: Reply | undefined;
}

/**
 * A follower's install (docs/core.md rule 10): a storage step, in order with the writes, that
 * also waits until the state machine has applied everything handed out before it.
 */
interface InstallJob {
  readonly effect: Extract<Effect, { type: "installSnapshot" }>;
  readonly received: ReceivedSnapshot;
  /** Resolves when the state machine's queue reaches the install. */
  readonly machineTurn: Promise<void>;
  reachMachine: () => void;
  /** Resolves when the install is done (or failed): the state machine's queue goes on. */
  readonly done: Promise<void>;
  finish: () => void;
}

/** The storage sequence: merged log writes, purges and installs, in emission order. */
type StorageOp =
  | { readonly kind: "write"; readonly batch: WriteBatch; readonly seq: number }
  | { readonly kind: "purge"; readonly upToIndex: number; readonly seq: number }
  | { readonly kind: "install"; readonly job: InstallJob; readonly seq: number };

/** The state machine's sequence: applies, snapshot builds and installs, in emission order. */
type MachineOp =
  | { readonly kind: "apply"; readonly entries: Entry[] }
  | { readonly kind: "build"; readonly meta: SnapshotMeta }
  | { readonly kind: "install"; readonly job: InstallJob };

const defaultDriverConfig: DriverConfig = {
  maxPendingWrites: 65536,
  rpcTimeoutMs: 2000,
  readTimeoutMs: 5000,
  leaseReads: false,
  leaseClockDrift: 0.1,
  adminTimeoutMs: 30_000,
  snapshotChunkBytes: 1 << 20,
  snapshotInstallTimeoutMs: 60_000,
};

/** Failed chunks in a row after which a snapshot stream gives up (the core retries it). */
const SNAPSHOT_MAX_ATTEMPTS = 8;
/**
 * Snapshot chunks in flight to one follower. One: over HTTP a second chunk in flight often
 * overtook the first (separate connections) and had to be sent again, and gave no speed-up
 * on a busy 2-core machine, where the follower's fsync per chunk dominates.
 */
const SNAPSHOT_WINDOW = 1;

const DEFAULT_MAX_LAG = 100;

const responseTypeOf: Partial<Record<Message["type"], Message["type"] | null>> = {
  appendEntries: "appendEntriesResponse",
  heartbeat: "heartbeatResponse",
  requestVote: "requestVoteResponse",
  timeoutNow: null,
  installSnapshot: "installSnapshotResponse",
};

/** A settled promise: `then` on it queues a microtask (cheaper than queueMicrotask on Node). */
const resolved = Promise.resolve();

export class Raft implements RpcHandler {
  readonly id: NodeId;
  /** This node's state, published on every change: read `current`, or `waitFor` a condition. */
  readonly metrics: MetricsWatch;
  /** The same object as `metrics`, with the publishing side. */
  readonly #metricsHub: MetricsHub;
  readonly #config: RaftConfig & DriverConfig;
  readonly #store: LogStore;
  readonly #machine: StateMachine;
  readonly #network: Network;
  readonly #snapshots: SnapshotStore | null;
  readonly #logger: Logger;
  readonly #seed: number | undefined;
  #state: RaftState;
  #started = false;
  /** Set once start() has loaded the store: before that no request may see the empty state. */
  #loaded = false;
  #stopped = false;
  #fatal: Error | null = null;

  // Inputs and the batch being built.
  #queue: QueuedInput[] = [];
  #drainScheduled = false;
  #requestsScheduled = false;
  #proposals: PendingWrite[] = [];
  #reads: PendingRead[] = [];

  // Requests in the core, by request id.
  #nextRequestId = 1;
  readonly #proposing = new Map<number, PendingWrite[]>();
  readonly #reading = new Map<number, PendingRead[]>();
  /** Accepted proposals in log order: their writes hold indexes firstIndex, firstIndex + 1... */
  #acceptedBatches: AcceptedBatch[] = [];
  #acceptedHead = 0;
  #pendingWriteCount = 0;
  #readsWaitingApply: PendingRead[] = [];
  /** Admin requests in the core, answered by adminAccepted or adminRejected. */
  readonly #admin = new Map<number, PendingAdmin>();
  /** Transfers the core aborted (transferAborted), until their waiter sees it. */
  readonly #abortedTransfers = new Set<number>();
  /** Conditions waited on by admin requests: run after every step and when the node stops. */
  readonly #watchers = new Set<() => void>();
  /** A membership change (its learner phase included) is under way on this node. */
  #changing = false;

  // Storage: one write in flight, the next batch collecting meanwhile.
  #batch = new WriteBatch();
  #issuedSeq = 0;
  #durableSeq = 0;
  #writing: Promise<void> | null = null;
  #held: HeldMessage[] = [];
  /** Storage steps waiting behind the one in flight (the collecting #batch comes after them). */
  #storageOps: StorageOp[] = [];
  /** The LogStore's purge point: the log starts after it. */
  #purgedIndex = 0;
  /** The last entry the LogStore holds durably (later ones are still in memory only). */
  #storedLastIndex = 0;

  // State machine: one operation in flight.
  #machineOps: MachineOp[] = [];
  #applying: Promise<void> | null = null;
  #lastApplied = 0;

  // Snapshots (§7): local builds, streams to followers, transfers from the leader.
  readonly #slot = new SnapshotSlot();
  readonly #senders: SnapshotSenders | null = null;
  readonly #receiver: SnapshotReceiver | null = null;
  #building: Promise<void> | null = null;

  readonly #timers: Record<TimerName, ReturnType<typeof setTimeout> | undefined> = {
    election: undefined,
    heartbeat: undefined,
  };
  // Leader lease: when each heartbeat round left, and until when the lease holds.
  readonly #leaseMs: number;
  readonly #roundSentAt = new Map<number, number>();
  #leaseExpiry = 0;
  #leaseTerm = 0;

  #closed!: (error: Error | null) => void;
  /** Resolves when the node stops: with null after `shutdown`, with the error after a failure. */
  readonly closed: Promise<Error | null>;

  /**
   * Creates a node on its stores, state machine and network; nothing runs until `start()`.
   * Throws a RangeError for an invalid setting in `options.config`, and a TypeError for a
   * `snapshotStore` with a state machine that lacks `snapshot` or `restore`.
   */
  constructor(options: RaftOptions) {
    this.id = options.id;
    const { driver, core: given } = splitConfig(options.config ?? {});
    this.#snapshots = options.snapshotStore ?? null;
    const machine = options.stateMachine;
    if (this.#snapshots && !(machine.snapshot && machine.restore)) {
      throw new TypeError("a snapshotStore needs a state machine with snapshot() and restore()");
    }
    // Without a snapshot store the log is never compacted.
    const core = this.#snapshots ? given : { ...given, snapshotThreshold: 0 };
    this.#config = { ...resolveConfig(core), ...defaultDriverConfig, ...driver };
    const chunkBytes = this.#config.snapshotChunkBytes;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
      throw new RangeError("config.snapshotChunkBytes must be a positive integer");
    }
    if (this.#config.leaseReads && !this.#config.checkQuorum) {
      throw new RangeError("config.leaseReads needs config.checkQuorum");
    }
    const drift = this.#config.leaseClockDrift;
    if (!(drift >= 0 && drift < 1))
      throw new RangeError("config.leaseClockDrift must be in [0, 1)");
    this.#leaseMs = this.#config.electionTimeoutMinMs * (1 - drift);
    this.#store = options.logStore;
    this.#machine = options.stateMachine;
    this.#network = options.network;
    this.#logger = options.logger ?? silentLogger;
    this.#seed = options.seed;
    if (this.#snapshots) {
      const host = this.#transferHost(this.#snapshots);
      this.#senders = new SnapshotSenders(host);
      this.#receiver = new SnapshotReceiver(host);
    }
    this.#state = createState({ id: this.id, config: core, seed: this.#seed });
    this.#metricsHub = new MetricsHub(this.#snapshotMetrics());
    this.metrics = this.#metricsHub;
    this.closed = new Promise((resolve) => {
      this.#closed = resolve;
    });
  }

  /**
   * Loads the persisted state (a new store starts uninitialized) and starts the timers: the
   * latest snapshot is restored into the state machine when `lastApplied()` is below it, and
   * the log after it is replayed. Rejects when called twice, when a store or the state
   * machine's `restore` fails, or when the log and the snapshot store do not fit together.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error("start() was already called");
    this.#started = true;
    const { restored, purgedIndex, lastIndex } = await recover(
      this.#store,
      this.#snapshots,
      this.#machine,
    );
    this.#purgedIndex = purgedIndex;
    this.#storedLastIndex = lastIndex;
    this.#lastApplied = restored.appliedIndex;
    this.#state = createState({
      id: this.id,
      config: this.#state.config,
      seed: this.#seed,
      restored,
    });
    this.#loaded = true;
    const { appliedIndex: applied, snapshotIndex: snapshot } = restored;
    this.#log("info", "started", { lastIndex, applied, snapshot });
    this.#publishMetrics();
    this.#enqueue({ input: { type: "start" } });
  }

  /**
   * Forms a new cluster of `members` (node id → address). Calling it on every founding member
   * with the same members is safe; on a node that already has a log or a term it rejects (an
   * Error naming the reason). Rejects before `start()`, and with ShutdownError or FatalError.
   */
  initialize(members: Readonly<Record<NodeId, string>>): Promise<void> {
    const membership: Membership = {
      voters: Object.keys(members),
      learners: [],
      addresses: { ...members },
    };
    return new Promise((resolve, reject) => {
      if (!this.#checkRunning(reject)) return;
      this.#initializeWaiters.push({ resolve, reject });
      this.#enqueue({ input: { type: "initialize", membership } });
    });
  }
  #initializeWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  /**
   * Replicates `data` and resolves once it is committed and applied, with its index and the
   * state machine's response. Rejects with NotLeaderError on a follower, BackpressureError past
   * maxPendingWrites, ApplyFailure if the state machine failed the command deterministically,
   * LeadershipLostError if another leader's entry replaced it, ShutdownError or FatalError.
   */
  write(data: Uint8Array): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      if (!this.#checkRunning(reject)) return;
      if (this.#state.role !== "leader") {
        reject(this.#notLeader());
        return;
      }
      if (this.#state.transfer !== null) {
        reject(new TransferInProgressError(this.id));
        return;
      }
      if (this.#pendingWriteCount >= this.#config.maxPendingWrites) {
        reject(
          new BackpressureError(`${this.#pendingWriteCount} writes pending (maxPendingWrites)`),
        );
        return;
      }
      this.#pendingWriteCount++;
      this.#proposals.push({ data, resolve, reject, term: 0 });
      this.#scheduleRequests();
    });
  }

  /**
   * ReadIndex (thesis §6.4): resolves once this node has confirmed with a quorum that it is
   * still the leader and has applied everything committed when the read arrived, so a read of
   * the local state machine that follows is linearizable. Concurrent reads share one round.
   * With `leaseReads`, a leader whose lease holds skips the round. Rejects with NotLeaderError
   * on a follower or a leader that lost its term, TimeoutError when no quorum confirmed within
   * `timeoutMs` (default config.readTimeoutMs), ShutdownError or FatalError.
   */
  ensureLinearizable(options: { timeoutMs?: number } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.#checkRunning(reject)) return;
      if (this.#state.role !== "leader") {
        reject(this.#notLeader());
        return;
      }
      const timeoutMs = options.timeoutMs ?? this.#config.readTimeoutMs;
      const leaseIndex = this.#leaseReadIndex();
      const read: PendingRead = {
        resolve,
        reject,
        index: -1,
        timer: setTimeout(() => {
          this.#dropRead(read);
          reject(new TimeoutError(`leadership not confirmed within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      if (leaseIndex === null) {
        this.#reads.push(read);
        this.#scheduleRequests();
      } else {
        read.index = leaseIndex;
        this.#readsWaitingApply.push(read);
        this.#resolveReadsUpTo(this.#lastApplied);
      }
    });
  }

  /** The index a lease read must see, or null when the lease does not hold now. */
  #leaseReadIndex(): number | null {
    if (!this.#config.leaseReads || performance.now() >= this.#leaseExpiry) return null;
    const s = this.#state;
    // Like ReadIndex, only once the leader knows its commit index is current (§6.4).
    if (s.role !== "leader" || termAt(s.log, s.commitIndex) !== s.term) return null;
    // A transfer's target may win votes despite the lease (thesis §3.10).
    if (s.transfer !== null) return null;
    return s.commitIndex;
  }

  /**
   * Renews the lease from the latest round a quorum answered: followers that answered will not
   * elect anyone else until an election timeout after they heard that round's heartbeat.
   */
  #renewLease(): void {
    const s = this.#state;
    // During a leadership transfer voters grant the target's votes despite the lease: the lease
    // ends, and rounds sent before the transfer ended never renew it.
    if (s.role !== "leader" || s.term !== this.#leaseTerm || s.transfer !== null) {
      this.#leaseTerm = s.term;
      this.#leaseExpiry = 0;
      this.#roundSentAt.clear();
    }
    const round = confirmedRound(s);
    const sentAt = this.#roundSentAt.get(round);
    if (sentAt === undefined) return;
    this.#leaseExpiry = Math.max(this.#leaseExpiry, sentAt + this.#leaseMs);
    for (const r of this.#roundSentAt.keys()) if (r <= round) this.#roundSentAt.delete(r);
  }

  /** Runs `fn` after `ensureLinearizable()`: a linearizable read of the local state. */
  async read<T>(fn: () => T | Promise<T>, options: { timeoutMs?: number } = {}): Promise<T> {
    await this.ensureLinearizable(options);
    return fn();
  }

  // -------------------------------------------------------------------------------------------
  // Membership and leadership (admin). Leader only: elsewhere they reject with NotLeaderError.

  /**
   * Adds `id` (reachable at `addr`) as a learner: a non-voting member the leader replicates to
   * (thesis §4.2.1). Resolves once the configuration with it is committed; with `blocking`, only
   * once the learner is also within `maxLag` entries of the leader's last index. Idempotent for
   * a learner already present with that address. Rejects with AdminError (`change_in_progress`,
   * `invalid_membership` for a voter, `leadership_lost`, `timeout`) or NotLeaderError.
   */
  addLearner(
    id: NodeId,
    addr: string,
    options: AddLearnerOptions = {},
  ): Promise<MembershipChangeResult> {
    return this.#exclusive(options.timeoutMs, async (deadline) => {
      const current = this.#stableMembership();
      if (isVoter(current, id)) throw new AdminError("invalid_membership", `${id} is a voter`);
      let result: MembershipChangeResult;
      if (current.learners.includes(id) && current.addresses[id] === addr) {
        result = { index: activeConfig(this.#state.configs).index, membership: current };
      } else {
        result = await this.#changeTo(
          {
            voters: current.voters,
            learners: [...current.learners.filter((l) => l !== id), id],
            addresses: { ...current.addresses, [id]: addr },
          },
          deadline,
        );
      }
      if (options.blocking) await this.#caughtUp([id], options.maxLag, deadline);
      return result;
    });
  }

  /**
   * Makes `voters` the voter set, through joint consensus (thesis §4.3). `voters` is a list of
   * ids, or a record id → address; a new voter that is not yet a member needs its address. New
   * voters are first added as learners (one configuration change) and promoted once within
   * `maxLag` entries of the leader; the leader then appends C_old,new and, once that commits,
   * C_new by itself. Resolves once C_new is committed (a leader that C_new removes resolves and
   * then steps down). Removed voters leave the cluster, or stay as learners with `retain`.
   * Rejects with AdminError (`change_in_progress` while another change runs, `invalid_membership`,
   * `transfer_in_progress`, `leadership_lost`, `timeout`) or NotLeaderError.
   */
  changeMembership(
    voters: readonly NodeId[] | Readonly<Record<NodeId, string>>,
    options: ChangeMembershipOptions = {},
  ): Promise<MembershipChangeResult> {
    const given: Record<NodeId, string> = isIdList(voters) ? {} : { ...voters };
    const ids = isIdList(voters) ? [...voters] : Object.keys(voters);
    return this.#exclusive(options.timeoutMs, async (deadline) => {
      if (ids.length === 0) throw new AdminError("invalid_membership", "no voters");
      if (new Set(ids).size !== ids.length) {
        throw new AdminError("invalid_membership", "a voter appears twice");
      }
      const current = this.#stableMembership();
      const joining = ids.filter((id) => !current.voters.includes(id));
      const newcomers = joining.filter((id) => !current.learners.includes(id));
      for (const id of newcomers) {
        if (given[id] === undefined) {
          throw new AdminError("invalid_membership", `${id} is not a member: give its address`);
        }
      }
      let base = current;
      if (newcomers.length > 0) {
        // Non-voting first: the voter change waits until they have the log (thesis §4.2.1).
        const addresses = { ...current.addresses };
        for (const id of newcomers) addresses[id] = given[id] as string;
        const learners = [...current.learners, ...newcomers];
        base = (await this.#changeTo({ voters: current.voters, learners, addresses }, deadline))
          .membership;
      }
      if (joining.length > 0) await this.#caughtUp(joining, options.maxLag, deadline);
      const removed = base.voters.filter((id) => !ids.includes(id));
      const learners = base.learners.filter((id) => !ids.includes(id));
      if (options.retain) learners.push(...removed);
      const addresses: Record<NodeId, string> = {};
      for (const id of [...ids, ...learners]) {
        const address = given[id] ?? base.addresses[id];
        if (address !== undefined) addresses[id] = address;
      }
      return this.#changeTo({ voters: ids, learners, addresses }, deadline);
    });
  }

  /**
   * Hands leadership to `to`, or to the most up-to-date voter (thesis §3.10): the leader stops
   * accepting writes (they reject with TransferInProgressError), catches the target up and
   * tells it to campaign at once. Resolves with the new leader's id once this node knows another
   * leader. Rejects with AdminError `transfer_aborted` if the target did not take over within an
   * election timeout (this node then accepts writes again), `unknown_target`,
   * `transfer_in_progress`, `timeout`, or with NotLeaderError.
   */
  async transferLeadership(to?: NodeId, options: { timeoutMs?: number } = {}): Promise<NodeId> {
    this.#requireLeader();
    const timeoutMs = options.timeoutMs ?? this.#config.adminTimeoutMs;
    const { requestId } = await this.#adminRequest((requestId) => ({
      type: "transferLeadership",
      requestId,
      to: to ?? null,
    }));
    if (to === this.id) return this.id;
    try {
      return await this.#watch("the leadership transfer", timeoutMs, () => {
        if (this.#abortedTransfers.has(requestId)) {
          throw new AdminError(
            "transfer_aborted",
            `${to ?? "the target"} did not take over in time; ${this.id} still leads`,
          );
        }
        const s = this.#state;
        if (s.role !== "leader" && s.leaderId !== null && s.leaderId !== this.id) {
          return s.leaderId;
        }
        return undefined;
      });
    } finally {
      this.#abortedTransfers.delete(requestId);
    }
  }

  /** Runs a membership change alone: one at a time on this node, on the leader only. */
  async #exclusive<T>(
    timeoutMs: number | undefined,
    change: (deadline: number) => Promise<T>,
  ): Promise<T> {
    this.#requireLeader();
    if (this.#changing) {
      throw new AdminError("change_in_progress", "another membership change is under way");
    }
    this.#changing = true;
    try {
      const deadline = performance.now() + (timeoutMs ?? this.#config.adminTimeoutMs);
      // A new leader commits its blank entry first (the core refuses a change until then).
      const term = this.#state.term;
      await this.#watch("committing an entry of the leader's term", remaining(deadline), () =>
        this.#leading(term) && termAt(this.#state.log, this.#state.commitIndex) === term
          ? true
          : undefined,
      );
      return await change(deadline);
    } finally {
      this.#changing = false;
    }
  }

  /** The active configuration, which must be committed and not joint. */
  #stableMembership(): Membership {
    const s = this.#state;
    const active = activeConfig(s.configs);
    if (active.membership.outgoing !== undefined || active.index > s.commitIndex) {
      throw new AdminError("change_in_progress", "the latest configuration is not committed yet");
    }
    return active.membership;
  }

  /** Proposes `target` and resolves once it (as C_new, after a joint phase) is committed. */
  async #changeTo(target: Membership, deadline: number): Promise<MembershipChangeResult> {
    const term = this.#state.term;
    const { index } = await this.#adminRequest((requestId) => ({
      type: "changeMembership",
      requestId,
      membership: target,
    }));
    this.#log("info", "membership change", { index, voters: target.voters.join(",") });
    return this.#watch("the membership change", remaining(deadline), () => {
      const s = this.#state;
      const active = activeConfig(s.configs);
      const { membership } = active;
      if (
        active.index >= index &&
        active.index <= s.commitIndex &&
        membership.outgoing === undefined &&
        sameSet(membership.voters, target.voters)
      ) {
        return { index: active.index, membership };
      }
      this.#leading(term);
      return undefined;
    });
  }

  /** Resolves once every one of `ids` is within `maxLag` of the leader's last index. */
  #caughtUp(ids: readonly NodeId[], maxLag = DEFAULT_MAX_LAG, deadline: number): Promise<true> {
    const term = this.#state.term;
    return this.#watch(`${ids.join(", ")} catching up`, remaining(deadline), () => {
      this.#leading(term);
      const s = this.#state;
      // match ≥ 1: the member has answered at least once (every log starts with a config entry).
      const wanted = Math.max(1, s.log.lastIndex - maxLag);
      return ids.every((id) => (s.progress.get(id)?.match ?? 0) >= wanted) ? true : undefined;
    });
  }

  /** True while this node leads in `term`; throws `leadership_lost` otherwise. */
  #leading(term: number): true {
    if (this.#state.role !== "leader" || this.#state.term !== term) {
      throw new AdminError("leadership_lost", "this node stopped leading; the outcome is unknown");
    }
    return true;
  }

  #requireLeader(): void {
    let failure: Error | null = null;
    if (!this.#checkRunning((error) => (failure = error))) throw failure;
    if (this.#state.role !== "leader") throw this.#notLeader();
  }

  /** Steps an admin input and resolves with the core's acceptance. */
  #adminRequest(
    input: (requestId: number) => Input,
  ): Promise<{ requestId: number; index: number }> {
    return new Promise((resolve, reject) => {
      if (!this.#checkRunning(reject)) return;
      const requestId = this.#nextRequestId++;
      this.#admin.set(requestId, { resolve, reject });
      this.#enqueue({ input: input(requestId) });
    });
  }

  #adminRejection(reason: AdminRejection, leaderId: NodeId | null): Error {
    if (reason === "not_leader") {
      return new NotLeaderError(leaderId, leaderId ? this.#addressOf(leaderId) : null);
    }
    const messages: Record<Exclude<AdminRejection, "not_leader">, string> = {
      change_in_progress: "another membership change is under way",
      invalid_membership: "the configuration is not valid",
      transfer_in_progress: "a leadership transfer is under way",
      unknown_target: "the target is not a voter of the configuration",
    };
    return new AdminError(reason, messages[reason]);
  }

  /**
   * Resolves with `check()`'s first value other than undefined, checked now and after every
   * step; rejects with what `check` throws, when the node stops, or with `timeout`.
   */
  #watch<T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        this.#watchers.delete(run);
      };
      const run = () => {
        if (this.#stopped) {
          finish();
          reject(this.#fatal ?? new ShutdownError("the node has shut down"));
          return;
        }
        let value: T | undefined;
        try {
          value = check();
        } catch (error) {
          finish();
          reject(asError(error));
          return;
        }
        if (value !== undefined) {
          finish();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new AdminError("timeout", `${what} did not complete within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#watchers.add(run);
      run();
    });
  }

  /** Stops timers, rejects pending requests with ShutdownError and resolves when quiet. */
  async shutdown(): Promise<void> {
    this.#stop(null);
    await this.#quiet();
  }

  /**
   * RPC entry point for transports: steps an incoming request and resolves with the answer (see
   * RpcHandler). Rejects before `start()`, after the node stopped (ShutdownError, FatalError),
   * and for a message addressed to another node.
   */
  handle(message: RequestMessage): Promise<ResponseMessage | null> {
    return new Promise((resolve, reject) => {
      if (!this.#checkRunning(reject)) return;
      if (message.to !== this.id) {
        reject(new Error(`message for ${message.to} delivered to ${this.id}`));
        return;
      }
      this.#enqueue({
        input: { type: "message", message },
        reply: (response) => resolve(response as ResponseMessage | null),
      });
    });
  }

  /**
   * Takes a snapshot of what the state machine has applied so far (§7) and resolves with its
   * index once it is durable and the log is purged up to it, less snapshotTrailingEntries.
   * Works on any member. Resolves with the current snapshot's index when nothing was applied
   * since it (0: nothing to snapshot). Rejects without a snapshotStore, with AdminError
   * `timeout` (default config.adminTimeoutMs), ShutdownError or FatalError.
   */
  triggerSnapshot(options: { timeoutMs?: number } = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      if (!this.#checkRunning(reject)) return;
      if (!this.#snapshots) {
        reject(new Error("snapshots are off: give Raft a snapshotStore"));
        return;
      }
      const requestId = this.#nextRequestId++;
      const timeoutMs = options.timeoutMs ?? this.#config.adminTimeoutMs;
      this.#triggers.set(requestId, (index) => {
        if (index === 0) {
          resolve(0);
          return;
        }
        // Done once the snapshot is durable and the log purged behind it.
        const trailing = this.#config.snapshotTrailingEntries;
        this.#watch("the snapshot", timeoutMs, () => {
          const { snapshotIndex } = this.#state.log;
          return snapshotIndex >= index && this.#purgedIndex >= snapshotIndex - trailing
            ? index
            : undefined;
        }).then(resolve, reject);
      });
      this.#enqueue({ input: { type: "triggerSnapshot", requestId } });
    });
  }
  /** triggerSnapshot requests in the core, answered by snapshotTriggered. */
  readonly #triggers = new Map<number, (index: number) => void>();

  /**
   * RPC entry point for a snapshot chunk from the leader (see RpcHandler): written aside
   * durably, answered with the bytes held; the last one is answered once the install is
   * durable. Rejects on a node without a snapshotStore, and for a chunk addressed elsewhere.
   */
  handleSnapshotChunk(chunk: SnapshotChunk): Promise<SnapshotChunkResponse> {
    return new Promise((resolve, reject) => {
      if (!this.#checkRunning(reject)) return;
      if (!this.#receiver) {
        reject(new Error(`${this.id} takes no snapshots (it has no snapshotStore)`));
        return;
      }
      const { snapshot, offset, data } = chunk;
      if (snapshot.to !== this.id) {
        reject(new Error(`snapshot chunk for ${snapshot.to} delivered to ${this.id}`));
        return;
      }
      if (!Number.isSafeInteger(offset) || offset < 0 || !(data instanceof Uint8Array)) {
        reject(new RangeError("snapshot chunk: offset must be a non-negative integer, data bytes"));
        return;
      }
      this.#receiver.handle(chunk).then(resolve, reject);
    });
  }

  /** The driver seen by the snapshot streams. */
  #transferHost(store: SnapshotStore): TransferHost {
    return {
      id: this.id,
      store,
      network: this.#network,
      slot: this.#slot,
      chunkBytes: this.#config.snapshotChunkBytes,
      window: SNAPSHOT_WINDOW,
      rpcTimeoutMs: this.#config.rpcTimeoutMs,
      installTimeoutMs: this.#config.snapshotInstallTimeoutMs,
      retryMinMs: this.#config.heartbeatIntervalMs,
      retryMaxMs: this.#config.electionTimeoutMaxMs,
      maxAttempts: SNAPSHOT_MAX_ATTEMPTS,
      term: () => this.#state.term,
      role: () => this.#state.role,
      stopped: () => this.#stopped,
      addressOf: (peer) => this.#addressOf(peer),
      step: (input) => {
        if (!this.#stopped) this.#enqueue({ input });
      },
      stepMessage: (message) =>
        new Promise((resolve) => {
          if (this.#stopped) resolve(null);
          else this.#enqueue({ input: { type: "message", message }, reply: resolve });
        }),
      fail: (what, error) => this.#stop(new FatalError(what, { cause: error })),
      debug: (message, fields) => this.#log("debug", message, fields),
    };
  }

  /** The core's current state (read-only; for tests, metrics and debugging). */
  get state(): RaftState {
    return this.#state;
  }

  // -------------------------------------------------------------------------------------------
  // The loop: inputs → step → effects.

  #enqueue(queued: QueuedInput): void {
    this.#queue.push(queued);
    this.#scheduleDrain();
  }

  readonly #drainBound = () => this.#drain();

  #scheduleDrain(): void {
    if (this.#drainScheduled || this.#stopped) return;
    this.#drainScheduled = true;
    resolved.then(this.#drainBound);
  }

  readonly #requestsBound = () => {
    this.#requestsScheduled = false;
    if (this.#proposals.length > 0 || this.#reads.length > 0) this.#drain();
  };

  /**
   * Writes and reads wait for a macrotask, so that those of every request that arrived in this
   * turn of the event loop (each HTTP request runs its own callback, and microtasks run after
   * each) become one propose, one append and one AppendEntries per follower, not one each.
   * Messages and timers still step on a microtask; a drain they cause takes the writes and
   * reads gathered so far.
   */
  #scheduleRequests(): void {
    if (this.#requestsScheduled || this.#stopped) return;
    this.#requestsScheduled = true;
    nextMacrotask(this.#requestsBound);
  }

  #drain(): void {
    this.#drainScheduled = false;
    if (this.#stopped) return;
    const queue = this.#queue;
    this.#queue = [];
    // Every write and read of this turn becomes one input: one append, one confirmation round.
    if (this.#proposals.length > 0) {
      const requestId = this.#nextRequestId++;
      this.#proposing.set(requestId, this.#proposals);
      queue.push({
        input: { type: "propose", requestId, commands: this.#proposals.map((p) => p.data) },
      });
      this.#proposals = [];
    }
    if (this.#reads.length > 0) {
      const requestId = this.#nextRequestId++;
      this.#reading.set(requestId, this.#reads);
      queue.push({ input: { type: "readIndex", requestId } });
      this.#reads = [];
    }
    const effects: Effect[] = [];
    const replies: { effect: Effect | null; reply: Reply }[] = [];
    try {
      for (const { input, reply } of queue) {
        const result = step(this.#state, input);
        this.#state = result.state;
        const start = effects.length;
        for (const effect of result.effects) effects.push(effect);
        if (reply && input.type === "message") {
          replies.push({ effect: findReply(effects, start, input.message), reply });
        }
      }
    } catch (error) {
      // A broken invariant: stop rather than act on a state that may violate safety.
      for (const queued of queue) queued.reply?.(null);
      this.#stop(asError(error));
      return;
    }
    this.#execute(effects, replies);
    if (this.#config.leaseReads) this.#renewLease();
    if (this.#pendingWriteCount > 0 && this.#state.role !== "leader") this.#failIfRemoved();
    this.#publishMetrics();
    if (this.#watchers.size > 0) for (const watcher of [...this.#watchers]) watcher();
  }

  /**
   * A leader that a committed C_new removed steps down and hears from no leader again: its
   * writes above the commit index would wait forever. They fail with RemovedError (outcome
   * unknown: the new leader may have them); committed ones still apply here.
   */
  #failIfRemoved(): void {
    const s = this.#state;
    const active = activeConfig(s.configs);
    if (active.index > s.commitIndex || allMembers(active.membership).includes(this.id)) return;
    const error = new RemovedError(
      `${this.id} was removed from the cluster before the write committed; its outcome is unknown`,
    );
    const queue = this.#acceptedBatches;
    while (queue.length > this.#acceptedHead) {
      const tail = queue[queue.length - 1] as AcceptedBatch;
      const cut = Math.max(0, s.commitIndex + 1 - tail.firstIndex);
      if (cut >= tail.writes.length) break;
      const lost = tail.writes.splice(cut);
      this.#pendingWriteCount -= lost.length;
      for (const w of lost) w.reject(error);
      if (tail.writes.length === 0) queue.pop();
      else break;
    }
  }

  #execute(
    effects: readonly Effect[],
    replies: readonly { effect: Effect | null; reply: Reply }[],
  ): void {
    const replyOf = new Map<Effect, Reply>();
    for (const { effect, reply } of replies) {
      if (effect) replyOf.set(effect, reply);
      else reply(null);
    }
    const outbox = new Map<NodeId, Message[]>();
    const armed = new Map<TimerName, Extract<Effect, { type: "armTimer" }> | null>();
    for (const effect of effects) {
      switch (effect.type) {
        case "saveHardState":
        case "truncateLog":
        case "appendLog":
          this.#batch.add(effect);
          this.#issuedSeq++;
          break;
        case "send": {
          const reply = replyOf.get(effect);
          if (effect.message.type === "heartbeat" && this.#config.leaseReads) {
            const { round } = effect.message;
            if (!this.#roundSentAt.has(round)) this.#roundSentAt.set(round, performance.now());
          }
          if (effect.afterPersist && this.#issuedSeq > this.#durableSeq) {
            this.#held.push({ waitSeq: this.#issuedSeq, message: effect.message, reply });
          } else if (reply) {
            reply(effect.message);
          } else if (effect.message.type !== "installSnapshotResponse") {
            queueMessage(outbox, effect.message);
          }
          break;
        }
        case "apply":
          this.#machineOps.push({ kind: "apply", entries: effect.entries as Entry[] });
          break;
        case "armTimer":
          armed.set(effect.timer, effect);
          break;
        case "cancelTimer":
          armed.set(effect.timer, null);
          break;
        case "loadEntries":
          this.#loadEntries(effect.peer, effect.fromIndex, effect.toIndex);
          break;
        case "proposalAccepted":
          this.#accepted(effect.requestId, effect.firstIndex, effect.term);
          break;
        case "proposalRejected":
          this.#rejectProposal(
            effect.requestId,
            effect.reason === "transferring"
              ? new TransferInProgressError(effect.leaderId)
              : this.#notLeader(),
          );
          break;
        case "adminAccepted": {
          const pending = this.#admin.get(effect.requestId);
          this.#admin.delete(effect.requestId);
          pending?.resolve({ requestId: effect.requestId, index: effect.index });
          break;
        }
        case "adminRejected": {
          const pending = this.#admin.get(effect.requestId);
          this.#admin.delete(effect.requestId);
          pending?.reject(this.#adminRejection(effect.reason, effect.leaderId));
          break;
        }
        case "transferAborted":
          this.#log("info", "leadership transfer aborted", { to: effect.to });
          this.#abortedTransfers.add(effect.requestId);
          break;
        case "readIndexReady":
          this.#readConfirmed(effect.requestId, effect.index);
          break;
        case "readIndexRejected":
          this.#rejectReads(effect.requestId, this.#notLeader());
          break;
        case "initializeRejected":
          for (const w of this.#initializeWaiters.splice(0))
            w.reject(new Error(`initialize: ${effect.reason}`));
          break;
        case "roleChanged":
          this.#log("info", "role changed", { leader: effect.leaderId });
          break;
        case "buildSnapshot": {
          const { index, term, membership } = effect;
          this.#machineOps.push({ kind: "build", meta: { index, term, membership } });
          break;
        }
        case "snapshotTriggered": {
          const answer = this.#triggers.get(effect.requestId);
          this.#triggers.delete(effect.requestId);
          answer?.(effect.index);
          break;
        }
        case "purgeLog":
          this.#sealBatch();
          this.#storageOps.push({
            kind: "purge",
            upToIndex: effect.upToIndex,
            seq: ++this.#issuedSeq,
          });
          break;
        case "sendSnapshot":
          this.#senders?.start(effect.peer, effect.index, effect.term);
          break;
        case "cancelSnapshot":
          this.#senders?.cancel(effect.peer);
          break;
        case "installSnapshot":
          this.#scheduleInstall(effect);
          break;
        default:
          assertNever(effect);
      }
    }
    for (const w of this.#initializeWaiters.splice(0)) w.resolve();
    for (const [timer, effect] of armed) this.#setTimer(timer, effect);
    for (const [peer, messages] of outbox)
      for (const m of messages) this.#send(peer, m as RequestMessage);
    this.#flushWrites();
    this.#flushApplies();
  }

  readonly #due: Record<TimerName, number> = { election: 0, heartbeat: 0 };
  readonly #generation: Record<TimerName, number> = { election: 0, heartbeat: 0 };
  readonly #nodeDue: Record<TimerName, number> = { election: 0, heartbeat: 0 };

  /** Lazy re-arming: a later deadline only moves #due; an early wake-up sleeps again. */
  #setTimer(timer: TimerName, effect: Extract<Effect, { type: "armTimer" }> | null): void {
    if (!effect) {
      clearTimeout(this.#timers[timer]);
      this.#timers[timer] = undefined;
      return;
    }
    const due = performance.now() + effect.afterMs;
    this.#due[timer] = due;
    this.#generation[timer] = effect.generation;
    if (this.#timers[timer] !== undefined && this.#nodeDue[timer] <= due) return;
    clearTimeout(this.#timers[timer]);
    this.#arm(timer, effect.afterMs);
  }

  #arm(timer: TimerName, afterMs: number): void {
    this.#nodeDue[timer] = performance.now() + afterMs;
    this.#timers[timer] = setTimeout(() => {
      this.#timers[timer] = undefined;
      const left = this.#due[timer] - performance.now();
      if (left > 1) {
        this.#arm(timer, left);
        return;
      }
      this.#enqueue({ input: { type: "timeout", timer, generation: this.#generation[timer] } });
    }, afterMs);
  }

  #send(peer: NodeId, message: RequestMessage): void {
    const address = this.#addressOf(peer) ?? "";
    this.#network.send(peer, address, message, this.#config.rpcTimeoutMs).then(
      (response) => {
        if (response && !this.#stopped)
          this.#enqueue({ input: { type: "message", message: response } });
      },
      (error: unknown) => {
        if (this.#stopped) return;
        this.#log("debug", "peer unreachable", { peer, error: String(error) });
        this.#enqueue({ input: { type: "unreachable", peer } });
      },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Storage.

  /** Ends the collecting batch: a purge or an install goes after it, not into it. */
  #sealBatch(): void {
    if (this.#batch.empty) return;
    this.#storageOps.push({ kind: "write", batch: this.#batch, seq: this.#issuedSeq });
    this.#batch = new WriteBatch();
  }

  /** Runs the next storage step; the batch collects meanwhile (group commit). */
  #flushWrites(): void {
    if (this.#writing || this.#stopped) return;
    if (this.#storageOps.length === 0) this.#sealBatch();
    const op = this.#storageOps.shift();
    if (!op) return;
    this.#writing = this.#runStorage(op).then(
      () => {
        this.#writing = null;
        if (this.#stopped) return;
        this.#durableSeq = op.seq;
        if (op.kind === "write") {
          const { truncateFrom } = op.batch;
          if (truncateFrom !== undefined) {
            this.#storedLastIndex = Math.min(this.#storedLastIndex, truncateFrom - 1);
          }
          const last = op.batch.entries[op.batch.entries.length - 1];
          if (last) {
            this.#storedLastIndex = last.index;
            const { index, term } = last;
            this.#enqueue({ input: { type: "persisted", index, term, epoch: op.batch.epoch } });
          }
        } else if (op.kind === "install") {
          const { index, term } = op.job.effect;
          this.#enqueue({ input: { type: "snapshotInstalled", index, term } });
        } else {
          // The log's first index moved: metrics and triggerSnapshot waiters see it now.
          this.#publishMetrics();
          if (this.#watchers.size > 0) for (const watcher of [...this.#watchers]) watcher();
        }
        this.#releaseHeld();
        this.#flushWrites();
      },
      (error: unknown) => {
        this.#writing = null;
        if (op.kind === "install") op.job.finish();
        const what = op.kind === "install" ? "snapshot install failed" : "log store write failed";
        this.#stop(error instanceof FatalError ? error : new FatalError(what, { cause: error }));
      },
    );
  }

  /** Not async: a log write costs no extra turn of the microtask queue. */
  #runStorage(op: StorageOp): Promise<void> {
    switch (op.kind) {
      case "write":
        return this.#store.write(op.batch.toWrite());
      case "purge":
        return this.#store.purge(op.upToIndex).then(() => {
          this.#purgedIndex = Math.max(this.#purgedIndex, op.upToIndex);
        });
      case "install":
        return this.#install(op.job);
    }
  }

  /** Queues an install in both sequences: storage (here) and the state machine's. */
  #scheduleInstall(effect: Extract<Effect, { type: "installSnapshot" }>): void {
    const received = this.#receiver?.take(effect.index, effect.term) ?? null;
    if (!received) {
      // Only a whole snapshot held aside is ever stepped: a driver bug if not.
      this.#stop(new FatalError(`install of snapshot ${effect.index}: no snapshot held aside`));
      return;
    }
    let reachMachine = () => {};
    let finish = () => {};
    const machineTurn = new Promise<void>((resolve) => {
      reachMachine = resolve;
    });
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const job: InstallJob = { effect, received, machineTurn, reachMachine, done, finish };
    this.#machineOps.push({ kind: "install", job });
    this.#sealBatch();
    this.#storageOps.push({ kind: "install", job, seq: ++this.#issuedSeq });
  }

  /**
   * Installs a leader's snapshot (docs/core.md rule 10) once every earlier write is durable and
   * every earlier entry applied: commit the copy aside (the atomic point: a crash before leaves
   * the previous state, after it start() finishes the install), restore the state machine from
   * it, then make the log follow it.
   */
  async #install(job: InstallJob): Promise<void> {
    const { effect, received } = job;
    try {
      await job.machineTurn;
      if (this.#stopped) return;
      await received.writer.commit();
      try {
        await restoreFrom(this.#snapshots as SnapshotStore, this.#machine, received.meta);
      } catch (error) {
        throw new FatalError("state machine restore failed", { cause: error });
      }
      if (effect.discardLog) {
        await this.#store.reset(effect.index, effect.term);
        this.#purgedIndex = effect.index;
        this.#storedLastIndex = effect.index;
      } else {
        await this.#store.purge(effect.index);
        this.#purgedIndex = Math.max(this.#purgedIndex, effect.index);
      }
      this.#lastApplied = effect.index;
      this.#log("info", "snapshot installed", { index: effect.index, term: effect.term });
    } finally {
      job.finish();
    }
  }

  /** Messages that waited for durability leave in the order they were emitted. */
  #releaseHeld(): void {
    let released = 0;
    const outbox = new Map<NodeId, Message[]>();
    for (const held of this.#held) {
      if (held.waitSeq > this.#durableSeq) break;
      released++;
      if (held.reply) held.reply(held.message as ResponseMessage);
      else queueMessage(outbox, held.message);
    }
    if (released > 0) this.#held = this.#held.slice(released);
    for (const [peer, messages] of outbox)
      for (const m of messages) this.#send(peer, m as RequestMessage);
  }

  /**
   * Reads entries for a lagging follower. Below the purge point the answer comes back short
   * (docs/core.md rule 8): the entries still held, or none, and the core sends the snapshot.
   * It stops at the last durable entry: the ones after it may still be on their way to the
   * store (the leader appends in parallel), and the core holds them in memory.
   */
  #loadEntries(peer: NodeId, fromIndex: number, toIndex: number): void {
    const from = Math.max(fromIndex, this.#purgedIndex + 1);
    const to = Math.min(toIndex, this.#storedLastIndex);
    const read = from > to ? Promise.resolve([]) : this.#store.entries(from, to);
    read.then(
      (entries) => this.#enqueue({ input: { type: "entriesLoaded", peer, entries } }),
      (error: unknown) => {
        if (this.#stopped) return;
        // A purge finished while the read ran: read what is left.
        if (from <= this.#purgedIndex) this.#loadEntries(peer, fromIndex, toIndex);
        else this.#stop(new FatalError("log store read failed", { cause: error }));
      },
    );
  }

  // -------------------------------------------------------------------------------------------
  // The state machine.

  /** Runs the state machine's next step: merged applies, a build's capture, or an install. */
  #flushApplies(): void {
    if (this.#applying || this.#machineOps.length === 0 || this.#stopped) return;
    const op = this.#machineOps[0] as MachineOp;
    if (op.kind === "build") {
      this.#machineOps.shift();
      this.#applying = this.#capture(op.meta);
      return;
    }
    if (op.kind === "install") {
      this.#machineOps.shift();
      op.job.reachMachine();
      this.#applying = op.job.done.then(() => {
        this.#applying = null;
        this.#flushApplies();
      });
      return;
    }
    let count = 0;
    while (this.#machineOps[count]?.kind === "apply") count++;
    const ops = this.#machineOps.splice(0, count) as Extract<MachineOp, { kind: "apply" }>[];
    const entries =
      ops.length === 1 ? (ops[0] as { entries: Entry[] }).entries : ops.flatMap((o) => o.entries);
    this.#applying = (async () => {
      let responses: ApplyResponse[];
      try {
        responses = await this.#machine.apply(entries);
        if (responses.length !== entries.length) {
          throw new Error(
            `state machine returned ${responses.length} responses for ${entries.length} entries`,
          );
        }
      } catch (error) {
        // A non-deterministic failure: replicas may have diverged, so this node must stop.
        this.#applying = null;
        this.#stop(new FatalError("state machine failed", { cause: error }));
        return;
      }
      this.#applying = null;
      if (this.#stopped) return;
      this.#applied(entries, responses);
      this.#flushApplies();
    })();
  }

  /**
   * A build's turn in the state machine's sequence: the state machine captures its state as of
   * the build's index (every earlier apply is done, no later one started), then applies go on
   * while the capture streams into the SnapshotStore.
   */
  async #capture(meta: SnapshotMeta): Promise<void> {
    let source: AsyncIterable<Uint8Array>;
    try {
      const snapshot = this.#machine.snapshot as NonNullable<StateMachine["snapshot"]>;
      source = await snapshot.call(this.#machine);
    } catch (error) {
      this.#applying = null;
      this.#stop(new FatalError("state machine snapshot failed", { cause: error }));
      return;
    }
    this.#applying = null;
    const previous = this.#building ?? Promise.resolve();
    this.#building = previous.then(() => this.#build(meta, source));
    this.#flushApplies();
  }

  /** Streams a captured state into the SnapshotStore, commits it, then steps snapshotBuilt. */
  async #build(meta: SnapshotMeta, source: AsyncIterable<Uint8Array>): Promise<void> {
    const store = this.#snapshots as SnapshotStore;
    const release = await this.#slot.acquire();
    try {
      if (this.#stopped) return;
      // An install overtook this build: its snapshot is newer. The core only needs the report.
      if (this.#state.log.snapshotIndex < meta.index) {
        const writer = await this.#slot.beginFresh(store, meta);
        // Writes of snapshotChunkBytes: one store transaction each, not one per small piece.
        const buffer = new Uint8Array(this.#config.snapshotChunkBytes);
        let filled = 0;
        const iterator = source[Symbol.asyncIterator]();
        for (;;) {
          let next: IteratorResult<Uint8Array>;
          try {
            next = await iterator.next();
          } catch (error) {
            throw new FatalError("state machine snapshot failed", { cause: error });
          }
          if (this.#stopped) {
            await iterator.return?.();
            return;
          }
          if (next.done) break;
          let data = next.value;
          while (data.length > 0) {
            const take = Math.min(data.length, buffer.length - filled);
            buffer.set(data.subarray(0, take), filled);
            filled += take;
            data = data.subarray(take);
            if (filled === buffer.length) {
              await writer.write(buffer);
              filled = 0;
            }
          }
        }
        if (filled > 0) await writer.write(buffer.subarray(0, filled));
        if (this.#stopped) return;
        await writer.commit();
        this.#log("info", "snapshot built", { index: meta.index, bytes: writer.offset });
      }
      this.#enqueue({ input: { type: "snapshotBuilt", index: meta.index, term: meta.term } });
    } catch (error) {
      const fatal = error instanceof FatalError ? error : null;
      this.#stop(fatal ?? new FatalError("snapshot store failed", { cause: error }));
    } finally {
      release();
    }
  }

  #applied(entries: readonly Entry[], responses: readonly ApplyResponse[]): void {
    const last = entries[entries.length - 1] as Entry;
    this.#lastApplied = last.index;
    // Before the writes resolve: a caller then sees metrics.lastApplied >= its write's index.
    this.#publishMetrics();
    const queue = this.#acceptedBatches;
    let head = this.#acceptedHead;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      let batch = queue[head];
      while (batch && entry.index >= batch.firstIndex + batch.writes.length) batch = queue[++head];
      if (!batch || entry.index < batch.firstIndex) continue;
      const pending = batch.writes[entry.index - batch.firstIndex] as PendingWrite;
      if (entry.index === batch.firstIndex + batch.writes.length - 1) head++;
      this.#pendingWriteCount--;
      const response = responses[i] as ApplyResponse;
      if (batch.term !== entry.term) {
        pending.reject(
          new LeadershipLostError(`entry ${entry.index} was replaced by a newer leader`),
        );
      } else if (response instanceof ApplyFailure) {
        pending.reject(response);
      } else {
        pending.resolve({ index: entry.index, response });
      }
    }
    if (head === queue.length) {
      this.#acceptedBatches = [];
      this.#acceptedHead = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.#acceptedBatches = queue.slice(head);
      this.#acceptedHead = 0;
    } else {
      this.#acceptedHead = head;
    }
    this.#enqueue({ input: { type: "applied", index: last.index } });
    this.#resolveReadsUpTo(last.index);
  }

  // -------------------------------------------------------------------------------------------
  // Requests.

  #accepted(requestId: number, firstIndex: number, term: number): void {
    const writes = this.#proposing.get(requestId);
    if (!writes) return;
    this.#proposing.delete(requestId);
    // Writes a new leader's entries replaced can no longer be applied with their term.
    const queue = this.#acceptedBatches;
    while (queue.length > this.#acceptedHead) {
      const tail = queue[queue.length - 1] as AcceptedBatch;
      const end = tail.firstIndex + tail.writes.length;
      if (end <= firstIndex) break;
      const cut = Math.max(0, firstIndex - tail.firstIndex);
      const lost = tail.writes.splice(cut);
      this.#pendingWriteCount -= lost.length;
      for (const w of lost) w.reject(new LeadershipLostError("entry replaced by a newer leader"));
      if (tail.writes.length === 0) queue.pop();
      else break;
    }
    queue.push({ firstIndex, term, writes });
  }

  #rejectProposal(requestId: number, error: Error): void {
    const writes = this.#proposing.get(requestId) ?? [];
    this.#proposing.delete(requestId);
    this.#pendingWriteCount -= writes.length;
    for (const write of writes) write.reject(error);
  }

  #readConfirmed(requestId: number, index: number): void {
    const reads = this.#reading.get(requestId) ?? [];
    this.#reading.delete(requestId);
    for (const read of reads) {
      read.index = index;
      this.#readsWaitingApply.push(read);
    }
    this.#resolveReadsUpTo(this.#lastApplied);
  }

  #resolveReadsUpTo(applied: number): void {
    if (this.#readsWaitingApply.length === 0) return;
    const waiting: PendingRead[] = [];
    for (const read of this.#readsWaitingApply) {
      if (read.index <= applied) {
        clearTimeout(read.timer);
        read.resolve();
      } else {
        waiting.push(read);
      }
    }
    this.#readsWaitingApply = waiting;
  }

  #rejectReads(requestId: number, error: Error): void {
    for (const read of this.#reading.get(requestId) ?? []) {
      clearTimeout(read.timer);
      read.reject(error);
    }
    this.#reading.delete(requestId);
  }

  #dropRead(read: PendingRead): void {
    this.#reads = this.#reads.filter((r) => r !== read);
    this.#readsWaitingApply = this.#readsWaitingApply.filter((r) => r !== read);
    for (const [id, reads] of this.#reading) {
      if (reads.includes(read))
        this.#reading.set(
          id,
          reads.filter((r) => r !== read),
        );
    }
  }

  #notLeader(): NotLeaderError {
    const leaderId = this.#state.leaderId;
    return new NotLeaderError(leaderId, leaderId ? this.#addressOf(leaderId) : null);
  }

  /** A member's address, from the newest configuration that names it (a node being removed
   * is still replicated to until the configuration without it commits). */
  #addressOf(id: NodeId): string | null {
    const { configs } = this.#state;
    for (let i = configs.length - 1; i >= 0; i--) {
      const address = configs[i]?.membership.addresses[id];
      if (address !== undefined) return address;
    }
    return null;
  }

  #checkRunning(reject: (error: Error) => void): boolean {
    if (!this.#stopped && this.#loaded) return true;
    if (!this.#loaded) reject(new Error("the node has not been started"));
    else reject(this.#fatal ?? new ShutdownError("the node has shut down"));
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Stopping.

  /** Stops the node: no further steps, messages or acknowledgements. */
  #stop(fatal: Error | null): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#fatal = fatal;
    if (fatal)
      this.#log("error", "node stopped", { error: String(fatal), cause: String(fatal.cause) });
    for (const timer of Object.values(this.#timers)) clearTimeout(timer);
    const error = fatal ?? new ShutdownError("the node has shut down");
    const writes = [
      ...this.#proposals,
      ...[...this.#proposing.values()].flat(),
      ...this.#acceptedBatches.slice(this.#acceptedHead).flatMap((b) => b.writes),
    ];
    const reads = [
      ...this.#reads,
      ...[...this.#reading.values()].flat(),
      ...this.#readsWaitingApply,
    ];
    this.#proposals = [];
    this.#proposing.clear();
    this.#acceptedBatches = [];
    this.#acceptedHead = 0;
    this.#pendingWriteCount = 0;
    this.#reads = [];
    this.#reading.clear();
    this.#readsWaitingApply = [];
    for (const write of writes) write.reject(error);
    for (const read of reads) {
      clearTimeout(read.timer);
      read.reject(error);
    }
    for (const held of this.#held) held.reply?.(null);
    this.#held = [];
    for (const queued of this.#queue) queued.reply?.(null);
    this.#queue = [];
    const admin = [...this.#admin.values()];
    this.#admin.clear();
    for (const pending of admin) pending.reject(error);
    const triggers = [...this.#triggers.values()];
    this.#triggers.clear();
    // A trigger's answer then waits on a watcher, which the node's stop rejects.
    for (const answer of triggers) answer(Number.MAX_SAFE_INTEGER);
    this.#senders?.cancelAll();
    // An install waiting for its turn in the state machine's queue ends without running.
    for (const op of this.#machineOps) if (op.kind === "install") op.job.reachMachine();
    this.#machineOps = [];
    this.#storageOps = [];
    this.#publishMetrics();
    for (const watcher of [...this.#watchers]) watcher();
    this.#closed(fatal);
  }

  async #quiet(): Promise<void> {
    await Promise.allSettled([
      this.#writing,
      this.#applying,
      this.#building,
      this.#senders?.idle(),
    ]);
  }

  // -------------------------------------------------------------------------------------------
  // Metrics and logging.

  #publishMetrics(): void {
    this.#metricsHub.update(this.#snapshotMetrics());
  }

  #snapshotMetrics(): RaftMetrics {
    const s = this.#state;
    const replication: Record<NodeId, ReplicationMetrics> = {};
    for (const [id, pr] of s.progress) {
      replication[id] = { matchIndex: pr.match, lag: s.log.lastIndex - pr.match };
    }
    return {
      id: this.id,
      role: s.role,
      term: s.term,
      leaderId: s.leaderId,
      lastLogIndex: s.log.lastIndex,
      commitIndex: s.commitIndex,
      lastApplied: this.#lastApplied,
      snapshotIndex: s.log.snapshotIndex,
      snapshotTerm: s.log.snapshotTerm,
      firstLogIndex: this.#purgedIndex + 1,
      membership: activeConfig(s.configs).membership,
      replication,
      stopped: this.#stopped,
      error: this.#fatal,
    };
  }

  #log(level: LogLevel, message: string, fields: LogFields): void {
    this.#logger.log(level, message, {
      node: this.id,
      role: this.#state.role,
      term: this.#state.term,
      ...fields,
    });
  }
}

/** The answer the core gave to `request`, among the effects from `start` on. */
function findReply(effects: readonly Effect[], start: number, request: Message): Effect | null {
  const type = responseTypeOf[request.type as RequestMessage["type"]];
  if (!type) return null;
  for (let i = start; i < effects.length; i++) {
    const effect = effects[i] as Effect;
    if (
      effect.type === "send" &&
      effect.message.to === request.from &&
      effect.message.type === type
    ) {
      return effect;
    }
  }
  return null;
}

/**
 * Queues a request for its peer, merging an AppendEntries that continues the previous one into
 * it: one message per peer per batch. The follower's single answer acknowledges both.
 */
function queueMessage(outbox: Map<NodeId, Message[]>, message: Message): void {
  let messages = outbox.get(message.to);
  if (!messages) {
    messages = [];
    outbox.set(message.to, messages);
  }
  const last = messages[messages.length - 1];
  if (
    last?.type === "appendEntries" &&
    message.type === "appendEntries" &&
    last.term === message.term &&
    last.prevLogIndex + last.entries.length === message.prevLogIndex
  ) {
    messages[messages.length - 1] = {
      ...last,
      entries: [...last.entries, ...message.entries],
      leaderCommit: Math.max(last.leaderCommit, message.leaderCommit),
    };
    return;
  }
  messages.push(message);
}

function isIdList(
  voters: readonly NodeId[] | Readonly<Record<NodeId, string>>,
): voters is readonly NodeId[] {
  return Array.isArray(voters);
}

function sameSet(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

/** Milliseconds left until `deadline` (a performance.now() time), at least 0. */
function remaining(deadline: number): number {
  return Math.max(0, deadline - performance.now());
}

/** Separates the driver's settings (the keys of defaultDriverConfig, when defined) from the core's. */
function splitConfig(config: RaftOptionsConfig): {
  driver: Partial<DriverConfig>;
  core: Partial<RaftConfig>;
} {
  const driver: Record<string, unknown> = {};
  const core: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (!(key in defaultDriverConfig)) core[key] = value;
    else if (value !== undefined) driver[key] = value;
  }
  return { driver: driver as Partial<DriverConfig>, core: core as Partial<RaftConfig> };
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function assertNever(effect: never): never {
  throw new Error(`unhandled effect ${JSON.stringify(effect)}`);
}
