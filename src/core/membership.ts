/**
 * Which configuration a node uses: the latest membership entry in its log, committed or not
 * (thesis §4.1). Entries above the commit index can be truncated, so the core keeps every
 * configuration above the commit index plus the latest committed one, newest last.
 */
import type { Membership, NodeId } from "./types.ts";

/** A configuration and the index of the log entry (or snapshot) that carries it. */
export interface ConfigEntry {
  readonly index: number;
  readonly membership: Membership;
}

export const emptyMembership: Membership = { voters: [], learners: [], addresses: {} };

/** The active configuration. */
export function activeConfig(configs: readonly ConfigEntry[]): ConfigEntry {
  return configs[configs.length - 1] ?? { index: 0, membership: emptyMembership };
}

export function isVoter(membership: Membership, id: NodeId): boolean {
  return membership.voters.includes(id) || (membership.outgoing?.includes(id) ?? false);
}

export function isLearner(membership: Membership, id: NodeId): boolean {
  return membership.learners.includes(id) && !isVoter(membership, id);
}

/** Every voter of the configuration (both halves of a joint one). */
export function allVoters(membership: Membership): NodeId[] {
  const voters = [...membership.voters];
  for (const id of membership.outgoing ?? []) if (!voters.includes(id)) voters.push(id);
  return voters;
}

/** Every member that receives the log. */
export function allMembers(membership: Membership): NodeId[] {
  const members = allVoters(membership);
  for (const id of membership.learners) if (!members.includes(id)) members.push(id);
  return members;
}

/** Drops configurations at or above `fromIndex` (their entries were truncated). */
export function truncateConfigs(configs: readonly ConfigEntry[], fromIndex: number): ConfigEntry[] {
  return configs.filter((c) => c.index < fromIndex);
}

/** Keeps the latest configuration at or below `commitIndex` and all newer ones. */
export function compactConfigs(
  configs: readonly ConfigEntry[],
  commitIndex: number,
): readonly ConfigEntry[] {
  let firstKept = 0;
  for (let i = 0; i < configs.length; i++) {
    if ((configs[i] as ConfigEntry).index <= commitIndex) firstKept = i;
  }
  return firstKept === 0 ? configs : configs.slice(firstKept);
}
