/**
 * A tiny synchronous test network for the pure core: it steps nodes, executes their storage
 * effects at once (so every write is durable as soon as it is emitted), answers `persisted`,
 * `applied` and `loadEntries`, delivers messages in FIFO order under a filter the test controls,
 * and fires timers only when the test asks, by the generation they were armed with.
 *
 * Builders for states and logs live here too, so a test reads as a conversation: construct the
 * states (divergent logs through `restored`), feed inputs, assert on effects and states.
 */
import assert from "node:assert/strict";
import {
  createState,
  type Effect,
  type Entry,
  entryAt,
  type HardState,
  type Input,
  type Membership,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftState,
  type RestoredState,
  step,
  type TimerName,
} from "../../mod.ts";
import { deepFreeze, observable } from "./freeze.ts";

// ---------------------------------------------------------------------------------------------
// Builders

export function membershipOf(voters: readonly NodeId[], learners: readonly NodeId[] = []) {
  const addresses: Record<NodeId, string> = {};
  for (const id of [...voters, ...learners]) addresses[id] = `mem://${id}`;
  return { voters, learners, addresses } satisfies Membership;
}

/** Command entries for `terms[0]` at `firstIndex`, `terms[1]` at firstIndex + 1, … */
export function entriesOfTerms(terms: readonly number[], firstIndex = 1): Entry[] {
  return terms.map((term, i) => {
    const index = firstIndex + i;
    return { index, term, kind: "command", data: new TextEncoder().encode(`${index}@${term}`) };
  });
}

export interface RestoreOptions {
  /** currentTerm on disk; defaults to the last log term. */
  readonly term?: number;
  readonly votedFor?: NodeId | null;
  /** The state machine's applied index (also the commit index the node restarts with). */
  readonly appliedIndex?: number;
}

/**
 * What a node of `voters` finds on disk when its log holds entries of `terms` from index 1.
 * The membership is recorded as of index 0 (as if from an initial snapshot), so every log entry
 * is a plain command and logs can be written exactly as in the paper's figures.
 */
export function restoredFrom(
  voters: readonly NodeId[],
  terms: readonly number[],
  options: RestoreOptions = {},
): RestoredState {
  const lastTerm = terms.length > 0 ? (terms[terms.length - 1] as number) : 0;
  return {
    hardState: { term: options.term ?? lastTerm, votedFor: options.votedFor ?? null },
    snapshotIndex: 0,
    snapshotTerm: 0,
    prevIndex: 0,
    prevTerm: 0,
    entries: entriesOfTerms(terms),
    memberships: [{ index: 0, membership: membershipOf(voters) }],
    appliedIndex: options.appliedIndex ?? 0,
  };
}

/** The terms of a node's in-memory log, index 1 first. */
export function logTerms(state: RaftState): number[] {
  const terms: number[] = [];
  for (let i = 1; i <= state.log.lastIndex; i++) {
    const entry = entryAt(state.log, i);
    assert.ok(entry, `${state.id}: entry ${i} is outside the in-memory window`);
    terms.push(entry.term);
  }
  return terms;
}

// ---------------------------------------------------------------------------------------------
// Reading effects

export function sends(effects: readonly Effect[]): Extract<Effect, { type: "send" }>[] {
  return effects.filter((e): e is Extract<Effect, { type: "send" }> => e.type === "send");
}

/** The messages among `effects`, optionally only those of one type. */
export function messages<T extends Message["type"]>(
  effects: readonly Effect[],
  type?: T,
): Extract<Message, { type: T }>[] {
  return sends(effects)
    .map((e) => e.message)
    .filter((m): m is Extract<Message, { type: T }> => type === undefined || m.type === type);
}

export function effectsOfType<T extends Effect["type"]>(
  effects: readonly Effect[],
  type: T,
): Extract<Effect, { type: T }>[] {
  return effects.filter((e): e is Extract<Effect, { type: T }> => e.type === type);
}

/** Steps one state through a sequence of inputs; returns the last state and all effects. */
export function run(state: RaftState, ...inputs: Input[]): { state: RaftState; effects: Effect[] } {
  let current = state;
  const effects: Effect[] = [];
  for (const input of inputs) {
    const result = step(current, input);
    current = result.state;
    effects.push(...result.effects);
  }
  return { state: current, effects };
}

export function msg(message: Message): Input {
  return { type: "message", message };
}

/**
 * `a` wins term 2 of the three-node cluster a, b, c with c's vote; its log is [1, blank 2] and
 * durable. Its first AppendEntries (a probe to each follower) are in flight.
 */
