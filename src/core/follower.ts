/** Log replication, follower side (§5.3). */
import {
  appendToLog,
  type Ctx,
  commitTo,
  resetElectionTimer,
  send,
  truncateLog,
} from "./context.ts";
import { termAt } from "./log.ts";
import type { AppendEntriesRequest, Entry, HeartbeatRequest } from "./types.ts";

/** §5.3 AppendEntries receiver: consistency check, truncate at the first conflict, append. */
export function handleAppendEntries(c: Ctx, m: AppendEntriesRequest): void {
  resetElectionTimer(c);
  let prevIndex = m.prevLogIndex;
  let entries = m.entries;
  for (let i = 0; i < entries.length; i++) {
    if ((entries[i] as Entry).index !== prevIndex + 1 + i) return; // malformed: not contiguous
  }
  if (prevIndex < c.s.commitIndex) {
    // Everything up to our commit index is committed, so it matches the leader's log (§5.4.3):
    // skip it rather than compare terms we may no longer hold in memory.
    entries = entries.slice(Math.min(entries.length, c.s.commitIndex - prevIndex));
    prevIndex = c.s.commitIndex;
  } else if (termAt(c.s.log, prevIndex) !== m.prevLogTerm) {
    reject(c, m);
    return;
  }
  const { log } = c.s;
  let fresh = 0;
  while (fresh < entries.length) {
    const entry = entries[fresh] as Entry;
    if (entry.index > log.lastIndex) break;
    if (termAt(log, entry.index) !== entry.term) {
      truncateLog(c, entry.index); // never below commitIndex: asserted there
      break;
    }
    fresh++;
  }
  appendToLog(c, fresh === 0 ? entries : entries.slice(fresh));
  // The index of the last new entry, not our last index: a stale suffix past it is unverified.
  const lastNew = prevIndex + entries.length;
  commitTo(c, Math.min(m.leaderCommit, lastNew));
  send(c, response(c, m, true, lastNew, 0, 0), true);
}

/** Rejection with a conflict hint: the term at prevLogIndex and the first index of that term. */
function reject(c: Ctx, m: AppendEntriesRequest): void {
  const { log } = c.s;
  if (m.prevLogIndex > log.lastIndex) {
    send(c, response(c, m, false, 0, 0, log.lastIndex + 1), true);
    return;
  }
  const conflictTerm = termAt(log, m.prevLogIndex) as number;
  let conflictIndex = m.prevLogIndex;
  const floor = Math.max(log.baseIndex, c.s.commitIndex);
  while (conflictIndex - 1 > floor && termAt(log, conflictIndex - 1) === conflictTerm)
    conflictIndex--;
  send(c, response(c, m, false, 0, conflictTerm, conflictIndex), true);
}

function response(
  c: Ctx,
  m: AppendEntriesRequest,
  success: boolean,
  matchIndex: number,
  conflictTerm: number,
  conflictIndex: number,
) {
  return {
    type: "appendEntriesResponse" as const,
    term: c.s.term,
    from: c.s.id,
    to: m.from,
    success,
    matchIndex,
    rejectedIndex: m.prevLogIndex,
    conflictTerm,
    conflictIndex,
  };
}

/** The leader caps leaderCommit at our acknowledged match, so it is ours to commit. */
export function handleHeartbeat(c: Ctx, m: HeartbeatRequest): void {
  resetElectionTimer(c);
  commitTo(c, Math.min(m.leaderCommit, c.s.log.lastIndex));
  // Not held for durability: a heartbeat answer promises nothing that a crash could undo.
  const response = { term: c.s.term, from: c.s.id, to: m.from, round: m.round };
  send(c, { type: "heartbeatResponse", ...response }, false);
}
