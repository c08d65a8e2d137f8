/** Log replication, leader side (§5.3): flow-controlled AppendEntries, acknowledgements, commit. */
import { type Ctx, commitTo, membership, sendAsLeader, setProgress } from "./context.ts";
import { entryAt, entryBytes, slice, termAt } from "./log.ts";
import { advanceMembership } from "./membership-change.ts";
import {
  acknowledge,
  canSend,
  heartbeatAnswered,
  type Progress,
  probeFrom,
  sent,
} from "./progress.ts";
import { committedIndex } from "./quorum.ts";
import { confirmReads, startWaitingReads } from "./read-index.ts";
import { maybeSendTimeoutNow } from "./transfer.ts";
import type { AppendEntriesResponse, Entry, HeartbeatResponse, NodeId } from "./types.ts";

export function broadcastAppend(c: Ctx): void {
  for (const peer of c.s.progress.keys()) sendAppend(c, peer);
}

/** Sends as many AppendEntries to `peer` as flow control allows (pipelining in replicate). */
export function sendAppend(c: Ctx, peer: NodeId): void {
  for (;;) {
    const pr = c.s.progress.get(peer);
    if (!pr || !canSend(pr, c.s.config.maxInflight)) return;
    const { log } = c.s;
    if (pr.state === "replicate" && pr.next > log.lastIndex) return;
    const prevIndex = pr.next - 1;
    if (prevIndex < log.baseIndex) {
      requestEntries(c, peer, pr);
      return;
    }
    const last = batchEnd(c, pr.next, log.lastIndex, (i) => entryAt(log, i) as Entry);
    const entries = last >= pr.next ? slice(log, pr.next, last) : [];
    transmit(c, peer, pr, prevIndex, termAt(log, prevIndex) as number, entries);
    if (pr.state === "probe") return;
  }
}

/** The last index of a batch starting at `from`, bounded by entries and bytes (at least one). */
function batchEnd(c: Ctx, from: number, to: number, entryOf: (index: number) => Entry): number {
  const { maxBatchEntries, maxBatchBytes } = c.s.config;
  const end = Math.min(to, from + maxBatchEntries - 1);
  let bytes = 0;
  for (let i = from; i <= end; i++) {
    bytes += entryBytes(entryOf(i));
    if (bytes > maxBatchBytes && i > from) return i - 1;
  }
  return end;
}

/** Sends AppendEntries to `peer` and records it in flow control. */
function transmit(
  c: Ctx,
  peer: NodeId,
  pr: Progress,
  prevLogIndex: number,
  prevLogTerm: number,
  entries: readonly Entry[],
): void {
  sendAppendEntries(c, peer, prevLogIndex, prevLogTerm, entries);
  setProgress(c, peer, sent(pr, prevLogIndex + entries.length));
}

function sendAppendEntries(
  c: Ctx,
  to: NodeId,
  prevLogIndex: number,
  prevLogTerm: number,
  entries: readonly Entry[],
): void {
  const { term, id: from, commitIndex: leaderCommit } = c.s;
  const type = "appendEntries";
  sendAsLeader(c, { type, term, from, to, prevLogIndex, prevLogTerm, entries, leaderCommit });
}

/** The entries `peer` needs left the in-memory window: ask the driver to read them. */
function requestEntries(c: Ctx, peer: NodeId, pr: Progress): void {
  const { log } = c.s;
  const prevIndex = pr.next - 1;
  if (prevIndex < log.snapshotIndex) {
    // Compacted away: only a snapshot can catch this follower up.
    setProgress(c, peer, { ...pr, state: "snapshot" });
    return;
  }
  const fromIndex = Math.max(prevIndex, log.snapshotIndex + 1);
  const toIndex = Math.min(log.lastIndex, prevIndex + c.s.config.maxBatchEntries);
  if (toIndex < fromIndex) return;
  c.effects.push({ type: "loadEntries", peer, fromIndex, toIndex });
  setProgress(c, peer, { ...pr, loading: true });
}

/** The driver read entries for `peer` from storage: send them if they are still what it needs. */
export function handleEntriesLoaded(c: Ctx, peer: NodeId, loaded: readonly Entry[]): void {
  const pr = c.s.progress.get(peer);
  if (c.s.role !== "leader" || !pr || !pr.loading) return;
  const ready = { ...pr, loading: false };
  setProgress(c, peer, ready);
  const prevIndex = pr.next - 1;
  const first = loaded[0];
  let prevTerm = termAt(c.s.log, prevIndex);
  let entries = loaded;
  if (first && first.index === prevIndex) {
    prevTerm = first.term;
    entries = loaded.slice(1);
  }
  const usable =
    prevTerm !== undefined &&
    entries.length > 0 &&
    (entries[0] as Entry).index === pr.next &&
    canSend(ready, c.s.config.maxInflight);
  if (usable) {
    const last = batchEnd(
      c,
      pr.next,
      pr.next + entries.length - 1,
      (i) => entries[i - pr.next] as Entry,
    );
    transmit(c, peer, ready, prevIndex, prevTerm as number, entries.slice(0, last - pr.next + 1));
  }
  sendAppend(c, peer);
}