export function electedLeader(config: Partial<RaftConfig> = {}): RaftState {
  const { state } = run(
    createState({
      id: "a",
      config: { preVote: false, ...config },
      restored: restoredFrom(["a", "b", "c"], [1], { term: 1 }),
    }),
    { type: "start" },
    { type: "timeout", timer: "election", generation: 1 },
    msg({
      type: "requestVoteResponse",
      term: 2,
      from: "c",
      to: "a",
      preVote: false,
      granted: true,
    }),
    { type: "persisted", index: 2, term: 2, epoch: 0 },
  );
  assert.equal(state.role, "leader");
  return state;
}

/** `from` acknowledges entries up to `matchIndex` to the leader `a` of term 2. */
export function ack(from: NodeId, matchIndex: number): Input {
  return msg({
    type: "appendEntriesResponse",
    term: 2,
    from,
    to: "a",
    success: true,
    matchIndex,
    rejectedIndex: 0,
    conflictTerm: 0,
    conflictIndex: 0,
  });
}

// ---------------------------------------------------------------------------------------------
// The test network

export interface NodeStorage {
  hardState: HardState;
  /** The durable log, index 1 first (entries up to `purged` are gone from storage). */
  entries: Entry[];
  /** Entries up to here were purged by purgeLog or replaced by an installed snapshot. */
  purged: number;
  /** The latest durable snapshot: metadata and the state machine's applied entries. */
  snapshot: TestSnapshot | null;
}

export interface TestSnapshot {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
  readonly applied: readonly Entry[];
}

export interface StepRecord {
  readonly id: NodeId;
  readonly input: Input;
  readonly effects: readonly Effect[];
}

export interface ClusterOptions {
  readonly config?: Partial<RaftConfig>;
  /** Per-node configuration, merged over `config`. */
  readonly configs?: Readonly<Record<NodeId, Partial<RaftConfig>>>;
  readonly seed?: number;
  /** Per-node persisted state; nodes without one start new (and need `initialize`). */
  readonly restored?: Readonly<Record<NodeId, RestoredState>>;
  /** Deep-freeze every state before it is stepped and check it is unchanged afterwards. */
  readonly guard?: boolean;
}

interface ArmedTimer {
  readonly generation: number;
  readonly afterMs: number;
}

export class Cluster {
  readonly ids: readonly NodeId[];
  /** Which messages reach their destination; checked at delivery. */
  filter: (m: Message) => boolean = () => true;
  /** While true, snapshot streams stay running: installSnapshot messages are held back. */
  holdSnapshots = false;
  readonly heldSnapshots: Message[] = [];
  /** Every step taken, in order. */
  readonly trace: StepRecord[] = [];
  /** Every message handed to the network, delivered or not. */
  readonly sent: Message[] = [];
  readonly dropped: Message[] = [];
  /** Entries each node handed to its state machine during the test, in order. */
  readonly applied = new Map<NodeId, Entry[]>();
  /** The last index each node's state machine applied (from `restored` before the test). */
  private readonly appliedUpTo = new Map<NodeId, number>();
  readonly storage = new Map<NodeId, NodeStorage>();
  private readonly states = new Map<NodeId, RaftState>();
  private readonly timers = new Map<NodeId, Map<TimerName, ArmedTimer>>();
  private readonly queue: Message[] = [];
  /** The snapshot each queued installSnapshot carries (the whole stream, delivered at once). */
  private readonly streams = new WeakMap<Message, TestSnapshot>();
  /** What each node received last, written aside until its core installs it. */
  private readonly incoming = new Map<NodeId, TestSnapshot>();
  private readonly guard: boolean;

  constructor(ids: readonly NodeId[], options: ClusterOptions = {}) {
    this.ids = ids;
    this.guard = options.guard ?? false;
    for (const id of ids) {
      const restored = options.restored?.[id];
      const config = { ...options.config, ...options.configs?.[id] };
      const seed = options.seed;
      this.states.set(
        id,
        createState({
          id,
          config,
          ...(seed === undefined ? {} : { seed }),
          ...(restored ? { restored } : {}),
        }),
      );
      this.storage.set(id, {
        hardState: restored?.hardState ?? { term: 0, votedFor: null },
        entries: restored ? [...restored.entries] : [],
        purged: 0,
        snapshot: null,
      });
      this.applied.set(id, []);
      this.appliedUpTo.set(id, restored?.appliedIndex ?? 0);
      this.timers.set(id, new Map());
    }
  }

