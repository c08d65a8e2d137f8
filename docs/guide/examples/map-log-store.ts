// Your own LogStore: the whole contract on a plain object standing in for a database. A real one
// keeps `Disk` in its database and makes `write`, `purge` and `reset` one transaction each,
// durable (fsynced) before the promise resolves.
import type {
  ConfigEntry,
  Entry,
  HardState,
  LogStore,
  LogWrite,
  StoredState,
} from "../../../mod.ts";

/** The durable data. It outlives a store: a restart opens a new store on the same Disk. */
export interface Disk {
  hardState: HardState;
  /** The log starts after (snapshotIndex, snapshotTerm): what purge and reset removed. */
  snapshotIndex: number;
  snapshotTerm: number;
  /** entries[i] has index snapshotIndex + 1 + i. */
  entries: Entry[];
  /** The last two membership entries purged from the log, oldest first. */
  purgedConfigs: ConfigEntry[];
}

export function emptyDisk(): Disk {
  const hardState = { term: 0, votedFor: null };
  return { hardState, snapshotIndex: 0, snapshotTerm: 0, entries: [], purgedConfigs: [] };
}

const configsOf = (entries: readonly Entry[]): ConfigEntry[] =>
  entries.flatMap((e) =>
    e.kind === "membership" ? [{ index: e.index, membership: e.membership }] : [],
  );

export class MapLogStore implements LogStore {
  #closed = false;
  constructor(readonly disk: Disk = emptyDisk()) {}

  async load(): Promise<StoredState> {
    const d = this.#open();
    const last = d.entries.at(-1);
    return {
      hardState: d.hardState,
      snapshotIndex: d.snapshotIndex,
      snapshotTerm: d.snapshotTerm,
      lastIndex: last?.index ?? d.snapshotIndex,
      lastTerm: last?.term ?? d.snapshotTerm,
      // The last two configurations: if the latest is truncated, the node falls back to the other.
      memberships: [...d.purgedConfigs, ...configsOf(d.entries)].slice(-2),
    };
  }

  async write(batch: LogWrite): Promise<void> {
    const d = this.#open();
    // Validate everything first: a rejected write must change nothing.
    const { hardState, truncateFrom, entries } = batch;
    if (hardState) {
      const { term, votedFor } = d.hardState;
      if (hardState.term < term) throw new Error(`term ${hardState.term} is below ${term}`);
      if (hardState.term === term && votedFor !== null && hardState.votedFor !== votedFor) {
        throw new Error(`the vote of term ${term} is already ${votedFor}`); // §5.2: one vote per term
      }
    }
    const lastIndex = d.snapshotIndex + d.entries.length;
    let keep = d.entries.length; // entries kept before the new ones
    if (truncateFrom !== undefined) {
      if (truncateFrom <= d.snapshotIndex || truncateFrom > lastIndex + 1) {
        throw new Error(
          `truncateFrom ${truncateFrom} is outside ${d.snapshotIndex + 1}..${lastIndex + 1}`,
        );
      }
      keep = truncateFrom - d.snapshotIndex - 1;
    }
    let prev = keep > 0 ? d.entries[keep - 1] : { index: d.snapshotIndex, term: d.snapshotTerm };
    for (const entry of entries) {
      if (entry.index !== prev.index + 1 || entry.term < prev.term) {
        throw new Error(
          `entry ${entry.index} (term ${entry.term}) cannot follow ${prev.index} (term ${prev.term})`,
        );
      }
      prev = entry;
    }
    // Then apply it all (in a database: one transaction, committed before resolving).
    if (hardState) d.hardState = hardState;
    d.entries = [...d.entries.slice(0, keep), ...entries];
  }

  async entries(fromIndex: number, toIndex: number): Promise<Entry[]> {
    const d = this.#open();
    const lastIndex = d.snapshotIndex + d.entries.length;
    if (fromIndex <= d.snapshotIndex || toIndex > lastIndex) {
      throw new Error(
        `entries ${fromIndex}..${toIndex} are outside ${d.snapshotIndex + 1}..${lastIndex}`,
      );
    }
    return d.entries.slice(fromIndex - d.snapshotIndex - 1, Math.max(0, toIndex - d.snapshotIndex));
  }

  async purge(upToIndex: number): Promise<void> {
    const d = this.#open();
    if (upToIndex <= d.snapshotIndex) return; // already gone
    const count = upToIndex - d.snapshotIndex;
    const last = d.entries[count - 1];
    if (last === undefined) throw new Error(`cannot purge up to ${upToIndex}: beyond the log`);
    const purged = d.entries.slice(0, count);
    d.purgedConfigs = [...d.purgedConfigs, ...configsOf(purged)].slice(-2);
    d.entries = d.entries.slice(count);
    d.snapshotIndex = last.index;
    d.snapshotTerm = last.term;
  }

  async reset(index: number, term: number): Promise<void> {
    const d = this.#open();
    if (!Number.isSafeInteger(index) || index < 0 || !Number.isSafeInteger(term) || term < 0) {
      throw new Error(`reset(${index}, ${term}): expected non-negative integers`);
    }
    d.entries = [];
    d.purgedConfigs = []; // the installed snapshot carries the membership
    d.snapshotIndex = index;
    d.snapshotTerm = term;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): Disk {
    if (this.#closed) throw new Error("the store is closed");
    return this.disk;
  }
}
