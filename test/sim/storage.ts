/**
 * A node's durable store: what survives a crash. Writes reach it only when the simulated disk
 * completes them, in the order the core emitted them.
 */
import type { Effect, Entry, HardState, RestoredState } from "../../mod.ts";
import { SafetyViolation } from "./checks.ts";

export type StorageEffect = Extract<
  Effect,
  { type: "saveHardState" } | { type: "truncateLog" } | { type: "appendLog" }
>;

export class DurableStore {
  hardState: HardState = { term: 0, votedFor: null };
  /** entries[i] holds log index i + 1 (no snapshots yet, so the log starts at 1). */
  readonly entries: Entry[] = [];

  get isEmpty(): boolean {
    return this.entries.length === 0 && this.hardState.term === 0 && !this.hardState.votedFor;
  }

  write(effect: StorageEffect): void {
    switch (effect.type) {
      case "saveHardState":
        this.hardState = effect.hardState;
        return;
      case "truncateLog":
        if (effect.fromIndex < 1) throw new SafetyViolation("storage", "truncate below index 1");
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
    }
  }

  /** Entries fromIndex..toIndex that are durable (a prefix of the range if the log is shorter). */
  read(fromIndex: number, toIndex: number): Entry[] {
    return this.entries.slice(Math.max(fromIndex, 1) - 1, toIndex);
  }

  /** What a restarting node recovers; its state machine starts empty, so appliedIndex is 0. */
  restored(): RestoredState {
    return {
      hardState: this.hardState,
      snapshotIndex: 0,
      snapshotTerm: 0,
      prevIndex: 0,
      prevTerm: 0,
      entries: this.entries.slice(),
      memberships: [],
      appliedIndex: 0,
    };
  }
}
