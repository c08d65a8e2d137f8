/** One-line renderings of messages, inputs and effects for --verbose traces. */
import type { Effect, Entry, Input, Message } from "../../mod.ts";
import { describeEntry, describeMembership } from "./payload.ts";

function entries(list: readonly Entry[]): string {
  if (list.length === 0) return "[]";
  if (list.length <= 3) return list.map(describeEntry).join("");
  return `${describeEntry(list[0] as Entry)}..${describeEntry(list[list.length - 1] as Entry)}`;
}

export function describeMessage(m: Message): string {
  const head = `${m.type} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case "appendEntries":
      return `${head} prev=${m.prevLogIndex}/t${m.prevLogTerm} ${entries(m.entries)} commit=${m.leaderCommit}`;
    case "appendEntriesResponse":
      return m.success
        ? `${head} ok match=${m.matchIndex}`
        : `${head} reject ${m.rejectedIndex} hint=${m.conflictIndex}/t${m.conflictTerm}`;
    case "heartbeat":
      return `${head} commit=${m.leaderCommit}`;
    case "requestVote":
      return `${head}${m.preVote ? " pre" : ""}${m.transfer ? " transfer" : ""} last=${m.lastLogIndex}/t${m.lastLogTerm}`;
    case "requestVoteResponse":
      return `${head}${m.preVote ? " pre" : ""} ${m.granted ? "granted" : "denied"}`;
    default:
      return head;
  }
}

export function describeInput(input: Input): string {
  switch (input.type) {
    case "message":
      return describeMessage(input.message);
    case "timeout":
      return `timeout ${input.timer} gen=${input.generation}`;
    case "propose":
      return `propose #${input.requestId} x${input.commands.length}`;
    case "changeMembership":
      return `changeMembership #${input.requestId} ${describeMembership(input.membership)}`;
    case "transferLeadership":
      return `transferLeadership #${input.requestId} to ${input.to ?? "best"}`;
    case "initialize":
      return `initialize voters=${input.membership.voters.join(",")}`;
    case "persisted":
      return `persisted ${input.index}/t${input.term}`;
    case "applied":
      return `applied ${input.index}`;
    case "entriesLoaded":
      return `entriesLoaded for ${input.peer} ${entries(input.entries)}`;
    case "unreachable":
      return `unreachable ${input.peer}`;
    default:
      return input.type;
  }
}

export function describeEffect(e: Effect): string {
  switch (e.type) {
    case "saveHardState":
      return `saveHardState t${e.hardState.term} vote=${e.hardState.votedFor}`;
    case "truncateLog":
      return `truncateLog from ${e.fromIndex}`;
    case "appendLog":
    case "apply":
      return `${e.type} ${entries(e.entries)}`;
    case "send":
      return `send${e.afterPersist ? "(after persist)" : ""} ${describeMessage(e.message)}`;
    case "armTimer":
      return `armTimer ${e.timer} +${e.afterMs}ms gen=${e.generation}`;
    case "cancelTimer":
      return `cancelTimer ${e.timer}`;
    case "loadEntries":
      return `loadEntries ${e.fromIndex}..${e.toIndex} for ${e.peer}`;
    case "roleChanged":
      return `roleChanged ${e.role} t${e.term} leader=${e.leaderId}`;
    default:
      return JSON.stringify(e);
  }
}
