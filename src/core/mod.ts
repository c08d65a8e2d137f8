/** The pure Raft core. */
export type { RaftConfig } from "./config.ts";
export { defaultConfig, resolveConfig } from "./config.ts";
export { InvariantError } from "./invariants.ts";
export type { RaftLog } from "./log.ts";
export { entryAt, termAt } from "./log.ts";
export type { ConfigEntry } from "./membership.ts";
export { activeConfig, allMembers, allVoters } from "./membership.ts";
export type { Progress, ProgressState } from "./progress.ts";
export type { VoteResult } from "./quorum.ts";
export { committedIndex, majorityIndex, majorityVote, voteResult } from "./quorum.ts";
export { confirmedRound } from "./read-index.ts";
export type { CreateOptions, PendingRead, RaftState, RestoredState, Transfer } from "./state.ts";
export { createState } from "./state.ts";
export type { StepResult } from "./step.ts";
export { step } from "./step.ts";
export type * from "./types.ts";
