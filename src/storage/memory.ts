/**
 * An in-memory LogStore for tests and the in-process benchmark. Nothing survives the process,
 * but the data survives `close()`: a node started again on the same instance (or on a `clone()`)
 * recovers what was written, which is how tests simulate a crash and a restart.
 */
import type { ConfigEntry } from "../core/membership.ts";
import type { Entry, HardState } from "../core/types.ts";
import type { LogStore, LogWrite, StoredState } from "./log-store.ts";
import { validateWrite } from "./validate-write.ts";

/** Options of a {@link MemoryLogStore}. */
export interface MemoryLogStoreOptions {
  /**
   * Simulated disk failure: the first `failAfterWrites` successful writes go through, then every
   * later call (load, write, entries, purge) rejects with an {@link InjectedStorageError}.
   */
  readonly failAfterWrites?: number;
}

/** The error an injected failure rejects with (unless the test supplied its own). */
export class InjectedStorageError extends Error {
  override name = "InjectedStorageError";
}

const initialHardState: HardState = { term: 0, votedFor: null };

/**
 * A LogStore held in memory. Every method resolves on the microtask queue; a `write` is applied
 * atomically when it is called (all of it or, when it is invalid, none of it), so writes take
 * effect in call order.
 *
 * Entries are stored by reference, not copied: like every core value they are immutable.
 *
 * Until snapshot metadata has its own method, `purge(n)` moves the start of the log: `load()`
 * then reports entry n as `snapshotIndex`/`snapshotTerm` (the log starts after it). Membership
 * entries are tracked as they are appended and truncated, so `load()` is O(1); purging never
 * changes the memberships it reports (the last two membership entries not truncated away).
 */
export class MemoryLogStore implements LogStore {
  #hardState: HardState = initialHardState;
  #snapshotIndex = 0;
  #snapshotTerm = 0;
  /** The last two membership entries purged from the log, oldest first. */
  #purgedConfigs: readonly ConfigEntry[] = [];
  /** #log[i] holds index #snapshotIndex + 1 + i. */
  #log: Entry[] = [];
  /** Membership entries of #log, oldest first: appends push, truncations pop, purges remove. */
  #configs: ConfigEntry[] = [];
  #writeCount = 0;
  #entriesWritten = 0;
  #closed = false;
  #failure: Error | null = null;
  #failAfterWrites: number | null = null;
  #failAfterError: Error | null = null;

  /** Creates an empty store (term 0, empty log). Throws a RangeError on a negative `failAfterWrites`. */
  constructor(options: MemoryLogStoreOptions = {}) {
    if (options.failAfterWrites !== undefined) this.failAfterWrites(options.failAfterWrites);
  }

  // -------------------------------------------------------------------------------------------
  // LogStore

  /**
   * Reads what a node needs to restart. Also reopens a closed store (a node restarting on it).
   * Rejects when a failure was injected.
   */
  async load(): Promise<StoredState> {
    this.#checkFailure();
    this.#closed = false;
    return {
      hardState: this.#hardState,
      snapshotIndex: this.#snapshotIndex,
      snapshotTerm: this.#snapshotTerm,
      lastIndex: this.lastIndex,
      lastTerm: this.#lastTerm(),
      memberships: this.#memberships(),
    };
  }

  /**
   * Applies `batch` atomically: truncate from `truncateFrom`, append `entries`, set `hardState`.
   * Rejects, leaving the store unchanged, when the store is closed, a failure was injected, or
   * the write is invalid: `truncateFrom` outside (snapshotIndex, lastIndex + 1]; entries that do
   * not start right after the (truncated) log, are not contiguous, or have a term lower than the
   * entry before them; a hard state whose term goes back or whose vote changes within a term.
   */
  async write(batch: LogWrite): Promise<void> {
    this.#checkUsable("write");
    this.#validate(batch);
    if (this.#failAfterWrites !== null && this.#writeCount >= this.#failAfterWrites) {
      this.#failure = this.#failAfterError ?? new InjectedStorageError("injected storage failure");
      throw this.#failure;
    }
    const { truncateFrom, entries, hardState } = batch;
    if (truncateFrom !== undefined && truncateFrom <= this.lastIndex) {
      this.#log.length = truncateFrom - this.#snapshotIndex - 1;
      const configs = this.#configs;
      while (
        configs.length > 0 &&
        (configs[configs.length - 1] as ConfigEntry).index >= truncateFrom
      ) {
        configs.pop();
      }
    }
    for (const entry of entries) {
      this.#log.push(entry);
      if (entry.kind === "membership") {
        this.#configs.push({ index: entry.index, membership: entry.membership });
      }
    }
    if (hardState !== undefined) {
      this.#hardState = { term: hardState.term, votedFor: hardState.votedFor };
    }
    this.#writeCount++;
    this.#entriesWritten += entries.length;
  }

  /**
   * Entries fromIndex..toIndex inclusive, in order (an empty array when toIndex < fromIndex).
   * Rejects when any of them is not in the log (purged or beyond the last index), when the store
   * is closed, or when a failure was injected.
   */
  async entries(fromIndex: number, toIndex: number): Promise<Entry[]> {
    this.#checkUsable("entries");
    if (!Number.isSafeInteger(fromIndex) || !Number.isSafeInteger(toIndex)) {
      throw new RangeError(`entries(${fromIndex}, ${toIndex}): indexes must be integers`);
    }
    if (toIndex < fromIndex) return [];
    if (fromIndex <= this.#snapshotIndex || toIndex > this.lastIndex) {
      throw new RangeError(
        `entries(${fromIndex}, ${toIndex}): the log holds ${this.#snapshotIndex + 1}..${this.lastIndex}`,
      );
    }
    const offset = this.#snapshotIndex + 1;
    return this.#log.slice(fromIndex - offset, toIndex - offset + 1);
  }

