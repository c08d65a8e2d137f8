/**
 * Raft's safety properties (§5.4, Figure 3) and linearizable reads (thesis §6.4), checked
 * incrementally against global registries that outlive every node: the simulator reports each
 * log change, commit, election, apply and read.
 */
import type { Entry, NodeId } from "../../mod.ts";
import { describeEntry, entryId } from "./payload.ts";

export class SafetyViolation extends Error {
  override name = "SafetyViolation";
  constructor(
    readonly check: string,
    readonly detail: string,
    cause?: unknown,
  ) {
    super(`${check}: ${detail}`, cause === undefined ? undefined : { cause });
  }
}

function fail(check: string, detail: string): never {
  throw new SafetyViolation(check, detail);
}

function named(index: number, term: number, id: number): string {
  const what = id > 0 ? `cmd#${id}` : id === 0 ? "blank" : "membership";
  return `(${index},t${term},${what})`;
}

interface Logged {
  readonly id: number;
  readonly prevTerm: number;
}

/** A dense record of entries by index (slot 0 unused), used for committed and applied entries. */
class EntryTable {
  readonly terms: number[] = [0];
  readonly ids: number[] = [0];

  get last(): number {
    return this.terms.length - 1;
  }

  matches(index: number, entry: Entry | undefined): boolean {
    return (
      entry !== undefined && entry.term === this.terms[index] && entryId(entry) === this.ids[index]
    );
  }

  describe(index: number): string {
    return named(index, this.terms[index] as number, this.ids[index] as number);
  }

  add(entry: Entry): void {
    this.terms.push(entry.term);
    this.ids.push(entryId(entry));
  }
}

export class SafetyChecker {
  /** Election safety: the leader of every term so far. */
  private readonly leaders = new Map<number, NodeId>();
  /** Log matching: for (index, term), what the entry holds and its predecessor's term. */
  private readonly logged: (Map<number, Logged> | undefined)[] = [];
  private readonly committed = new EntryTable();
  /** Earliest term in which each committed index was seen committed. */
  private readonly committedIn: number[] = [0];
  private readonly applied = new EntryTable();
  private readonly appliedAt = new Map<number, number>();
  /** Reads in flight: the highest index committed anywhere when each arrived. */
  private readonly readFloors = new Map<number, number>();

  /** Highest index committed anywhere so far. */
  get commitIndex(): number {
    return this.committed.last;
  }

  /** Whether some state machine applied command `id`. */
  isApplied(id: number): boolean {
    return this.appliedAt.has(id);
  }

  /** `node` appends `entry` to `log` (its log as the effects so far describe it). */
  append(node: NodeId, log: readonly Entry[], entry: Entry): void {
    if (entry.index !== log.length + 1) {
      fail("log", `${node} appends ${describeEntry(entry)} after its last index ${log.length}`);
    }
    const prevTerm = log.length === 0 ? 0 : (log[log.length - 1] as Entry).term;
    if (entry.term < prevTerm) {
      fail("log", `${node} appends ${describeEntry(entry)} after an entry of term ${prevTerm}`);
    }
  }

  /**
   * Log matching: `entry`, which follows an entry of `prevTerm`, became real — durable in
   * `node`'s store or sent in an AppendEntries. (An entry a node appended and lost in a crash
   * before either happened existed nowhere, and a leader that was never durable may win its
   * term again.)
   */
  exists(node: NodeId, entry: Entry, prevTerm: number): void {
    let byTerm = this.logged[entry.index];
    if (!byTerm) {
      byTerm = new Map();
      this.logged[entry.index] = byTerm;
    }
    const id = entryId(entry);
    const seen = byTerm.get(entry.term);
    if (!seen) {
      byTerm.set(entry.term, { id, prevTerm });
    } else if (seen.id !== id || seen.prevTerm !== prevTerm) {
      fail(
        "log matching",
        `${node} holds ${describeEntry(entry)} after an entry of term ${prevTerm}, but another ` +
          `log holds ${named(entry.index, entry.term, seen.id)} after an entry of term ${seen.prevTerm}`,
      );
    }
  }

  /**
   * `node`, in `term` and with commit index `nodeCommit`, removes log[fromIndex..]. An entry
   * committed in a term <= `term` is in the log of this term's leader, so it is never removed.
   */
  truncate(
    node: NodeId,
    log: readonly Entry[],
    fromIndex: number,
    nodeCommit: number,
    term: number,
  ): void {
    if (fromIndex <= nodeCommit) {
      fail(
        "committed entry truncated",
        `${node} truncates from ${fromIndex}, commit ${nodeCommit}`,
      );
    }
    const last = Math.min(log.length, this.committed.last);
    for (let i = fromIndex; i <= last; i++) {
      if (this.committed.matches(i, log[i - 1]) && (this.committedIn[i] as number) <= term) {
        fail(
          "committed entry truncated",
          `${node} (term ${term}) truncates ${this.committed.describe(i)}, committed in term ${this.committedIn[i]}`,
        );
      }
    }
  }