  /** A new cluster of `ids`: every node is started and initialized with the same membership. */
  static bootstrap(ids: readonly NodeId[], options: ClusterOptions = {}): Cluster {
    const cluster = new Cluster(ids, options);
    for (const id of ids) {
      cluster.step(id, { type: "start" });
      cluster.step(id, { type: "initialize", membership: membershipOf(ids) });
    }
    return cluster;
  }

  /** A cluster of restored nodes, each started (timers armed). */
  static restore(
    restored: Readonly<Record<NodeId, RestoredState>>,
    options: Omit<ClusterOptions, "restored"> = {},
  ): Cluster {
    const cluster = new Cluster(Object.keys(restored), { ...options, restored });
    for (const id of cluster.ids) cluster.step(id, { type: "start" });
    return cluster;
  }

  state(id: NodeId): RaftState {
    const state = this.states.get(id);
    assert.ok(state, `no node ${id}`);
    return state;
  }

  /** The current leader (asserting there is exactly one in the highest term). */
  leader(): RaftState {
    const leaders = this.ids.map((id) => this.state(id)).filter((s) => s.role === "leader");
    const top = Math.max(...leaders.map((s) => s.term));
    const current = leaders.filter((s) => s.term === top);
    assert.equal(current.length, 1, `expected one leader, got ${current.map((s) => s.id)}`);
    return current[0] as RaftState;
  }

  /** Steps `id` with `input`, executes the effects and answers storage and apply at once. */
  step(id: NodeId, input: Input): readonly Effect[] {
    const before = this.state(id);
    let snapshot: unknown;
    if (this.guard) {
      snapshot = observable(before);
      deepFreeze(before);
    }
    const { state, effects } = step(before, input);
    if (this.guard) assert.deepEqual(observable(before), snapshot, `step mutated ${id}'s state`);
    this.states.set(id, state);
    this.trace.push({ id, input, effects });
    const followUps: Input[] = [];
    for (const effect of effects) this.execute(id, effect, followUps);
    for (const followUp of followUps) this.step(id, followUp);
    return effects;
  }

  private execute(id: NodeId, effect: Effect, followUps: Input[]): void {
    const storage = this.storage.get(id) as NodeStorage;
    const timers = this.timers.get(id) as Map<TimerName, ArmedTimer>;
    switch (effect.type) {
      case "saveHardState":
        storage.hardState = effect.hardState;
        return;
      case "truncateLog":
        storage.entries = storage.entries.filter((e) => e.index < effect.fromIndex);
        return;
      case "appendLog": {
        const first = effect.entries[0] as Entry;
        const last = effect.entries[effect.entries.length - 1] as Entry;
        assert.equal(first.index, storage.entries.length + 1, `${id}: appendLog leaves a gap`);
        storage.entries.push(...effect.entries);
        followUps.push({
          type: "persisted",
          index: last.index,
          term: last.term,
          epoch: effect.epoch,
        });
        return;
      }
      case "send":
        // Storage is synchronous here, so an afterPersist send may leave at once.
        this.sent.push(effect.message);
        this.queue.push(effect.message);
        return;
      case "apply": {
        const last = effect.entries[effect.entries.length - 1] as Entry;
        const upTo = this.appliedUpTo.get(id) as number;
        assert.equal(effect.entries[0]?.index, upTo + 1, `${id}: apply leaves a gap`);
        this.applied.get(id)?.push(...effect.entries);
        this.appliedUpTo.set(id, last.index);
        followUps.push({ type: "applied", index: last.index });
        return;
      }
      case "armTimer":
        timers.set(effect.timer, { generation: effect.generation, afterMs: effect.afterMs });
        return;
      case "cancelTimer":
        timers.delete(effect.timer);
        return;
      case "loadEntries":
        followUps.push({
          type: "entriesLoaded",
          peer: effect.peer,
          entries: storage.entries.slice(
            Math.max(effect.fromIndex, storage.purged + 1) - 1,
            effect.toIndex,
          ),
        });
        return;
      case "buildSnapshot": {
        const { index, term, membership } = effect;
        const applied = (this.applied.get(id) as Entry[]).filter((e) => e.index <= index);
        assert.equal(applied.length, index, `${id}: snapshot of entries it did not apply`);
        storage.snapshot = { index, term, membership, applied };
        followUps.push({ type: "snapshotBuilt", index, term });
        return;
      }
      case "purgeLog":
        assert.ok(effect.upToIndex <= (storage.snapshot?.index ?? 0), `${id}: purge past snapshot`);
        storage.purged = Math.max(storage.purged, effect.upToIndex);
        return;
      case "sendSnapshot": {
        const snap = storage.snapshot;
        assert.ok(snap && snap.index === effect.index, `${id}: no snapshot ${effect.index}`);
        const state = this.state(id);
        const message: Message = {
          type: "installSnapshot",
          term: state.term,
          from: id,
          to: effect.peer,
          lastIncludedIndex: snap.index,
          lastIncludedTerm: snap.term,
          membership: snap.membership,
        };
        this.streams.set(message, snap);
        this.sent.push(message);
        this.queue.push(message);
        return;
      }
      case "cancelSnapshot":
        for (let i = this.queue.length - 1; i >= 0; i--) {
          const m = this.queue[i] as Message;
          if (m.type === "installSnapshot" && m.from === id && m.to === effect.peer) {
            this.queue.splice(i, 1);
          }
        }
        return;
      case "installSnapshot": {
        const snap = this.incoming.get(id);
        assert.ok(snap && snap.index === effect.index, `${id}: installs a snapshot never received`);
        const kept = effect.discardLog ? [] : storage.entries.slice(snap.index);
        storage.entries = [...snap.applied, ...kept];
        storage.purged = snap.index;
        storage.snapshot = snap;
        this.applied.set(id, [...snap.applied]);
        this.appliedUpTo.set(id, snap.index);
        followUps.push({ type: "snapshotInstalled", index: snap.index, term: snap.term });
        return;
      }
      default:
        return;
    }
  }