  /**
   * Deletes entries up to and including `upToIndex`; the log then starts after it. A no-op for
   * an index already purged. Rejects when `upToIndex` is beyond the last index (its term would be
   * unknown), when the store is closed, or when a failure was injected.
   */
  async purge(upToIndex: number): Promise<void> {
    this.#checkUsable("purge");
    if (!Number.isSafeInteger(upToIndex)) {
      throw new RangeError(`purge(${upToIndex}): the index must be an integer`);
    }
    if (upToIndex <= this.#snapshotIndex) return;
    if (upToIndex > this.lastIndex) {
      throw new RangeError(`purge(${upToIndex}): beyond the last index ${this.lastIndex}`);
    }
    const count = upToIndex - this.#snapshotIndex;
    this.#snapshotTerm = (this.#log[count - 1] as Entry).term;
    this.#snapshotIndex = upToIndex;
    this.#log = this.#log.slice(count);
    const configs = this.#configs;
    let kept = 0;
    while (kept < configs.length && (configs[kept] as ConfigEntry).index <= upToIndex) kept++;
    if (kept > 0) {
      this.#purgedConfigs = [...this.#purgedConfigs, ...configs.slice(0, kept)].slice(-2);
      this.#configs = configs.slice(kept);
    }
  }

  /** See {@link LogStore.reset}. Rejects when the store is closed or a failure was injected. */
  async reset(index: number, term: number): Promise<void> {
    this.#checkUsable("reset");
    if (!Number.isSafeInteger(index) || index < 0 || !Number.isSafeInteger(term) || term < 0) {
      throw new RangeError(`reset(${index}, ${term}): expected non-negative integers`);
    }
    this.#snapshotIndex = index;
    this.#snapshotTerm = term;
    this.#log = [];
    this.#configs = [];
    this.#purgedConfigs = [];
  }

  /**
   * Marks the store closed: write, entries and purge reject until `load()` reopens it. The data is
   * kept, so a new node can be started on this instance. Never rejects, even after a failure.
   */
  async close(): Promise<void> {
    this.#closed = true;
  }

  // -------------------------------------------------------------------------------------------
  // Tests

  /** Every later call (except `close`) rejects with `error`, until `recover()`. */
  fail(error: Error = new InjectedStorageError("injected storage failure")): void {
    this.#failure = error;
  }

  /**
   * After `writes` more successful writes, the next write and every later call (except `close`)
   * reject with `error`, until `recover()`. Throws a RangeError unless `writes` is a non-negative
   * integer.
   */
  failAfterWrites(writes: number, error?: Error): void {
    if (!Number.isSafeInteger(writes) || writes < 0) {
      throw new RangeError(`failAfterWrites(${writes}): expected a non-negative integer`);
    }
    this.#failAfterWrites = this.#writeCount + writes;
    this.#failAfterError = error ?? null;
  }

  /** Clears an injected failure (a repaired disk): the data written before it is intact. */
  recover(): void {
    this.#failure = null;
    this.#failAfterWrites = null;
    this.#failAfterError = null;
  }

  /**
   * An independent store holding a copy of this one's durable data (not its failure settings):
   * what a crashed node would find on restart, unaffected by late writes of the old instance.
   */
  clone(): MemoryLogStore {
    const copy = new MemoryLogStore();
    copy.#hardState = this.#hardState;
    copy.#snapshotIndex = this.#snapshotIndex;
    copy.#snapshotTerm = this.#snapshotTerm;
    copy.#purgedConfigs = this.#purgedConfigs;
    copy.#log = this.#log.slice();
    copy.#configs = this.#configs.slice();
    return copy;
  }

  /** The current hard state (synchronous, for assertions). */
  get hardState(): HardState {
    return this.#hardState;
  }

  /** Index of the first entry in the log (snapshotIndex + 1, even when the log is empty). */
  get firstIndex(): number {
    return this.#snapshotIndex + 1;
  }

  /** Index of the last entry in the log (the snapshot's when the log is empty). */
  get lastIndex(): number {
    return this.#snapshotIndex + this.#log.length;
  }

  /** Number of successful writes (one per driver batch). */
  get writeCount(): number {
    return this.#writeCount;
  }

  /** Number of entries appended by successful writes, truncated ones included. */
  get entriesWritten(): number {
    return this.#entriesWritten;
  }

  /** True between `close()` and the next `load()`. */
  get closed(): boolean {
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------

  /** The last two membership entries, oldest first; purging never changes them. */
  #memberships(): ConfigEntry[] {
    const configs = this.#configs;
    if (configs.length >= 2) return configs.slice(-2);
    return [...this.#purgedConfigs, ...configs].slice(-2);
  }

  #lastTerm(): number {
    const last = this.#log[this.#log.length - 1];
    return last === undefined ? this.#snapshotTerm : last.term;
  }

  /** Term of the entry at `index`, which must be in snapshotIndex..lastIndex. */
  #termAt(index: number): number {
    if (index === this.#snapshotIndex) return this.#snapshotTerm;
    return (this.#log[index - this.#snapshotIndex - 1] as Entry).term;
  }

  #checkFailure(): void {
    if (this.#failure !== null) throw this.#failure;
  }

  #checkUsable(method: string): void {
    this.#checkFailure();
    if (this.#closed) throw new Error(`MemoryLogStore.${method}: the store is closed`);
  }

  #validate(batch: LogWrite): void {
    validateWrite(batch, {
      snapshotIndex: this.#snapshotIndex,
      lastIndex: this.lastIndex,
      hardState: this.#hardState,
      termAt: (index) => this.#termAt(index),
    });
  }
}
