/**
 * Textual mutations of src/core/ that each reintroduce a classic Raft bug. The simulator must
 * catch every one with its own checks, so every mutant also runs with the core's invariant
 * checks switched off.
 */

export interface Edit {
  /** File name inside src/core/. */
  readonly file: string;
  /** Must occur exactly once in the file. */
  readonly search: string;
  readonly replace: string;
}

export interface Mutation {
  readonly name: string;
  readonly description: string;
  readonly edits: readonly Edit[];
}

/** Applied to every mutant (and the control): the core's after-step invariant checks are off. */
export const disableInvariants: Edit = {
  file: "invariants.ts",
  search: "export function checkInvariants(before: RaftState, after: RaftState): void {",
  replace:
    "export function checkInvariants(before: RaftState, after: RaftState): void {\n  return;",
};

/**
 * Also applied to every file of every mutant: inline `throw new Error(\`invariant: …\`)`
 * assertions become no-ops, since they fire inside `step`, before the simulator sees the effects.
 */
export function disableInlineAssertions(source: string): string {
  return source.replace(/throw new Error\((\s*)([`"])invariant:/g, "void String($1$2invariant:");
}

export const mutations: readonly Mutation[] = [
  {
    name: "commit-previous-term",
    description: "the leader commits an entry of an earlier term by counting replicas (§5.4.2)",
    edits: [
      {
        file: "replication.ts",
        search: "  if (termAt(c.s.log, index) !== c.s.term) return;\n",
        replace: "",
      },
    ],
  },
  {
    name: "double-vote",
    description: "a node votes for a second candidate in the same term (votedFor ignored)",
    edits: [
      {
        file: "election.ts",
        search: "(s.votedFor === null && s.leaderId === null)",
        replace: "s.leaderId === null",
      },
      {
        file: "context.ts",
        search: "if (term === c.s.term && c.s.votedFor !== null && votedFor !== c.s.votedFor) {",
        replace: "if (false) {",
      },
    ],
  },
  {
    name: "keep-conflicting-suffix",
    description: "a follower keeps its conflicting entries instead of truncating them (§5.3)",
    edits: [
      {
        file: "follower.ts",
        search: "if (termAt(log, entry.index) !== entry.term) {",
        replace: "if (termAt(log, entry.index) !== entry.term && false) {",
      },
    ],
  },
  {
    name: "vote-for-stale-log",
    description: "a vote is granted to a candidate whose log is less up to date (§5.4.1)",
    edits: [
      {
        file: "election.ts",
        search: "const granted = canVote && isUpToDate(s.log, m.lastLogTerm, m.lastLogIndex);",
        replace: "const granted = canVote;",
      },
    ],
  },
  {
    name: "commit-past-last-new",
    description: "a follower commits up to leaderCommit instead of min(leaderCommit, lastNew)",
    edits: [
      {
        file: "follower.ts",
        search: "commitTo(c, Math.min(m.leaderCommit, lastNew));",
        replace: "commitTo(c, Math.min(m.leaderCommit, c.s.log.lastIndex));",
      },
    ],
  },
  {
    name: "heartbeat-commit-uncapped",
    description: "heartbeats carry the full commit index, not min(commit, the follower's match)",
    edits: [
      {
        file: "replication.ts",
        search: "leaderCommit: Math.min(c.s.commitIndex, pr.match),",
        replace: "leaderCommit: c.s.commitIndex,",
      },
    ],
  },
  {
    name: "ack-before-persist",
    description: "a follower acknowledges entries before they are durable",
    edits: [
      {
        file: "follower.ts",
        search: "send(c, response(c, m, true, lastNew, 0, 0), true);",
        replace: "send(c, response(c, m, true, lastNew, 0, 0), false);",
      },
    ],
  },
  {
    name: "vote-before-persist",
    description: "a vote is sent before votedFor is durable (§5.2, Figure 2)",
    edits: [
      {
        file: "election.ts",
        search: "send(c, response, true);",
        replace: "send(c, response, false);",
      },
    ],
  },
  {
    name: "campaign-before-persist",
    description: "a candidate asks for votes before its own vote and term are durable",
    edits: [
      {
        file: "election.ts",
        search: "send(c, request, !preVote);",
        replace: "send(c, request, false);",
      },
    ],
  },
  {
    name: "leader-counts-unpersisted",
    description: "the leader counts its own entries toward the quorum before they are durable",
    edits: [
      {
        file: "replication.ts",
        search: "id === c.s.id ? c.s.persistedIndex :",
        replace: "id === c.s.id ? c.s.log.lastIndex :",
      },
    ],
  },
  {
    name: "removed-leader-cannot-return",
    description: "only voters of the active configuration campaign, even while it is uncommitted",
    edits: [
      {
        file: "context.ts",
        search:
          "return previous !== undefined && active.index > s.commitIndex && isVoter(previous.membership, id);",
        replace: "return false;",
      },
    ],
  },
  {
    name: "apply-unpersisted",
    description: "committed entries are applied before they are durable locally",
    edits: [
      {
        file: "context.ts",
        search: "const upTo = Math.min(c.s.commitIndex, c.s.persistedIndex);",
        replace: "const upTo = c.s.commitIndex;",
      },
    ],
  },
  {
    name: "leader-sends-before-term-durable",
    description: "a leader's messages leave before its term is durable (a single voter wins twice)",
    edits: [
      {
        file: "context.ts",
        search: "send(c, message, raftLog.termAt(c.s.log, c.s.persistedIndex) !== c.s.term);",
        replace: "send(c, message, false);",
      },
    ],
  },
  {
    name: "read-before-term-commit",
    description: "a new leader serves reads before an entry of its term commits (thesis §6.4)",
    edits: [
      {
        file: "read-index.ts",
        search: "  if (termAt(c.s.log, c.s.commitIndex) === c.s.term) startWaitingReads(c);",
        replace: "  startWaitingReads(c);",
      },
    ],
  },
  {
    name: "read-without-quorum",
    description: "a leader serves reads without a quorum confirming its leadership (§6.4)",
    edits: [
      {
        file: "read-index.ts",
        search: "if (read.round !== 0 && read.round <= confirmed) {",
        replace: "if (read.round !== 0) {",
      },
    ],
  },
  {
    name: "accept-stale-append",
    description: "AppendEntries from a leader of an older term is accepted (§5.1)",
    edits: [
      {
        file: "step.ts",
        search: "} else if (m.term < c.s.term) {",
        replace: '} else if (m.term < c.s.term && m.type !== "appendEntries") {',
      },
    ],
  },
  {
    name: "joint-commit-new-majority",
    description: "C_old,new commits with a majority of C_new alone (thesis §4.3)",
    edits: [
      {
        file: "quorum.ts",
        search:
          "  const incoming = majorityIndex(membership.voters, indexOf);\n  if (membership.outgoing === undefined) return incoming;",
        replace:
          "  const incoming = majorityIndex(membership.voters, indexOf);\n  return incoming;",
      },
    ],
  },
  {
    name: "joint-vote-new-majority",
    description: "an election in C_old,new is won with a majority of C_new alone (thesis §4.3)",
    edits: [
      {
        file: "quorum.ts",
        search:
          "  const incoming = majorityVote(membership.voters, voteOf);\n  if (membership.outgoing === undefined) return incoming;",
        replace: "  const incoming = majorityVote(membership.voters, voteOf);\n  return incoming;",
      },
    ],
  },
  {
    name: "never-append-c-new",
    description: "the leader never appends C_new after C_old,new commits (thesis §4.3)",
    edits: [
      {
        file: "membership-change.ts",
        search: "  if (joint.outgoing !== undefined) {",
        replace: "  if (joint.outgoing !== undefined) {\n    return;",
      },
    ],
  },
  {
    name: "removed-leader-stays",
    description: "a leader removed by C_new keeps leading after C_new commits (thesis §4.2.2)",
    edits: [
      {
        file: "membership-change.ts",
        search: "  if (!isVoter(joint, c.s.id)) stepDownRemoved(c);",
        replace: "  if (!isVoter(joint, c.s.id) && false) stepDownRemoved(c);",
      },
    ],
  },
  {
    name: "snapshot-at-commit",
    description: "a snapshot is taken at the commit index, ahead of what the state machine applied",
    edits: [
      {
        file: "context.ts",
        search: "  const index = c.s.applyingIndex;\n  if (c.s.snapshotBuilding",
        replace: "  const index = c.s.commitIndex;\n  if (c.s.snapshotBuilding",
      },
    ],
  },
  {
    name: "purge-beyond-snapshot",
    description: "compaction purges log entries that the snapshot does not cover (§7)",
    edits: [
      {
        file: "snapshot.ts",
        search: "const upToIndex = index - c.s.config.snapshotTrailingEntries;",
        replace: "const upToIndex = index + 1 + c.s.config.snapshotTrailingEntries;",
      },
    ],
  },
  {
    name: "install-keeps-conflicting-suffix",
    description:
      "an install keeps the log after the snapshot though it does not hold its last entry (§7)",
    edits: [
      {
        file: "context.ts",
        search: "const keep = index <= log.lastIndex && raftLog.termAt(log, index) === term;",
        replace: "const keep = index <= log.lastIndex;",
      },
    ],
  },
  {
    name: "snapshot-latest-membership",
    description: "a snapshot records the latest configuration, not the one in force at its index",
    edits: [
      {
        file: "context.ts",
        search: "  const { membership } = c.s.applyingConfig;",
        replace: "  const { membership } = activeConfig(c.s.configs);",
      },
    ],
  },
];
