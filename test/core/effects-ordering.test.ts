/**
 * The effects ordering contract (src/core/types.ts): storage effects run in order; a send marked
 * `afterPersist` leaves only once every earlier storage effect is durable. Followers acknowledge
 * only durable entries (§5.3); the leader replicates in parallel with its own append and counts
 * its own entry only once persisted (thesis §10.2.1).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createState, type Effect, type NodeId, type RaftState, step } from "../../mod.ts";
import {
  ack,
  effectsOfType,
  electedLeader,
  entriesOfTerms,
  messages,
  msg,
  restoredFrom,
  run,
} from "./harness.ts";

const voters = ["a", "b", "c"];

function position(effects: readonly Effect[], predicate: (e: Effect) => boolean): number {
  const at = effects.findIndex(predicate);
  assert.ok(at >= 0, "effect not found");
  return at;
}

/** Leader `a` of term 2 whose blank entry 2 is durable and on c; b has not answered yet. */
function leader(): RaftState {
  const { state } = run(electedLeader(), ack("c", 2));
  assert.equal(state.commitIndex, 2);
  return state;
}

describe("effects ordering: the follower acknowledges durable entries only", () => {
  it("§5.3 the AppendEntries response is afterPersist and follows the appendLog effect", () => {
    const follower = createState({ id: "b", restored: restoredFrom(voters, [1], { term: 1 }) });
    const { effects } = step(
      follower,
      msg({
        type: "appendEntries",
        term: 1,
        from: "a",
        to: "b",
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: entriesOfTerms([1, 1], 2),
        leaderCommit: 1,
      }),
    );
    const append = position(effects, (e) => e.type === "appendLog");
    const respond = position(effects, (e) => e.type === "send");
    assert.ok(append < respond);
    assert.deepEqual(effects[respond], {
      type: "send",
      message: {
        type: "appendEntriesResponse",
        term: 1,
        from: "b",
        to: "a",
        success: true,
        matchIndex: 3,
        rejectedIndex: 1,
        conflictTerm: 0,
        conflictIndex: 0,
      },
      afterPersist: true,
    });
  });

  it("§5.3 a repair writes truncateLog, then appendLog, then the response", () => {
    const follower = createState({
      id: "b",
      restored: restoredFrom(voters, [1, 1, 1], { term: 1 }),
    });
    const { effects } = step(
      follower,
      msg({
        type: "appendEntries",
        term: 2,
        from: "a",
        to: "b",
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: entriesOfTerms([2], 2),
        leaderCommit: 0,
      }),
    );
    const order = effects
      .filter((e) => e.type !== "armTimer" && e.type !== "roleChanged")
      .map((e) => (e.type === "send" ? `send:${e.afterPersist}` : e.type));
    assert.deepEqual(order, ["saveHardState", "truncateLog", "appendLog", "send:true"]);
  });

  it("§5.1 a rejection that reveals a newly adopted term waits for that term to be durable", () => {
    const follower = createState({ id: "b", restored: restoredFrom(voters, [1], { term: 1 }) });
    const { effects } = step(
      follower,
      msg({
        type: "appendEntries",
        term: 2,
        from: "a",
        to: "b",
        prevLogIndex: 5,
        prevLogTerm: 2,
        entries: [],
        leaderCommit: 0,
      }),
    );
    const save = position(effects, (e) => e.type === "saveHardState");
    const respond = position(effects, (e) => e.type === "send");
    assert.ok(save < respond);
    assert.equal(effectsOfType(effects, "send")[0]?.afterPersist, true);
  });
});

