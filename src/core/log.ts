/**
 * The core's view of the log: its metadata and a bounded window of recent entries.
 *
 * The window is an immutable value built on a shared, append-only buffer: a log owns the
 * slots [start, lastIndex] of `buffer`, and appending past the end of the buffer cannot change
 * what an older log value sees. Appending to a log that no longer ends where the buffer ends
 * (after a truncation, or to a forked state) copies its window first. Appends are amortized O(1).
 */
import type { Entry } from "./types.ts";

/** The log as the core holds it: metadata plus a window of recent entries (see above). */
export interface RaftLog {
  readonly buffer: Entry[];
  /** Index of buffer[0]. */
  readonly offset: number;
  /** Index and term of the entry just before the window; (0, 0) for an empty log. */
  readonly baseIndex: number;
  readonly baseTerm: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /**
   * Last index covered by the latest durable snapshot (its term is known). Storage may still
   * hold up to snapshotTrailingEntries entries before it, for followers that lag a little.
   */
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
}

/** A log holding `entries`, which follow the entry (prevIndex, prevTerm). */
export function createLog(
  snapshotIndex: number,
  snapshotTerm: number,
  prevIndex: number,
  prevTerm: number,
  entries: readonly Entry[],
): RaftLog {
  entries.forEach((entry, i) => {
    if (entry.index !== prevIndex + 1 + i) throw new Error("log entries must be contiguous");
  });
  if (prevIndex < snapshotIndex) throw new Error("log tail starts before the snapshot");
  const last = entries[entries.length - 1];
  return {
    buffer: entries.slice(),
    offset: prevIndex + 1,
    baseIndex: prevIndex,
    baseTerm: prevTerm,
    lastIndex: last ? last.index : prevIndex,
    lastTerm: last ? last.term : prevTerm,
    snapshotIndex,
    snapshotTerm,
  };
}

export const emptyLog: RaftLog = createLog(0, 0, 0, 0, []);

/** Term of the entry at `index`, or undefined when it is outside the window. */
export function termAt(log: RaftLog, index: number): number | undefined {
  if (index === log.baseIndex) return log.baseTerm;
  if (index > log.baseIndex && index <= log.lastIndex) {
    return (log.buffer[index - log.offset] as Entry).term;
  }
  if (index === 0) return 0;
  if (index === log.snapshotIndex) return log.snapshotTerm;
  return undefined;
}

/** The entry at `index`, or undefined when it is outside the window. */
export function entryAt(log: RaftLog, index: number): Entry | undefined {
  if (index <= log.baseIndex || index > log.lastIndex) return undefined;
  return log.buffer[index - log.offset];
}

/** Entries [from, to] (inclusive); all must be inside the window. */
export function slice(log: RaftLog, from: number, to: number): Entry[] {
  if (from <= log.baseIndex || to > log.lastIndex) {
    throw new Error(`entries ${from}..${to} are outside the window ${log.baseIndex + 1}..`);
  }
  return log.buffer.slice(from - log.offset, to - log.offset + 1);
}

/** Appends entries that directly follow the last entry. */
export function append(log: RaftLog, entries: readonly Entry[]): RaftLog {
  if (entries.length === 0) return log;
  const first = entries[0] as Entry;
  const last = entries[entries.length - 1] as Entry;
  if (first.index !== log.lastIndex + 1) {
    throw new Error(`append at ${first.index} does not follow last index ${log.lastIndex}`);
  }
  let { buffer, offset } = log;
  if (offset + buffer.length !== log.lastIndex + 1) {
    // Someone else owns the slots past our end: take a private copy of the window.
    buffer = buffer.slice(log.baseIndex + 1 - offset, log.lastIndex + 1 - offset);
    offset = log.baseIndex + 1;
  }
  for (const entry of entries) buffer.push(entry);
  return withLog(log, buffer, offset, log.baseIndex, log.baseTerm, last.index, last.term);
}

/** Removes every entry with index >= fromIndex; they must be inside the window. */
export function truncate(log: RaftLog, fromIndex: number): RaftLog {
  if (fromIndex > log.lastIndex) return log;
  const lastTerm = termAt(log, fromIndex - 1);
  if (fromIndex <= log.baseIndex || lastTerm === undefined) {
    throw new Error(`cannot truncate at ${fromIndex}: below the window ${log.baseIndex + 1}`);
  }
  return withLog(log, log.buffer, log.offset, log.baseIndex, log.baseTerm, fromIndex - 1, lastTerm);
}

/** Drops entries up to and including `index` from the window (they stay in storage). */
export function forget(log: RaftLog, index: number): RaftLog {
  if (index <= log.baseIndex) return log;
  const baseTerm = termAt(log, index);
  if (baseTerm === undefined || index > log.lastIndex) return log;
  let { buffer, offset } = log;
  // Reclaim the dead prefix once it dominates the buffer.
  if (index + 1 - offset > 1024 && index + 1 - offset > (log.lastIndex - index) * 2) {
    buffer = buffer.slice(index + 1 - offset, log.lastIndex + 1 - offset);
    offset = index + 1;
  }
  return withLog(log, buffer, offset, index, baseTerm, log.lastIndex, log.lastTerm);
}

/** The same log, covered by a durable snapshot up to `index` (term `term`). */
export function withSnapshot(log: RaftLog, index: number, term: number): RaftLog {
  return { ...log, snapshotIndex: index, snapshotTerm: term };
}

/** (lastLogTerm, lastLogIndex) of a candidate is at least as up to date as ours (§5.4.1). */
export function isUpToDate(log: RaftLog, lastLogTerm: number, lastLogIndex: number): boolean {
  return (
    lastLogTerm > log.lastTerm || (lastLogTerm === log.lastTerm && lastLogIndex >= log.lastIndex)
  );
}

/** Rough payload size of an entry, for batch limits. */
export function entryBytes(entry: Entry): number {
  return entry.kind === "command" ? entry.data.byteLength + 24 : 64;
}

/** A new log value, written out field by field (hot path: see newCtx in context.ts). */
function withLog(
  log: RaftLog,
  buffer: Entry[],
  offset: number,
  baseIndex: number,
  baseTerm: number,
  lastIndex: number,
  lastTerm: number,
): RaftLog {
  return {
    buffer,
    offset,
    baseIndex,
    baseTerm,
    lastIndex,
    lastTerm,
    snapshotIndex: log.snapshotIndex,
    snapshotTerm: log.snapshotTerm,
  };
}
