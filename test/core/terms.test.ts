/**
 * §5.1 Raft basics: terms act as a logical clock. A node that sees a higher term adopts it (and a
 * leader or candidate steps down); a request from an older term is rejected with the newer term.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  createState,
  type Message,
  type NodeId,
  type RaftState,
  type RestoredState,
  step,
} from "../../mod.ts";
import { Cluster, effectsOfType, messages, msg, restoredFrom, run } from "./harness.ts";

const voters = ["a", "b", "c"];

/** A leader `a` of term 1 in a healthy three-node cluster, and the cluster around it. */
function leaderOfTermOne(config = {}): { cluster: Cluster; leader: RaftState } {
  const cluster = Cluster.bootstrap(voters, { config });
  const leader = cluster.elect("a");
  assert.equal(leader.term, 1);
  return { cluster, leader };
}

function node(id: NodeId, restored: RestoredState): RaftState {
  return createState({ id, restored });
}

describe("§5.1 term adoption: a higher term in any message is adopted", () => {
  const higher = 5;
  const fromFollower: Record<string, (leader: RaftState) => Message> = {
    appendEntriesResponse: () => ({
      type: "appendEntriesResponse",
      term: higher,
      from: "b",
      to: "a",
      success: false,
      matchIndex: 0,
      rejectedIndex: 0,
      conflictTerm: 0,
      conflictIndex: 0,
    }),
    heartbeatResponse: () => ({
      type: "heartbeatResponse",
      term: higher,
      from: "b",
      to: "a",
      round: 0,
    }),
    requestVoteResponse: () => ({
      type: "requestVoteResponse",
      term: higher,
      from: "b",
      to: "a",
      preVote: false,
      granted: false,
    }),
    appendEntries: (leader) => ({
      type: "appendEntries",
      term: higher,
      from: "c",
      to: "a",
      prevLogIndex: leader.log.lastIndex,
      prevLogTerm: leader.log.lastTerm,
      entries: [],
      leaderCommit: 0,
    }),
    heartbeat: () => ({
      type: "heartbeat",
      term: higher,
      from: "c",
      to: "a",
      leaderCommit: 0,
      round: 0,
    }),
    "requestVote (leadership transfer)": (leader) => ({
      type: "requestVote",
      term: higher,
      from: "c",
      to: "a",
      preVote: false,
      transfer: true,
      lastLogIndex: leader.log.lastIndex,
      lastLogTerm: leader.log.lastTerm,
    }),
  };

  for (const [kind, make] of Object.entries(fromFollower)) {
    it(`§5.1 a leader that receives ${kind} of a higher term steps down to follower`, () => {
      const { leader } = leaderOfTermOne();
      const { state, effects } = step(leader, msg(make(leader)));

      assert.equal(state.role, "follower");
      assert.equal(state.term, higher);
      assert.equal(state.progress.size, 0, "a follower keeps no replication progress");
      // The new term is durable first, with the vote of the old term cleared.
      assert.deepEqual(effects[0], {
        type: "saveHardState",
        hardState: { term: higher, votedFor: null },
      });
      const announced = effectsOfType(effects, "roleChanged")[0];
      assert.equal(announced?.role, "follower");
      assert.equal(announced?.term, higher);
      assert.ok(
        effects.some((e) => e.type === "cancelTimer" && e.timer === "heartbeat"),
        "a deposed leader stops sending heartbeats",
      );
      const fromLeader = kind === "appendEntries" || kind === "heartbeat";
      assert.equal(state.leaderId, fromLeader ? "c" : null);
    });
  }

  it("§5.1 a follower adopts the term of a new leader's heartbeat and follows it", () => {
    const follower = node("b", restoredFrom(voters, [1, 1], { term: 2, votedFor: "a" }));
    const { state, effects } = step(
      follower,
      msg({ type: "heartbeat", term: 4, from: "c", to: "b", leaderCommit: 0, round: 0 }),
    );
    assert.equal(state.term, 4);
    assert.equal(state.votedFor, null, "a vote belongs to its term");
    assert.equal(state.leaderId, "c");
    assert.deepEqual(effects[0], { type: "saveHardState", hardState: { term: 4, votedFor: null } });
    const [answer] = messages(effects, "heartbeatResponse");
    assert.equal(answer?.term, 4);
  });

  it("§5.1 a candidate that learns of a higher term returns to follower", () => {
    const candidate = run(
      node("a", restoredFrom(voters, [1], { term: 1 })),
      { type: "start" },
      { type: "timeout", timer: "election", generation: 1 },
    ).state;
    assert.equal(candidate.role, "precandidate");
    const { state } = step(
      candidate,
      msg({
        type: "requestVoteResponse",
        term: 7,
        from: "b",
        to: "a",
        preVote: true,
        granted: false,
      }),
    );
    assert.equal(state.role, "follower");
    assert.equal(state.term, 7);
  });

  it("§5.1, thesis §4.2.3 a leader ignores a higher-term vote request while it holds the lease", () => {
    // With CheckQuorum, the leader has heard from a quorum within an election timeout: a
    // vote request from a node that merely timed out must not depose it.
    const { leader } = leaderOfTermOne();
    const request: Message = {
      type: "requestVote",
      term: 5,
      from: "c",
      to: "a",
      preVote: false,
      transfer: false,
      lastLogIndex: leader.log.lastIndex,
      lastLogTerm: leader.log.lastTerm,
    };
    const ignored = step(leader, msg(request));
    assert.deepEqual(ignored.effects, []);
    assert.equal(ignored.state.role, "leader");
    assert.equal(ignored.state.term, 1);

    // Without PreVote and CheckQuorum there is no lease: plain §5.1 applies.
    const plain = leaderOfTermOne({ preVote: false, checkQuorum: false }).leader;
    const { state, effects } = step(plain, msg(request));
    assert.equal(state.role, "follower");
    assert.equal(state.term, 5);
    const [vote] = messages(effects, "requestVoteResponse");
    assert.equal(vote?.granted, true, "c's log is as up to date as a's");
  });
});