describe("effects ordering: the leader appends in parallel (thesis §10.2.1)", () => {
  it("thesis §10.2.1 the leader's AppendEntries and heartbeats are not held for its own write", () => {
    const proposed = step(leader(), {
      type: "propose",
      requestId: 7,
      commands: [new Uint8Array([1])],
    });
    const append = position(proposed.effects, (e) => e.type === "appendLog");
    const sent = effectsOfType(proposed.effects, "send");
    assert.ok(sent.length > 0);
    for (const e of sent) {
      assert.equal(e.message.type, "appendEntries");
      assert.equal(e.afterPersist, false, "sent while the leader's own write is in progress");
    }
    assert.ok(append < proposed.effects.indexOf(sent[0] as Effect));
    assert.deepEqual(effectsOfType(proposed.effects, "proposalAccepted"), [
      { type: "proposalAccepted", requestId: 7, firstIndex: 3, term: 2 },
    ]);

    const beats = step(proposed.state, {
      type: "timeout",
      timer: "heartbeat",
      generation: proposed.state.timers.heartbeat,
    });
    assert.equal(messages(beats.effects, "heartbeat").length, 2);
    assert.ok(effectsOfType(beats.effects, "send").every((e) => !e.afterPersist));
  });

  it("thesis §10.2.1 the leader's own entry counts toward the quorum only once persisted", () => {
    const proposed = step(leader(), {
      type: "propose",
      requestId: 1,
      commands: [new Uint8Array([1])],
    });
    // c has entry 3 and a has not persisted it: c and a are not yet a majority for 3.
    const acked = step(proposed.state, ack("c", 3));
    assert.equal(acked.state.commitIndex, 2);
    assert.deepEqual(effectsOfType(acked.effects, "apply"), []);

    const persisted = step(acked.state, { type: "persisted", index: 3, term: 2, epoch: 0 });
    assert.equal(persisted.state.commitIndex, 3);
    assert.deepEqual(
      effectsOfType(persisted.effects, "apply").flatMap((e) => e.entries.map((x) => x.index)),
      [3],
    );
  });

  it("thesis §10.2.1 followers alone can commit, but the leader applies only what it persisted", () => {
    const proposed = step(leader(), {
      type: "propose",
      requestId: 1,
      commands: [new Uint8Array([1])],
    });
    const { state, effects } = run(proposed.state, ack("c", 3), ack("b", 3));
    assert.equal(state.commitIndex, 3, "b and c are a majority without a");
    assert.deepEqual(effectsOfType(effects, "apply"), [], "a's entry 3 is not durable yet");

    const persisted = step(state, { type: "persisted", index: 3, term: 2, epoch: 0 });
    assert.deepEqual(
      effectsOfType(persisted.effects, "apply").flatMap((e) => e.entries.map((x) => x.index)),
      [3],
    );
  });

  it("thesis §10.2.1 a persisted report for entries since replaced is ignored", () => {
    // b appended entry 2 of term 1, then a leader of term 2 replaced it before the write ended.
    const follower = createState({ id: "b", restored: restoredFrom(voters, [1], { term: 1 }) });
    const { state } = run(
      follower,
      msg({
        type: "appendEntries",
        term: 1,
        from: "a",
        to: "b",
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: entriesOfTerms([1], 2),
        leaderCommit: 0,
      }),
      msg({
        type: "appendEntries",
        term: 2,
        from: "c",
        to: "b",
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: entriesOfTerms([2], 2),
        leaderCommit: 2,
      }),
    );
    const stale = step(state, { type: "persisted", index: 2, term: 1, epoch: 0 });
    assert.equal(stale.state.persistedIndex, 1);
    assert.deepEqual(effectsOfType(stale.effects, "apply").length, 0);
    // The truncation started epoch 1: only the write that followed it reports the entry durable.
    const fresh = step(state, { type: "persisted", index: 2, term: 2, epoch: 1 });
    assert.equal(fresh.state.persistedIndex, 2);
    assert.equal(effectsOfType(fresh.effects, "apply")[0]?.entries.at(-1)?.index, 2);
  });

  it("a report from before a truncation is ignored even when the same entry was appended again", () => {
    // Entry (2, term 1) is written, replaced by (2, term 2), then written again by a leader of
    // term 3 whose log still has (2, term 1). The first write's report must not vouch for the
    // third, which is still queued behind the truncations.
    const follower = createState({ id: "b", restored: restoredFrom(voters, [1], { term: 1 }) });
    const append = (term: number, from: string, entryTerm: number) =>
      msg({
        type: "appendEntries",
        term,
        from,
        to: "b",
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: entriesOfTerms([entryTerm], 2),
        leaderCommit: 0,
      });
    const { state } = run(follower, append(1, "a", 1), append(2, "c", 2), append(3, "a", 1));
    assert.equal(state.logEpoch, 2);
    const old = step(state, { type: "persisted", index: 2, term: 1, epoch: 0 });
    assert.equal(old.state.persistedIndex, 1);
    const current = step(state, { type: "persisted", index: 2, term: 1, epoch: 2 });
    assert.equal(current.state.persistedIndex, 2);
  });
});

describe("effects ordering: elections", () => {
  it("§5.2 pre-vote requests write nothing and need not wait; real vote requests wait", () => {
    const follower = createState({ id: "a", restored: restoredFrom(voters, [1], { term: 1 }) });
    const pre = run(
      follower,
      { type: "start" },
      { type: "timeout", timer: "election", generation: 1 },
    );
    assert.equal(effectsOfType(pre.effects, "saveHardState").length, 0);
    assert.ok(effectsOfType(pre.effects, "send").every((e) => !e.afterPersist));

    const granted = (from: NodeId) =>
      msg({ type: "requestVoteResponse", term: 2, from, to: "a", preVote: true, granted: true });
    const real = step(pre.state, granted("b"));
    const save = position(real.effects, (e) => e.type === "saveHardState");
    const requests = effectsOfType(real.effects, "send");
    assert.equal(requests.length, 2);
    for (const e of requests) {
      assert.equal(e.afterPersist, true, "the candidate's vote for itself is durable first");
      assert.ok(real.effects.indexOf(e) > save);
    }
  });
});
