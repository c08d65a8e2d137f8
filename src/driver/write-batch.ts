/**
 * Merges the storage effects of many steps into one LogWrite, keeping their meaning: truncations
 * and appends in order, the latest hard state. One batch is one transaction in the LogStore.
 */
import type { Effect, Entry, HardState } from "../core/types.ts";
import type { LogWrite } from "../storage/log-store.ts";

export class WriteBatch {
  hardState: HardState | undefined;
  truncateFrom: number | undefined;
  entries: Entry[] = [];
  /** Epoch of the latest append: what `persisted` must echo. */
  epoch = 0;

  get empty(): boolean {
    return (
      this.hardState === undefined && this.truncateFrom === undefined && this.entries.length === 0
    );
  }

  add(effect: Effect): void {
    switch (effect.type) {
      case "saveHardState":
        this.hardState = effect.hardState;
        break;
      case "appendLog":
        for (const entry of effect.entries) this.entries.push(entry);
        this.epoch = effect.epoch;
        break;
      case "truncateLog": {
        const first = this.entries[0]?.index;
        if (first !== undefined && effect.fromIndex >= first) {
          // Only entries of this batch are cut.
          this.entries.length = Math.min(this.entries.length, effect.fromIndex - first);
        } else {
          this.entries = [];
          this.truncateFrom = Math.min(this.truncateFrom ?? effect.fromIndex, effect.fromIndex);
        }
        break;
      }
    }
  }

  toWrite(): LogWrite {
    const write: { hardState?: HardState; truncateFrom?: number; entries: Entry[] } = {
      entries: this.entries,
    };
    if (this.hardState !== undefined) write.hardState = this.hardState;
    if (this.truncateFrom !== undefined) write.truncateFrom = this.truncateFrom;
    return write;
  }
}