  /** The timer `id` has armed, if any. */
  armed(id: NodeId, timer: TimerName): ArmedTimer | undefined {
    return this.timers.get(id)?.get(timer);
  }

  /** Fires the timer `id` armed last, with the generation it was armed with. */
  fire(id: NodeId, timer: TimerName): readonly Effect[] {
    const armed = this.armed(id, timer);
    assert.ok(armed, `${id} has no ${timer} timer armed`);
    return this.step(id, { type: "timeout", timer, generation: armed.generation });
  }

  /** Delivers queued messages (and those they cause) until none is left; returns the count. */
  deliver(limit = 100_000): number {
    let count = 0;
    while (this.queue.length > 0) {
      assert.ok(count++ < limit, "the network did not quiesce");
      const m = this.queue.shift() as Message;
      const snap = this.streams.get(m);
      if (snap && this.holdSnapshots) {
        this.heldSnapshots.push(m);
        continue;
      }
      if (!this.filter(m)) {
        this.dropped.push(m);
        if (snap) {
          const report = { peer: m.to, index: snap.index, success: false };
          this.step(m.from, { type: "snapshotSent", ...report });
        }
        continue;
      }
      if (snap) this.incoming.set(m.to, snap);
      this.step(m.to, { type: "message", message: m });
      if (snap)
        this.step(m.from, { type: "snapshotSent", peer: m.to, index: snap.index, success: true });
    }
    return count;
  }

  /** Messages waiting in the network. */
  pending(): readonly Message[] {
    return this.queue;
  }

  /** Lets messages through only within each group (nodes in no group are cut off). */
  partition(...groups: readonly (readonly NodeId[])[]): void {
    const side = new Map<NodeId, number>();
    groups.forEach((group, i) => {
      for (const id of group) side.set(id, i);
    });
    this.filter = (m) => side.has(m.from) && side.get(m.from) === side.get(m.to);
  }

  isolate(id: NodeId): void {
    this.filter = (m) => m.from !== id && m.to !== id;
  }

  heal(): void {
    this.filter = () => true;
  }

  /** Fires `id`'s election timer and delivers until quiet; `id` must come out leader. */
  elect(id: NodeId): RaftState {
    this.fire(id, "election");
    this.deliver();
    const state = this.state(id);
    assert.equal(state.role, "leader", `${id} did not win the election`);
    return state;
  }

  /** Fires the leader's heartbeat timer and delivers until quiet. */
  heartbeat(id: NodeId): void {
    this.fire(id, "heartbeat");
    this.deliver();
  }

  /** The effects of every step taken since trace position `from`, for node `id`. */
  effectsSince(from: number, id?: NodeId): Effect[] {
    return this.trace
      .slice(from)
      .filter((r) => id === undefined || r.id === id)
      .flatMap((r) => r.effects);
  }
}
