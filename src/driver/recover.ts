/**
 * What a node restarts from: the LogStore and the SnapshotStore combined as
 * src/storage/snapshot-store.ts's header says, and the state machine brought up to the snapshot
 * (docs/core.md rule 11).
 */
import type { RestoredState } from "../core/state.ts";
import type { Entry } from "../core/types.ts";
import type { LogStore, StoredState } from "../storage/log-store.ts";
import type { SnapshotMeta, SnapshotStore } from "../storage/snapshot-store.ts";
import type { StateMachine } from "./state-machine.ts";

export interface Recovered {
  readonly restored: RestoredState;
  /** The LogStore's purge point: the log starts after it. */
  readonly purgedIndex: number;
  /** The log's last index. */
  readonly lastIndex: number;
}

/**
 * Loads both stores; finishes an install that a crash interrupted between the snapshot's commit
 * and the log's change; restores the state machine from the snapshot when it is behind it; and
 * reads the log entries it has not applied. Throws when the stores cannot fit together.
 */
export async function recover(
  store: LogStore,
  snapshots: SnapshotStore | null,
  machine: StateMachine,
): Promise<Recovered> {
  let stored: StoredState = await store.load();
  const snapshot = snapshots ? await snapshots.current() : null;
  let baseIndex = stored.snapshotIndex;
  let baseTerm = stored.snapshotTerm;
  let memberships = stored.memberships;
  if (snapshot) {
    const { meta } = snapshot;
    if (meta.index < stored.snapshotIndex) {
      throw new Error(
        `the log is purged up to ${stored.snapshotIndex}, past the snapshot's ${meta.index}`,
      );
    }
    if (meta.index > stored.snapshotIndex) {
      // The log must follow the snapshot's last entry, or be discarded (§7).
      const held =
        meta.index <= stored.lastIndex
          ? (await store.entries(meta.index, meta.index))[0]?.term
          : undefined;
      if (held !== meta.term) {
        await store.reset(meta.index, meta.term);
        stored = await store.load();
      }
    } else if (stored.snapshotTerm !== meta.term) {
      throw new Error(`the log and the snapshot disagree on the term of ${meta.index}`);
    }
    baseIndex = meta.index;
    baseTerm = meta.term;
    memberships = [
      { index: meta.index, membership: meta.membership },
      ...stored.memberships.filter((m) => m.index > meta.index),
    ];
  }
  let applied = await machine.lastApplied();
  if (snapshot && applied < snapshot.meta.index) {
    await restoreFrom(snapshots as SnapshotStore, machine, snapshot.meta);
    applied = snapshot.meta.index;
  }
  if (applied < baseIndex) {
    throw new Error(
      `the log starts after ${baseIndex}, the state machine applied only ${applied} and no snapshot covers the gap`,
    );
  }
  if (applied > stored.lastIndex) {
    throw new Error(
      `state machine applied ${applied}, past the log's last index ${stored.lastIndex}`,
    );
  }
  // The core needs every entry the state machine has not applied, and the term of the one before.
  let prevIndex = baseIndex;
  let prevTerm = baseTerm;
  let entries: Entry[] = [];
  if (applied > baseIndex) {
    const tail = await store.entries(applied, stored.lastIndex);
    const prev = tail[0] as Entry;
    prevIndex = prev.index;
    prevTerm = prev.term;
    entries = tail.slice(1);
  } else if (stored.lastIndex > baseIndex) {
    entries = await store.entries(baseIndex + 1, stored.lastIndex);
  }
  return {
    restored: {
      hardState: stored.hardState,
      snapshotIndex: baseIndex,
      snapshotTerm: baseTerm,
      prevIndex,
      prevTerm,
      entries,
      memberships,
      appliedIndex: applied,
    },
    purgedIndex: stored.snapshotIndex,
    lastIndex: stored.lastIndex,
  };
}

/** Replaces the state machine's state with the store's current snapshot `meta`. */
export async function restoreFrom(
  snapshots: SnapshotStore,
  machine: StateMachine,
  meta: SnapshotMeta,
): Promise<void> {
  const restore = machine.restore as NonNullable<StateMachine["restore"]>;
  await restore.call(machine, meta, snapshots.read(meta));
}
