/** Durable storage of one node's Raft log and hard state. */
import type { ConfigEntry } from "../core/membership.ts";
import type { Entry, HardState } from "../core/types.ts";

/** What a node recovers from its store on start. */
export interface StoredState {
  readonly hardState: HardState;
  /** Last entry covered by a snapshot; (0, 0) without one. The log starts after it. */
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  /** Index and term of the last entry in the log (the snapshot's when the log is empty). */
  readonly lastIndex: number;
  readonly lastTerm: number;
  /**
   * The last two membership entries of the log or the snapshot, oldest first (fewer if there
   * are fewer). At most one configuration is ever uncommitted, so if the latest is truncated
   * away the one before it is the configuration to fall back to.
   */
  readonly memberships: readonly ConfigEntry[];
}

/**
 * One atomic write: set the hard state, delete every entry from `truncateFrom` on, then append
 * `entries` directly after what remains. The driver merges the storage effects of a whole batch
 * into one such write, so a batch costs one transaction (and one fsync).
 */
export interface LogWrite {
  readonly hardState?: HardState;
  readonly truncateFrom?: number;
  readonly entries: readonly Entry[];
}

/**
 * Durable log storage. Every method is async; a rejected promise is a storage failure, and the
 * node stops rather than serve on state it could not persist. When `write` resolves its data
 * must survive a crash (that is what `afterPersist` messages wait for).
 */
export interface LogStore {
  /** Reads what the node needs to restart. A new store has an empty log and term 0. */
  load(): Promise<StoredState>;
  /** Applies one LogWrite atomically and durably. */
  write(batch: LogWrite): Promise<void>;
  /** Entries fromIndex..toIndex inclusive; all must exist. */
  entries(fromIndex: number, toIndex: number): Promise<Entry[]>;
  /** Deletes entries up to and including `upToIndex` (log compaction, after a snapshot). */
  purge(upToIndex: number): Promise<void>;
  /**
   * Deletes the whole log: it then starts after (index, term), like a log purged up to an entry
   * it never held, with no membership entries (a snapshot installed from the leader whose last
   * entry our log lacks or contradicts, §7 "discard the entire log"; the snapshot carries the
   * membership). Atomic and durable when it resolves.
   */
  reset(index: number, term: number): Promise<void>;
  /** Releases resources; the store is not used afterwards. */
  close(): Promise<void>;
}
