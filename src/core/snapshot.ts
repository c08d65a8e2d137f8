/**
 * Snapshots and log compaction (§7, thesis §5): local snapshots by policy or on demand, the
 * purge of the log prefix they cover, and a follower's install of its leader's snapshot. The
 * leader's side (when to stream a snapshot, its outcome) lives in replication.ts.
 */
import {
  buildSnapshot,
  type Ctx,
  installSnapshot,
  maybeBuildSnapshot,
  resetElectionTimer,
  send,
  trimWindow,
} from "./context.ts";
import { forget, withSnapshot } from "./log.ts";
import { restartSnapshotStreams } from "./replication.ts";
import type { InstallSnapshotRequest } from "./types.ts";

/** On demand: snapshot what was handed to the state machine so far (if anything new). */
export function handleTriggerSnapshot(c: Ctx, requestId: number): void {
  buildSnapshot(c);
  const index = c.s.snapshotBuilding || c.s.log.snapshotIndex;
  c.effects.push({ type: "snapshotTriggered", requestId, index });
}

/**
 * The snapshot of `buildSnapshot` is durable: it now covers the log up to `index`, so storage
 * may drop the prefix, keeping snapshotTrailingEntries before it for followers that lag a
 * little (thesis §5.1). The purge never passes the snapshot, which only covers entries that
 * were committed, durable and applied.
 */
export function handleSnapshotBuilt(c: Ctx, index: number, term: number): void {
  if (index === c.s.snapshotBuilding) c.s.snapshotBuilding = 0;
  // An older one (an install overtook it) changes nothing: the driver keeps the newest snapshot.
  if (index > c.s.log.snapshotIndex && index <= c.s.applyingIndex) {
    c.s.log = withSnapshot(c.s.log, index, term);
    const upToIndex = index - c.s.config.snapshotTrailingEntries;
    if (upToIndex > 0) {
      c.effects.push({ type: "purgeLog", upToIndex });
      // Memory follows storage: a follower that needs purged entries is sent the snapshot.
      const forgettable = Math.min(upToIndex, c.s.appliedIndex, c.s.persistedIndex);
      c.s.log = forget(c.s.log, forgettable);
    }
    restartSnapshotStreams(c);
  }
  maybeBuildSnapshot(c);
}

/**
 * InstallSnapshot receiver (§7, thesis §5.3), once the driver holds the whole snapshot. The
 * term was checked and the sender is our leader. A snapshot we already cover (it is committed
 * here) changes nothing; otherwise the log becomes the snapshot plus, if we hold its last
 * entry, the entries after it. The answer waits until the install is durable (afterPersist:
 * the install is a storage effect emitted before it).
 */
export function handleInstallSnapshot(c: Ctx, m: InstallSnapshotRequest): void {
  resetElectionTimer(c);
  const index = m.lastIncludedIndex;
  if (index > c.s.commitIndex) installSnapshot(c, index, m.lastIncludedTerm, m.membership);
  const response = { term: c.s.term, from: c.s.id, to: m.from, success: true, matchIndex: index };
  send(c, { type: "installSnapshotResponse", ...response }, true);
}

/** The state machine was restored from an installed snapshot. */
export function handleSnapshotInstalled(c: Ctx, index: number): void {
  if (index > c.s.appliedIndex && index <= c.s.applyingIndex) {
    c.s.appliedIndex = index;
    trimWindow(c);
  }
}
