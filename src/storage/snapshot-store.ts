/**
 * Durable storage of a node's snapshot (§7, thesis §5): the state machine's state up to some
 * log index, kept as a stream of bytes so it never has to sit whole in memory.
 *
 * A store holds at most one *current* snapshot, plus at most one *pending* one being written
 * aside (a local build, or an install streamed from the leader). A pending snapshot becomes
 * current atomically on `commit`; until then the current one is untouched, and a crash at any
 * point leaves it intact and complete.
 *
 * ## Combining with the LogStore on restart
 *
 * `LogStore.load()` reports the log's purge point as `snapshotIndex`/`snapshotTerm`: the log
 * starts after it. That is not necessarily the snapshot: the log may be purged less far
 * (`snapshotTrailingEntries`) or, after a crash between a snapshot's commit and the purge that
 * follows it, not at all. The driver should therefore:
 *
 * 1. Read `current()` (the snapshot S, or none) and `load()` (the purge point P).
 * 2. Require S.index >= P.index when P.index > 0: entries up to P are gone, so only a snapshot
 *    covering them can restore the state. (Keel purges only after the snapshot is committed, so
 *    this holds unless the files were tampered with.)
 * 3. Report S's index and term as `RestoredState.snapshotIndex/Term` (docs/core.md rule 11),
 *    add S's membership as a configuration entry at S.index, restore the state machine from
 *    `read()`, and replay the log entries after S.index (those at or below it may still be in
 *    the log; they are already in the snapshot).
 * 4. On install (rule 10), commit the snapshot first, then purge or truncate the log: a crash in
 *    between leaves a committed snapshot plus a log that still holds entries it covers, which
 *    step 3 handles.
 */
import type { Membership } from "../core/types.ts";

/** What identifies a snapshot: its last included entry and the configuration in force there. */
export interface SnapshotMeta {
  /** Index of the last entry the snapshot covers. */
  readonly index: number;
  /** Term of that entry. */
  readonly term: number;
  /** The configuration in force at `index`. */
  readonly membership: Membership;
}

/** The current snapshot's metadata and its size in bytes. */
export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly size: number;
}

/**
 * Writes one pending snapshot aside. Each `write` that resolves is durable: after a crash,
 * `SnapshotStore.begin` with the same metadata resumes at `offset`. A write that rejects wrote
 * nothing (offset is unchanged) and may be retried from `offset`.
 *
 * A writer ends with `commit` or `abort`, and is superseded by a later `begin` on the same store
 * (even one with the same metadata): from then on every call rejects.
 */
export interface SnapshotWriter {
  /** The metadata given to `begin`. */
  readonly meta: SnapshotMeta;
  /** Bytes durably written so far: where the next chunk goes. */
  readonly offset: number;
  /**
   * Appends `chunk` at `offset` (the writer's own offset when omitted), durably. A chunk resent
   * after a failure may overlap what was written already: its bytes below the writer's offset
   * are skipped (they are assumed to be the same), so a sender may resend from the last offset
   * it knows to be acknowledged. Rejects with a RangeError when `offset` is beyond the writer's
   * offset (a gap) or not a non-negative integer. The store keeps its own bounded chunk size, so
   * `chunk` may be of any size; it is copied, and may be reused once the promise resolves.
   */
  write(chunk: Uint8Array, offset?: number): Promise<void>;
  /**
   * Makes this snapshot the current one, atomically and durably, and deletes every older
   * snapshot (and any other pending one) with its data. A crash before it resolves leaves either
   * the previous snapshot or this one current, whole in both cases.
   */
  commit(): Promise<void>;
  /** Deletes this pending snapshot's data; the current snapshot is unchanged. */
  abort(): Promise<void>;
}

/**
 * Durable snapshot storage. Every method is async; a rejected promise is a storage failure
 * (the stores say which failures leave them usable).
 */
export interface SnapshotStore {
  /** The current snapshot's metadata and size, or null if none was ever committed. */
  current(): Promise<StoredSnapshot | null>;
  /**
   * The current snapshot's bytes from `fromOffset` (default 0), as chunks of at most the store's
   * chunk size: the whole snapshot is never in memory at once. With `meta`, the iteration
   * rejects unless the current snapshot has that index and term (a sender streaming a snapshot
   * it was asked for). If a newer snapshot is committed while it runs, the iteration rejects
   * instead of yielding bytes of two snapshots.
   */
  read(meta?: SnapshotMeta, fromOffset?: number): AsyncIterable<Uint8Array>;
  /**
   * Starts writing a snapshot aside. If a pending snapshot with the same index, term and
   * membership exists (a crash or a failure interrupted it), the writer resumes it at its durable
   * `offset`; any other pending snapshot is discarded and the writer starts at 0. The current
   * snapshot is unchanged until `commit`.
   */
  begin(meta: SnapshotMeta): Promise<SnapshotWriter>;
  /** Releases resources; the store is not used afterwards. */
  close(): Promise<void>;
}

/** Default largest chunk a store keeps and `read` yields: 64 KiB. */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 64 * 1024;

/** True when `a` and `b` name the same snapshot (index, term and membership). */
export function sameSnapshot(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return (
    a.index === b.index &&
    a.term === b.term &&
    membershipJson(a.membership) === membershipJson(b.membership)
  );
}

/**
 * The membership's own fields as JSON, in a fixed order (`outgoing` only during a joint change,
 * addresses sorted by node id): equal memberships give equal strings.
 */
export function membershipJson(membership: Membership): string {
  const { voters, outgoing, learners, addresses } = membership;
  const sorted: Record<string, string> = {};
  for (const id of Object.keys(addresses).sort()) sorted[id] = addresses[id] as string;
  return JSON.stringify(
    outgoing === undefined
      ? { voters, learners, addresses: sorted }
      : { voters, outgoing, learners, addresses: sorted },
  );
}

/** Throws a RangeError unless `meta` has integer index and term >= 0 and a membership object. */
export function checkSnapshotMeta(meta: SnapshotMeta): void {
  if (
    !Number.isSafeInteger(meta.index) ||
    meta.index < 0 ||
    !Number.isSafeInteger(meta.term) ||
    meta.term < 0 ||
    typeof meta.membership !== "object" ||
    meta.membership === null
  ) {
    throw new RangeError(
      "snapshot: index and term must be non-negative integers, with a membership",
    );
  }
}

/**
 * The part of `chunk` at `offset` that lies at or after `position`: throws a RangeError for a
 * gap (offset beyond position) or an invalid offset.
 */
export function chunkFrom(chunk: Uint8Array, offset: number, position: number): Uint8Array {
  if (!(chunk instanceof Uint8Array))
    throw new TypeError("snapshot write: chunk must be a Uint8Array");
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`snapshot write: offset ${offset} must be a non-negative integer`);
  }
  if (offset > position) {
    throw new RangeError(
      `snapshot write: offset ${offset} is beyond the written ${position} bytes`,
    );
  }
  const skip = position - offset;
  return skip >= chunk.length ? chunk.subarray(chunk.length) : chunk.subarray(skip);
}
