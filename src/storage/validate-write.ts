/**
 * The rules every LogStore enforces on a write, so stores agree on what is valid and say it in
 * the same words. A store rejects an invalid write whole and stays unchanged.
 */
import type { Entry, HardState } from "../core/types.ts";
import type { LogWrite } from "./log-store.ts";

/** What the rules need to know of a store before the write. */
export interface LogPosition {
  readonly snapshotIndex: number;
  readonly lastIndex: number;
  readonly hardState: HardState;
  /** Term of the entry at `index` (snapshotIndex..lastIndex). */
  termAt(index: number): number;
}

/**
 * Throws a RangeError (or an Error for a changed vote) unless `batch` is valid at `at`; calls
 * `checkEntry` on each entry for store-specific checks. Returns the last term after the write.
 */
export function validateWrite(
  batch: LogWrite,
  at: LogPosition,
  checkEntry?: (entry: Entry) => void,
): number {
  const { truncateFrom, entries, hardState } = batch;
  let last = at.lastIndex;
  if (truncateFrom !== undefined) {
    if (
      !Number.isSafeInteger(truncateFrom) ||
      truncateFrom <= at.snapshotIndex ||
      truncateFrom > last + 1
    ) {
      throw new RangeError(
        `write: truncateFrom ${truncateFrom} outside ${at.snapshotIndex + 1}..${last + 1}`,
      );
    }
    last = truncateFrom - 1;
  }
  let prevTerm = at.termAt(last);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Entry;
    if (entry.index !== last + 1 + i) {
      throw new RangeError(
        `write: entry #${i} has index ${entry.index}, expected ${last + 1 + i} (entries must ` +
          "follow the log without gaps)",
      );
    }
    // Term 0 is allowed: the membership entry that initializes a cluster has it.
    if (!Number.isSafeInteger(entry.term) || entry.term < prevTerm) {
      throw new RangeError(
        `write: entry ${entry.index} has term ${entry.term}, below the term before (${prevTerm})`,
      );
    }
    prevTerm = entry.term;
    checkEntry?.(entry);
  }
  if (hardState !== undefined) {
    const current = at.hardState;
    if (!Number.isSafeInteger(hardState.term) || hardState.term < current.term) {
      throw new RangeError(`write: hard state term ${hardState.term} below ${current.term}`);
    }
    if (
      hardState.term === current.term &&
      current.votedFor !== null &&
      hardState.votedFor !== current.votedFor
    ) {
      throw new Error(
        `write: vote changed from ${current.votedFor} to ${hardState.votedFor} in term ${current.term}`,
      );
    }
  }
  return prevTerm;
}
