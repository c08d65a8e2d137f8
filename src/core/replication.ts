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
import type {
  AppendEntriesResponse,
  Entry,
  HeartbeatResponse,
  InstallSnapshotResponse,
  NodeId,
} from "./types.ts";

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

/**
 * The entries `peer` needs left the in-memory window: ask the driver to read them. Below the
 * snapshot, storage may have purged them (it keeps snapshotTrailingEntries at most): the answer
 * tells, and a follower whose entries are gone gets the snapshot (§7).
 */
function requestEntries(c: Ctx, peer: NodeId, pr: Progress): void {
  const { log } = c.s;
  const prevIndex = pr.next - 1;
  // Read the entry at prevIndex too when its term is not known here.
  const fromIndex = termAt(log, prevIndex) === undefined ? prevIndex : prevIndex + 1;
  const toIndex = Math.min(log.lastIndex, prevIndex + c.s.config.maxBatchEntries);
  if (toIndex < fromIndex) return;
  c.effects.push({ type: "loadEntries", peer, fromIndex, toIndex });
  setProgress(c, peer, { ...pr, loading: true });
}

/** `peer` needs entries that only the latest snapshot covers: have the driver stream it (§7). */
function sendSnapshot(c: Ctx, peer: NodeId, pr: Progress): void {
  const { snapshotIndex: index, snapshotTerm: term } = c.s.log;
  setProgress(c, peer, {
    ...pr,
    state: "snapshot",
    probeSent: false,
    inflight: [],
    loading: false,
    pendingSnapshot: index,
  });
  c.effects.push({ type: "sendSnapshot", peer, index, term });
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
  const found =
    prevTerm !== undefined && entries.length > 0 && (entries[0] as Entry).index === pr.next;
  if (!found && prevIndex < c.s.log.snapshotIndex) {
    sendSnapshot(c, peer, ready); // purged from storage: only the snapshot has them
    return;
  }
  if (found && canSend(ready, c.s.config.maxInflight)) {
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
    acknowledged(c, m.from, active, m.matchIndex);
    return;
  }
  // A stale rejection: of an index already matched, or of a probe we have moved past, or of an
  // AppendEntries sent before the snapshot stream under way.
  const stale =
    m.rejectedIndex <= pr.match ||
    (pr.state === "probe" && m.rejectedIndex !== pr.next - 1) ||
    pr.state === "snapshot";
  if (stale) {
    setProgress(c, m.from, active);
    return;
  }
  setProgress(c, m.from, probeFrom(active, nextFromHint(c, m, pr)));
  sendAppend(c, m.from);
}

/**
 * The follower's log matches ours up to `matchIndex`. While a snapshot streams to it, only an
 * acknowledgement of that snapshot (or beyond) ends the stream (§7).
 */
function acknowledged(c: Ctx, peer: NodeId, active: Progress, matchIndex: number): void {
  if (matchIndex > c.s.log.lastIndex) return; // cannot match entries we never had
  if (active.state === "snapshot" && matchIndex < active.pendingSnapshot) {
    setProgress(c, peer, active);
    return;
  }
  const updated = acknowledge(active, matchIndex);
  setProgress(c, peer, updated ?? active);
  if (!updated) return;
  if (active.pendingSnapshot !== 0) c.effects.push({ type: "cancelSnapshot", peer });
  maybeCommit(c);
  if (c.s.role !== "leader") return; // stepped down: removed by the C_new just committed
  if (c.s.transfer?.to === peer) maybeSendTimeoutNow(c);
  sendAppend(c, peer);
}

/** The follower installed a snapshot (durably): its log matches ours up to matchIndex. */
export function handleInstallSnapshotResponse(c: Ctx, m: InstallSnapshotResponse): void {
  const pr = c.s.progress.get(m.from);
  if (!pr) return;
  const active = pr.recentActive ? pr : { ...pr, recentActive: true };
  if (m.success) acknowledged(c, m.from, active, m.matchIndex);
  else setProgress(c, m.from, active);
}

/**
 * The driver's stream of snapshot `index` to `peer` ended. Probe next (like etcd, paused until
 * the follower answers a heartbeat, which gives an install time to finish): after the snapshot
 * on success, from the known match otherwise, which sends the snapshot again if still needed.
 */
export function handleSnapshotSent(c: Ctx, peer: NodeId, index: number, success: boolean): void {
  const pr = c.s.progress.get(peer);
  if (c.s.role !== "leader" || !pr || pr.state !== "snapshot" || pr.pendingSnapshot !== index) {
    return;
  }
  const probe = probeFrom(pr, success ? index + 1 : pr.match + 1);
  setProgress(c, peer, { ...probe, probeSent: true });
}

/** A newer snapshot is durable: streams of an older one restart with it (they are superseded). */
export function restartSnapshotStreams(c: Ctx): void {
  if (c.s.role !== "leader") return;
  for (const [peer, pr] of c.s.progress) {
    if (pr.state === "snapshot" && pr.pendingSnapshot < c.s.log.snapshotIndex) {
      c.effects.push({ type: "cancelSnapshot", peer });
      sendSnapshot(c, peer, pr);
    }
  }
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