describe("§5.1 stale-term messages are rejected", () => {
  const follower = () => node("b", restoredFrom(voters, [1, 1, 2], { term: 3 }));

  it("§5.1 an AppendEntries from an old term gets a rejection carrying the newer term", () => {
    const before = follower();
    const { state, effects } = step(
      before,
      msg({
        type: "appendEntries",
        term: 2,
        from: "a",
        to: "b",
        prevLogIndex: 3,
        prevLogTerm: 2,
        entries: [{ index: 4, term: 2, kind: "blank" }],
        leaderCommit: 3,
      }),
    );
    assert.deepEqual(effects, [
      {
        type: "send",
        message: {
          type: "appendEntriesResponse",
          term: 3,
          from: "b",
          to: "a",
          success: false,
          matchIndex: 0,
          rejectedIndex: 3,
          conflictTerm: 0,
          conflictIndex: 0,
        },
        afterPersist: false,
      },
    ]);
    assert.equal(state.term, 3);
    assert.equal(state.leaderId, null, "an old leader is not followed");
    assert.equal(state.log.lastIndex, 3, "nothing from an old term is appended");
    assert.equal(state.commitIndex, 0, "nor committed");
  });

  it("§5.1 a heartbeat from an old term is answered with the newer term too", () => {
    const { effects } = step(
      follower(),
      msg({ type: "heartbeat", term: 1, from: "a", to: "b", leaderCommit: 3, round: 0 }),
    );
    const [answer] = messages(effects, "heartbeatResponse");
    assert.equal(answer?.term, 3);
  });

  it("§5.1 vote requests of an old term are denied without changing the vote", () => {
    for (const preVote of [false, true]) {
      const { state, effects } = step(
        follower(),
        msg({
          type: "requestVote",
          term: 2,
          from: "c",
          to: "b",
          preVote,
          transfer: false,
          lastLogIndex: 10,
          lastLogTerm: 2,
        }),
      );
      assert.deepEqual(messages(effects), [
        { type: "requestVoteResponse", term: 3, from: "b", to: "c", preVote, granted: false },
      ]);
      assert.equal(effectsOfType(effects, "saveHardState").length, 0);
      assert.equal(state.votedFor, null);
    }
  });

  it("§5.1 responses from an old term are ignored", () => {
    const candidate = run(
      createState({
        id: "a",
        config: { preVote: false },
        restored: restoredFrom(voters, [1, 2], { term: 2 }),
      }),
      { type: "start" },
      { type: "timeout", timer: "election", generation: 1 },
    ).state;
    assert.equal(candidate.role, "candidate");
    assert.equal(candidate.term, 3);
    // A vote granted in term 2 would make a leader of term 3 if it were counted.
    const { state, effects } = step(
      candidate,
      msg({
        type: "requestVoteResponse",
        term: 2,
        from: "b",
        to: "a",
        preVote: false,
        granted: true,
      }),
    );
    assert.deepEqual(effects, []);
    assert.equal(state.role, "candidate");
    assert.equal(state.votes.get("b"), undefined);
  });

  it("§5.1 a deposed leader learns the newer term from the rejection and steps down", () => {
    const { cluster } = leaderOfTermOne();
    cluster.partition(["a"], ["b", "c"]);
    // b and c stop hearing from a: both time out, and b wins term 2 with c's vote.
    cluster.fire("c", "election");
    cluster.deliver(); // b still follows a: it ignores c's pre-vote (thesis §4.2.3)
    cluster.fire("b", "election");
    cluster.deliver();
    assert.equal(cluster.state("b").role, "leader");
    assert.equal(cluster.state("b").term, 2);
    assert.equal(cluster.state("a").role, "leader", "a has not heard of term 2 yet");

    cluster.heal();
    cluster.heartbeat("a");
    const a = cluster.state("a");
    assert.equal(a.role, "follower");
    assert.equal(a.term, 2);
    assert.equal(cluster.state("b").role, "leader");
    assert.equal(cluster.state("b").term, 2);
  });
});