export function handleAppendResponse(c: Ctx, m: AppendEntriesResponse): void {
  const pr = c.s.progress.get(m.from);
  if (!pr) return;
  const active = pr.recentActive ? pr : { ...pr, recentActive: true };
  if (m.success) {
    if (m.matchIndex > c.s.log.lastIndex) return; // cannot match entries we never had
    const updated = acknowledge(active, m.matchIndex);
    setProgress(c, m.from, updated ?? active);
    if (!updated) return;
    maybeCommit(c);
    if (c.s.role !== "leader") return; // stepped down: removed by the C_new just committed
    if (c.s.transfer?.to === m.from) maybeSendTimeoutNow(c);
    sendAppend(c, m.from);
    return;
  }
  // A stale rejection: of an index already matched, or of a probe we have moved past.
  const stale =
    m.rejectedIndex <= pr.match || (pr.state === "probe" && m.rejectedIndex !== pr.next - 1);
  if (stale) {
    setProgress(c, m.from, active);
    return;
  }
  setProgress(c, m.from, probeFrom(active, nextFromHint(c, m, pr)));
  sendAppend(c, m.from);
}

/**
 * Where to probe next after a rejection, using the follower's conflict hint so a whole
 * conflicting term is skipped in one round trip (§5.3). Always in (match, rejectedIndex].
 */
function nextFromHint(c: Ctx, m: AppendEntriesResponse, pr: Progress): number {
  const { log } = c.s;
  let next = m.conflictIndex;
  if (m.conflictTerm > 0) {
    for (let i = Math.min(m.rejectedIndex, log.lastIndex); i > log.baseIndex; i--) {
      const term = termAt(log, i) as number;
      if (term === m.conflictTerm) {
        next = i + 1;
        break;
      }
      if (term < m.conflictTerm) break;
    }
  }
  return Math.min(Math.max(next, pr.match + 1), m.rejectedIndex);
}

export function handleHeartbeatResponse(c: Ctx, m: HeartbeatResponse): void {
  const pr = c.s.progress.get(m.from);
  if (!pr) return;
  const answered = heartbeatAnswered(pr, c.s.config.maxInflight, m.round);
  setProgress(c, m.from, answered);
  if (m.round > pr.ackedRound) confirmReads(c);
  if (answered.state === "replicate" && answered.next > c.s.log.lastIndex) {
    if (answered.match < c.s.log.lastIndex) sendTail(c, m.from, answered);
  } else if (answered.match < c.s.log.lastIndex || answered.state === "probe") {
    sendAppend(c, m.from);
  }
}

/**
 * Everything was sent but the follower is still behind: the last batch may have been lost, and
 * with nothing left to send no rejection would ever reveal it. An empty AppendEntries at the end
 * of the log either acknowledges the tail or draws the rejection that restarts probing.
 */
function sendTail(c: Ctx, peer: NodeId, pr: Progress): void {
  const prevLogIndex = pr.next - 1;
  const prevLogTerm = termAt(c.s.log, prevLogIndex);
  if (prevLogTerm !== undefined) sendAppendEntries(c, peer, prevLogIndex, prevLogTerm, []);
}

/** The transport gave up on `peer`: assume batches in flight are lost and probe again. */
export function handleUnreachable(c: Ctx, peer: NodeId): void {
  const pr = c.s.progress.get(peer);
  if (pr && pr.state === "replicate") setProgress(c, peer, probeFrom(pr, pr.match + 1));
}

/** Heartbeats carry the commit index, capped at what each follower is known to hold. */
export function sendHeartbeats(c: Ctx): void {
  for (const [peer, pr] of c.s.progress) {
    sendAsLeader(c, {
      type: "heartbeat",
      term: c.s.term,
      from: c.s.id,
      to: peer,
      leaderCommit: Math.min(c.s.commitIndex, pr.match),
      round: c.s.readRound,
    });
  }
}

/**
 * §5.3/§5.4.2: commit the highest index replicated on a quorum, but only by counting replicas
 * of an entry of the current term. The leader's own entries count once durable (thesis §10.2.1).
 */
export function maybeCommit(c: Ctx): void {
  const index = committedIndex(membership(c), (id) =>
    id === c.s.id ? c.s.persistedIndex : (c.s.progress.get(id)?.match ?? 0),
  );
  if (index <= c.s.commitIndex || index > c.s.log.lastIndex) return;
  if (termAt(c.s.log, index) !== c.s.term) return;
  const firstInTerm = termAt(c.s.log, c.s.commitIndex) !== c.s.term;
  commitTo(c, index);
  if (firstInTerm) startWaitingReads(c);
  advanceMembership(c);
}
