/**
 * Invariants checked after every step. A broken one throws: a node must stop rather than go on
 * from a state that could violate Raft's safety properties.
 */
import type { RaftState } from "./state.ts";

/**
 * Thrown by {@link step} when a safety invariant would break. A node that gets one must stop:
 * going on could violate Raft's safety properties.
 */
export class InvariantError extends Error {
  override name = "InvariantError";
}

function check(condition: boolean, message: () => string): void {
  if (!condition) throw new InvariantError(`invariant: ${message()}`);
}

export function checkInvariants(before: RaftState, after: RaftState): void {
  check(after.term >= before.term, () => `term moved back ${before.term} -> ${after.term}`);
  check(
    after.term !== before.term || before.votedFor === null || after.votedFor === before.votedFor,
    () => `vote changed within term ${after.term}`,
  );
  check(
    after.commitIndex >= before.commitIndex,
    () => `commit moved back ${before.commitIndex} -> ${after.commitIndex}`,
  );
  check(
    after.commitIndex <= after.log.lastIndex,
    () => `commit ${after.commitIndex} past last index ${after.log.lastIndex}`,
  );
  check(after.appliedIndex <= after.applyingIndex, () => "applied past what was handed out");
  check(after.applyingIndex <= after.commitIndex, () => "applying uncommitted entries");
  check(after.persistedIndex <= after.log.lastIndex, () => "persisted past the last index");
  check(
    after.role !== "leader" || after.leaderId === after.id,
    () => "leader without itself as leader",
  );
  check(
    !(before.role === "leader" && after.role === "leader" && before.term === after.term) ||
      after.log.lastIndex >= before.log.lastIndex,
    () => "a leader removed entries from its own log",
  );
}
