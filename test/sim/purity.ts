/**
 * The core promises that `step` is deterministic and never mutates the state it is given. The
 * simulator steps a sample of states a second time and compares renderings of both results.
 */
import type { Effect, Entry, RaftState, StepResult } from "../../mod.ts";
import { entryId } from "./payload.ts";

/** Entries as (first index, count, last term, last identity): cheap, and enough to differ. */
function entries(list: readonly Entry[]): number[] {
  const last = list[list.length - 1];
  return last ? [list.length, last.index, last.term, entryId(last)] : [0];
}

function renderEffect(e: Effect): unknown {
  switch (e.type) {
    case "appendLog":
    case "apply":
      return [e.type, entries(e.entries)];
    case "send": {
      const m = e.message;
      return m.type === "appendEntries"
        ? [e.afterPersist, { ...m, entries: entries(m.entries) }]
        : [e.afterPersist, m];
    }
    case "proposalAccepted":
    case "proposalRejected":
    case "readIndexReady":
    case "readIndexRejected":
    case "saveHardState":
    case "truncateLog":
    case "armTimer":
    case "cancelTimer":
    case "loadEntries":
    case "roleChanged":
    case "initializeRejected":
      return e;
  }
}

/** The state's scalars, its progress and the end of its log (not the shared buffer). */
function renderState(s: RaftState): unknown {
  const { log } = s;
  const tail = log.lastIndex > log.baseIndex ? log.buffer[log.lastIndex - log.offset] : undefined;
  return [
    s.role,
    s.term,
    s.votedFor,
    s.leaderId,
    s.commitIndex,
    s.persistedIndex,
    s.applyingIndex,
    s.appliedIndex,
    s.random,
    s.timers,
    s.readRound,
    s.pendingReads,
    [...s.votes],
    [...s.progress],
    s.configs.length,
    [log.baseIndex, log.baseTerm, log.lastIndex, log.lastTerm, log.snapshotIndex],
    tail ? entryId(tail) : null,
  ];
}

export function fingerprint(result: StepResult): string {
  return JSON.stringify([renderState(result.state), result.effects.map(renderEffect)]);
}