  /** `node`, in `term`, advanced its commit index over fromIndex..toIndex of `log`. */
  commit(
    node: NodeId,
    log: readonly Entry[],
    fromIndex: number,
    toIndex: number,
    term: number,
  ): void {
    if (toIndex > log.length)
      fail("commit", `${node} commits ${toIndex} past its last index ${log.length}`);
    for (let i = fromIndex; i <= toIndex; i++) {
      const entry = log[i - 1] as Entry;
      if (i > this.committed.last) {
        this.committed.add(entry);
        this.committedIn.push(term);
      } else if (!this.committed.matches(i, entry)) {
        fail(
          "committed entry changed",
          `${node} commits ${describeEntry(entry)} but ${this.committed.describe(i)} was committed`,
        );
      } else if (term < (this.committedIn[i] as number)) {
        this.committedIn[i] = term;
      }
    }
  }

  /**
   * Election safety: at most one election won per term, over the whole history. Winning the
   * same term twice (after a restart that lost the self-vote) is as unsafe as two winners.
   */
  elected(node: NodeId, term: number): void {
    const other = this.leaders.get(term);
    if (other === node) fail("election safety", `${node} won the election of term ${term} twice`);
    if (other !== undefined) {
      fail("election safety", `${node} and ${other} are both leaders of term ${term}`);
    }
    this.leaders.set(term, node);
  }

  /**
   * A leader that crashed before its term was durable and before any message of that term
   * left the node was never leader to anyone: it may win that term again.
   */
  unelected(node: NodeId, term: number): void {
    if (this.leaders.get(term) === node) this.leaders.delete(term);
  }

  /** Leader completeness (§5.4.3): a new leader holds every entry committed in older terms. */
  complete(node: NodeId, term: number, log: readonly Entry[]): void {
    for (let i = 1; i <= this.committed.last; i++) {
      if ((this.committedIn[i] as number) < term && !this.committed.matches(i, log[i - 1])) {
        const has = log[i - 1];
        fail(
          "leader completeness",
          `${node} became leader of term ${term} holding ${has ? describeEntry(has) : "nothing"} ` +
            `at index ${i}, but ${this.committed.describe(i)} was committed in term ${this.committedIn[i]}`,
        );
      }
    }
  }

  /** `node`'s state machine, having applied up to `lastApplied`, applies `entry`. */
  apply(node: NodeId, lastApplied: number, entry: Entry): void {
    if (entry.index !== lastApplied + 1) {
      fail("state machine", `${node} applies ${entry.index} after ${lastApplied}`);
    }
    if (entry.index > this.applied.last) {
      this.applied.add(entry);
    } else if (!this.applied.matches(entry.index, entry)) {
      fail(
        "state machine safety",
        `${node} applies ${describeEntry(entry)} but another node applied ${this.applied.describe(entry.index)}`,
      );
    }
    if (entry.kind !== "command") return;
    const id = entryId(entry);
    const at = this.appliedAt.get(id);
    if (at === undefined) this.appliedAt.set(id, entry.index);
    else if (at !== entry.index) {
      fail("state machine safety", `command #${id} applied at ${at} and at ${entry.index}`);
    }
  }

  /**
   * A snapshot's contents (the applied sequence up to its index) must be exactly the prefix of
   * the log that was committed and that every state machine applied (§7): checked when it is
   * built, installed and restored from.
   */
  snapshot(node: NodeId, what: string, index: number, applied: readonly Entry[]): void {
    if (applied.length !== index) {
      fail("snapshot", `${node} ${what} a snapshot at ${index} holding ${applied.length} entries`);
    }
    for (let i = 1; i <= index; i++) {
      const entry = applied[i - 1];
      // (A node's own new commits are recorded after its step: they are checked then.)
      const committed = i > this.committed.last || this.committed.matches(i, entry);
      if (!committed || (i <= this.applied.last && !this.applied.matches(i, entry))) {
        fail(
          "state machine safety",
          `${node} ${what} a snapshot holding ${entry ? describeEntry(entry) : "nothing"} at ${i}, ` +
            `but ${this.committed.describe(i)} was committed`,
        );
      }
      if (i > this.applied.last) this.applied.add(entry as Entry);
    }
  }

  /** A linearizable read arrives: it must see every entry committed anywhere by now. */
  readArrived(requestId: number): void {
    this.readFloors.set(requestId, this.committed.last);
  }

  readRejected(requestId: number): void {
    this.readFloors.delete(requestId);
  }

  /** `node`, with commit index `nodeCommit`, serves a read at `index` (thesis §6.4). */
  readServed(node: NodeId, requestId: number, index: number, nodeCommit: number): void {
    const floor = this.readFloors.get(requestId);
    this.readFloors.delete(requestId);
    if (floor === undefined || index < floor || index > nodeCommit) {
      fail(
        "linearizable read",
        `${node} (commit ${nodeCommit}) serves read #${requestId} at index ${index}, but ` +
          `${floor ?? "?"} was committed when the read arrived`,
      );
    }
  }
}
