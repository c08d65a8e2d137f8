/**
 * Quorum arithmetic, for a plain majority and for a joint configuration (thesis §4.3).
 * Nothing else in the core counts votes or acknowledgements.
 */
import type { Membership, NodeId } from "./types.ts";

/** Outcome of an election so far: won by a quorum, lost (a quorum refused), or still open. */
export type VoteResult = "won" | "lost" | "pending";

/** The highest index that a majority of `voters` has reached; Infinity for no voters. */
export function majorityIndex(voters: readonly NodeId[], indexOf: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  // Insertion sort, descending: clusters are small and this runs on every acknowledgement.
  const indices: number[] = [];
  for (const id of voters) {
    const value = indexOf(id);
    let i = indices.length;
    while (i > 0 && (indices[i - 1] as number) < value) {
      indices[i] = indices[i - 1] as number;
      i--;
    }
    indices[i] = value;
  }
  // With indices sorted descending, the (n/2+1)-th is reached by a majority.
  return indices[n >> 1] as number;
}

/** The outcome of a vote among `voters`; no voters means the vote is won (joint identity). */
export function majorityVote(
  voters: readonly NodeId[],
  voteOf: (id: NodeId) => boolean | undefined,
): VoteResult {
  if (voters.length === 0) return "won";
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = voteOf(id);
    if (vote === true) granted++;
    else if (vote === undefined) missing++;
  }
  const needed = (voters.length >> 1) + 1;
  if (granted >= needed) return "won";
  if (granted + missing >= needed) return "pending";
  return "lost";
}

/** Committed index under `membership`: in a joint configuration, both majorities must agree. */
export function committedIndex(membership: Membership, indexOf: (id: NodeId) => number): number {
  const incoming = majorityIndex(membership.voters, indexOf);
  if (membership.outgoing === undefined) return incoming;
  return Math.min(incoming, majorityIndex(membership.outgoing, indexOf));
}

/** Vote outcome under `membership`: a joint configuration needs both majorities (thesis §4.3). */
export function voteResult(
  membership: Membership,
  voteOf: (id: NodeId) => boolean | undefined,
): VoteResult {
  const incoming = majorityVote(membership.voters, voteOf);
  if (membership.outgoing === undefined) return incoming;
  const outgoing = majorityVote(membership.outgoing, voteOf);
  if (incoming === "won" && outgoing === "won") return "won";
  if (incoming === "lost" || outgoing === "lost") return "lost";
  return "pending";
}
