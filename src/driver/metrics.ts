/** Observable state of a node: a current value, change listeners, and waiting on a condition. */
import type { Membership, NodeId, Role } from "../core/types.ts";
import { TimeoutError } from "./errors.ts";

/** A leader's view of one follower or learner (§5.3). */
export interface ReplicationMetrics {
  /** The highest index known to be replicated on it. */
  readonly matchIndex: number;
  /** Entries the follower is behind the leader's last index. */
  readonly lag: number;
}

/**
 * A node's state as `raft.metrics` publishes it: an immutable value, replaced on every change
 * (compare with `===`). Wait on it with `raft.metrics.waitFor` rather than polling.
 */
export interface RaftMetrics {
  /** This node's id. */
  readonly id: NodeId;
  /** What this node is doing now: `leader`, `follower`, `learner`, or electing (see Role). */
  readonly role: Role;
  /** The current term (§5.1). */
  readonly term: number;
  /** The leader this node knows of in its term, null while there is none (an election). */
  readonly leaderId: NodeId | null;
  /** The last entry in the log (appended, maybe not yet durable or committed). */
  readonly lastLogIndex: number;
  /** The highest entry known to be committed (§5.3). */
  readonly commitIndex: number;
  /** The last entry the state machine applied. */
  readonly lastApplied: number;
  /** The latest snapshot's last included entry ((0, 0) without one). */
  readonly snapshotIndex: number;
  /** The term of that entry. */
  readonly snapshotTerm: number;
  /** The first entry the LogStore holds (snapshotIndex + 1 or lower: trailing entries). */
  readonly firstLogIndex: number;
  /** The latest membership in the log (joint while a change is in progress), committed or not. */
  readonly membership: Membership;
  /** On the leader: every other member's replication progress. Empty elsewhere. */
  readonly replication: Readonly<Record<NodeId, ReplicationMetrics>>;
  /** Set once the node stopped; `error` says why when it was not a shutdown. */
  readonly stopped: boolean;
  readonly error: Error | null;
}

/** Called with the new metrics on every change (see {@link MetricsWatch.subscribe}). */
export type MetricsListener = (metrics: RaftMetrics) => void;

/**
 * A node's metrics (`raft.metrics`): the current value, change listeners, and waiting on a
 * condition, like openraft's metrics watch.
 */
export interface MetricsWatch {
  /** The latest metrics. */
  readonly current: RaftMetrics;
  /**
   * Calls `listener` on every change, synchronously from the driver's loop (it must not throw);
   * returns a function that unsubscribes.
   */
  subscribe(listener: MetricsListener): () => void;
  /**
   * Resolves with the metrics once `predicate` holds (at once if it already does); rejects with
   * a TimeoutError after `timeoutMs` (its message says `message`, default "condition").
   */
  waitFor(
    predicate: (metrics: RaftMetrics) => boolean,
    options: { timeoutMs: number; message?: string },
  ): Promise<RaftMetrics>;
}

/** The driver's side of {@link MetricsWatch}: it publishes with `update`. */
export class MetricsHub implements MetricsWatch {
  #current: RaftMetrics;
  readonly #listeners = new Set<MetricsListener>();

  constructor(initial: RaftMetrics) {
    this.#current = initial;
  }

  get current(): RaftMetrics {
    return this.#current;
  }

  /** Calls `listener` on every change; returns a function that unsubscribes. */
  subscribe(listener: MetricsListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves with the metrics once `predicate` holds (at once if it already does); rejects with
   * a TimeoutError after `timeoutMs`.
   */
  waitFor(
    predicate: (metrics: RaftMetrics) => boolean,
    options: { timeoutMs: number; message?: string },
  ): Promise<RaftMetrics> {
    if (predicate(this.#current)) return Promise.resolve(this.#current);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        const what = options.message ?? "condition";
        reject(
          new TimeoutError(`${what} not met within ${options.timeoutMs} ms on ${this.#current.id}`),
        );
      }, options.timeoutMs);
      const unsubscribe = this.subscribe((metrics) => {
        if (!predicate(metrics)) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(metrics);
      });
    });
  }

  /** Publishes new metrics if anything a listener could observe changed. */
  update(next: RaftMetrics): void {
    if (sameMetrics(this.#current, next)) return;
    this.#current = next;
    for (const listener of [...this.#listeners]) listener(next);
  }
}

function sameMetrics(a: RaftMetrics, b: RaftMetrics): boolean {
  if (
    a.role !== b.role ||
    a.term !== b.term ||
    a.leaderId !== b.leaderId ||
    a.lastLogIndex !== b.lastLogIndex ||
    a.commitIndex !== b.commitIndex ||
    a.lastApplied !== b.lastApplied ||
    a.snapshotIndex !== b.snapshotIndex ||
    a.firstLogIndex !== b.firstLogIndex ||
    a.membership !== b.membership ||
    a.stopped !== b.stopped
  ) {
    return false;
  }
  const ka = Object.keys(a.replication);
  if (ka.length !== Object.keys(b.replication).length) return false;
  return ka.every((id) => a.replication[id]?.matchIndex === b.replication[id]?.matchIndex);
}
