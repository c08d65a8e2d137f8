/**
 * A node's durable store: what survives a crash. Writes reach it only when the simulated disk
 * completes them, in the order the core emitted them.
 */
import type { Effect, Entry, HardState, Membership, RestoredState } from "../../mod.ts";
import { SafetyViolation } from "./checks.ts";

/**
 * A snapshot (§7): its metadata and the state machine's state, which for the simulator's state
 * machine is the sequence of entries it applied, index 1 first.
 */
export interface SimSnapshot {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
  readonly applied: readonly Entry[];
}

export type StorageEffect =
  | Extract<
      Effect,
      | { type: "saveHardState" }
      | { type: "truncateLog" }
      | { type: "appendLog" }
      | { type: "purgeLog" }
    >
  /** An install carries the snapshot the driver received (written aside until now). */
  | (Extract<Effect, { type: "installSnapshot" }> & { readonly snapshot: SimSnapshot });

export class DurableStore {
  hardState: HardState = { term: 0, votedFor: null };
  /**
   * entries[i] holds log index i + 1, the whole log as this node knows it; entries up to
   * `purged` were dropped from storage (they are kept here only as the shadow of the log).
   */
  entries: Entry[] = [];
  /** Entries up to here were purged (covered by the snapshot). */
  purged = 0;
  snapshot: SimSnapshot | null = null;

  get isEmpty(): boolean {
    return (
      this.entries.length === 0 &&
      this.hardState.term === 0 &&
      !this.hardState.votedFor &&
      this.snapshot === null
    );
  }

  write(effect: StorageEffect): void {
    switch (effect.type) {
      case "saveHardState":
        this.hardState = effect.hardState;
        return;
      case "truncateLog":
        if (effect.fromIndex <= this.purged) {
          throw new SafetyViolation(
            "storage",
            `truncate from ${effect.fromIndex}, purged to ${this.purged}`,
          );
        }
        this.entries.length = Math.min(this.entries.length, effect.fromIndex - 1);
        return;
      case "appendLog":
        for (const entry of effect.entries) {
          if (entry.index !== this.entries.length + 1) {
            throw new SafetyViolation(
              "storage",
              `append of index ${entry.index} after durable last index ${this.entries.length}`,
            );
          }
          this.entries.push(entry);
        }
        return;
      case "purgeLog": {
        const covered = this.snapshot?.index ?? 0;
        if (effect.upToIndex > covered) {
          throw new SafetyViolation(
            "purge beyond snapshot",
            `purge up to ${effect.upToIndex}, but the durable snapshot covers ${covered}`,
          );
        }
        this.purged = Math.max(this.purged, effect.upToIndex);
        return;
      }
      case "installSnapshot": {
        // Atomic: the snapshot, the state machine and the log change together (§7).
        const { snapshot } = effect;
        const kept = effect.discardLog ? [] : this.entries.slice(snapshot.index);
        if (!effect.discardLog && this.entries[snapshot.index - 1]?.term !== snapshot.term) {
          throw new SafetyViolation(
            "install",
            `install of ${snapshot.index}/t${snapshot.term} keeps a log that does not hold that entry`,
          );
        }
        this.saveSnapshot(snapshot);
        this.entries = [...snapshot.applied, ...kept];
        this.purged = snapshot.index;
        return;
      }
    }
  }

  /** A built or installed snapshot is durable; an older one never replaces a newer one. */
  saveSnapshot(snapshot: SimSnapshot): void {
    if (!this.snapshot || snapshot.index > this.snapshot.index) this.snapshot = snapshot;
  }

  /** Entries fromIndex..toIndex still in storage (a suffix of the range if purged, a prefix if short). */
  read(fromIndex: number, toIndex: number): Entry[] {
    return this.entries.slice(Math.max(fromIndex, this.purged + 1, 1) - 1, toIndex);
  }

  /**
   * What a restarting node recovers; its state machine is restored from the snapshot (or starts
   * empty), so appliedIndex is the snapshot's index.
   */
  restored(): RestoredState {
    const s = this.snapshot;
    const index = s?.index ?? 0;
    const term = s?.term ?? 0;
    return {
      hardState: this.hardState,
      snapshotIndex: index,
      snapshotTerm: term,
      prevIndex: index,
      prevTerm: term,
      entries: this.entries.slice(index),
      memberships: s ? [{ index, membership: s.membership }] : [],
      appliedIndex: index,
    };
  }
}
