/**
 * The leader's view of one follower, with flow control (after etcd's tracker/):
 * - probe: one AppendEntries in flight until the follower's match is found;
 * - replicate: pipelined, up to maxInflight batches in flight;
 * - snapshot: the follower needs entries that were compacted away: the driver streams it the
 *   snapshot (§7) and no AppendEntries go out until the stream ends.
 * Values are immutable; every change returns a new Progress.
 */
/** Flow-control state of a follower, as described above. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** The leader's replication progress for one follower (see above). */
export interface Progress {
  /** Highest index known to be replicated on the follower (§5.3 matchIndex). */
  readonly match: number;
  /** Next index to send (§5.3 nextIndex). */
  readonly next: number;
  readonly state: ProgressState;
  /** probe: an AppendEntries is in flight and we wait for its answer or a heartbeat. */
  readonly probeSent: boolean;
  /** replicate: last index of each AppendEntries in flight, oldest first. */
  readonly inflight: readonly number[];
  /** Heard from since the last CheckQuorum round. */
  readonly recentActive: boolean;
  /** A loadEntries for this follower is outstanding. */
  readonly loading: boolean;
  /** Highest ReadIndex round the follower answered. */
  readonly ackedRound: number;
  /** snapshot: index of the snapshot being streamed (a sendSnapshot is running); 0 otherwise. */
  readonly pendingSnapshot: number;
}

export function newProgress(next: number): Progress {
  return {
    match: 0,
    next,
    state: "probe",
    probeSent: false,
    inflight: [],
    recentActive: false,
    loading: false,
    ackedRound: 0,
    pendingSnapshot: 0,
  };
}

/** The follower acknowledged `index`; returns undefined if that tells us nothing new. */
export function acknowledge(pr: Progress, index: number): Progress | undefined {
  if (index < pr.match) return undefined;
  if (index === pr.match && pr.state === "replicate") return undefined;
  const old = pr.inflight;
  let k = 0;
  while (k < old.length && (old[k] as number) <= index) k++;
  const inflight = k === 0 ? old : old.slice(k);
  return make(
    index,
    Math.max(pr.next, index + 1),
    "replicate",
    false,
    inflight,
    pr.recentActive,
    pr.loading,
    pr.ackedRound,
    0,
  );
}

/** Falls back to probing from `next` (after a rejection or an unreachable peer). */
export function probeFrom(pr: Progress, next: number): Progress {
  return {
    ...pr,
    state: "probe",
    next: Math.max(next, pr.match + 1),
    probeSent: false,
    inflight: [],
    pendingSnapshot: 0,
  };
}

/** True if flow control lets another AppendEntries go to this follower now. */
export function canSend(pr: Progress, maxInflight: number): boolean {
  if (pr.loading) return false;
  if (pr.state === "probe") return !pr.probeSent;
  if (pr.state === "replicate") return pr.inflight.length < maxInflight;
  return false;
}

/** Records an AppendEntries whose last entry is `lastIndex`. */
export function sent(pr: Progress, lastIndex: number): Progress {
  if (pr.state === "probe") return { ...pr, probeSent: true };
  const inflight = pr.inflight.slice();
  inflight.push(lastIndex);
  return make(
    pr.match,
    lastIndex + 1,
    pr.state,
    pr.probeSent,
    inflight,
    pr.recentActive,
    pr.loading,
    pr.ackedRound,
    pr.pendingSnapshot,
  );
}

/**
 * A heartbeat answer proves the follower is alive: unpause a probe, and free one slot of a full
 * pipeline so a lost batch is rediscovered by the follower's rejection (as etcd does).
 */
export function heartbeatAnswered(pr: Progress, maxInflight: number, round: number): Progress {
  const inflight =
    pr.state === "replicate" && pr.inflight.length >= maxInflight
      ? pr.inflight.slice(1)
      : pr.inflight;
  const ackedRound = Math.max(pr.ackedRound, round);
  const { match, next, state, loading, pendingSnapshot } = pr;
  return make(match, next, state, false, inflight, true, loading, ackedRound, pendingSnapshot);
}

/** A Progress written out field by field: one shape, no spread (hot path). */
function make(
  match: number,
  next: number,
  state: ProgressState,
  probeSent: boolean,
  inflight: readonly number[],
  recentActive: boolean,
  loading: boolean,
  ackedRound: number,
  pendingSnapshot: number,
): Progress {
  return {
    match,
    next,
    state,
    probeSent,
    inflight,
    recentActive,
    loading,
    ackedRound,
    pendingSnapshot,
  };
}
