/**
 * The time-sensitive extensions that keep elections from disrupting a healthy cluster:
 * PreVote (thesis §9.6) and CheckQuorum (thesis §6.2), both on by default.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cluster, effectsOfType } from "./harness.ts";

describe("thesis §9.6 PreVote: a rejoining node does not disrupt a stable leader", () => {
  it("thesis §9.6 a partitioned node's failed pre-elections never raise its term", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"]);
    cluster.elect("a");
    cluster.isolate("c");
    const from = cluster.trace.length;
    for (let i = 0; i < 10; i++) {
      cluster.fire("c", "election");
      cluster.deliver();
      assert.equal(cluster.state("c").role, "precandidate");
      assert.equal(cluster.state("c").term, 1);
    }
    assert.deepEqual(effectsOfType(cluster.effectsSince(from, "c"), "saveHardState"), []);
    assert.deepEqual(cluster.storage.get("c")?.hardState, { term: 1, votedFor: "a" });

    // Meanwhile the majority goes on.
    cluster.step("a", { type: "propose", requestId: 1, commands: [new Uint8Array([1])] });
    cluster.deliver();
    assert.equal(cluster.state("a").commitIndex, 3);

    // c rejoins and times out once more: a and b know a leader, so its pre-vote is ignored.
    cluster.heal();
    const rejoined = cluster.trace.length;
    cluster.fire("c", "election");
    cluster.deliver();
    assert.equal(cluster.state("c").term, 1);
    assert.deepEqual(effectsOfType(cluster.effectsSince(rejoined, "a"), "roleChanged"), []);
    assert.deepEqual(effectsOfType(cluster.effectsSince(rejoined, "b"), "roleChanged"), []);

    // The leader's next heartbeat brings c back as a follower.
    cluster.heartbeat("a");
    const a = cluster.state("a");
    assert.equal(a.role, "leader");
    assert.equal(a.term, 1);
    const c = cluster.state("c");
    assert.equal(c.role, "follower");
    assert.equal(c.leaderId, "a");
    assert.equal(c.term, 1);
  });

  it("thesis §9.6 without PreVote (and CheckQuorum) the same rejoin deposes the leader", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"], {
      config: { preVote: false, checkQuorum: false },
    });
    cluster.elect("a");
    cluster.isolate("c");
    for (let i = 0; i < 10; i++) {
      cluster.fire("c", "election");
      cluster.deliver();
    }
    assert.equal(cluster.state("c").term, 11, "each failed election raised c's term");

    cluster.heal();
    cluster.fire("c", "election");
    cluster.deliver();
    assert.notEqual(cluster.state("a").role, "leader");
    assert.ok(cluster.state("a").term >= 12, "a was forced into c's term");
  });
});

describe("thesis §6.2 CheckQuorum: a leader that cannot reach a quorum steps down", () => {
  it("thesis §6.2 an isolated leader steps down after a CheckQuorum round without answers", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"]);
    cluster.elect("a");
    const checkQuorum = cluster.armed("a", "election");
    assert.equal(checkQuorum?.afterMs, 300, "a round lasts the minimum election timeout");

    cluster.isolate("a");
    // The first round covers the time before the partition: b and c answered then.
    cluster.heartbeat("a");
    cluster.fire("a", "election");
    assert.equal(cluster.state("a").role, "leader");

    // A whole round with no answer at all.
    cluster.heartbeat("a");
    cluster.heartbeat("a");
    const effects = cluster.fire("a", "election");
    const a = cluster.state("a");
    assert.equal(a.role, "follower");
    assert.equal(a.term, 1, "stepping down does not change the term");
    assert.equal(a.leaderId, null);
    assert.deepEqual(effectsOfType(effects, "roleChanged"), [
      { type: "roleChanged", role: "follower", term: 1, leaderId: null },
    ]);
    assert.ok(effects.some((e) => e.type === "cancelTimer" && e.timer === "heartbeat"));
    const election = cluster.armed("a", "election");
    assert.ok(election && election.afterMs >= 300 && election.afterMs < 600);

    const rejected = cluster.step("a", {
      type: "propose",
      requestId: 9,
      commands: [new Uint8Array([9])],
    });
    assert.deepEqual(effectsOfType(rejected, "proposalRejected"), [
      { type: "proposalRejected", requestId: 9, reason: "not_leader", leaderId: null },
    ]);
  });

  it("thesis §6.2 a leader that hears from a quorum every round stays leader", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c", "d", "e"]);
    cluster.elect("a");
    // Two of four followers are cut off: a, b and c are still a majority of five.
    cluster.partition(["a", "b", "c"], ["d"], ["e"]);
    for (let round = 0; round < 10; round++) {
      cluster.heartbeat("a");
      cluster.fire("a", "election");
      assert.equal(cluster.state("a").role, "leader", `round ${round}`);
    }
    assert.equal(cluster.state("a").term, 1);
  });

  it("thesis §6.2 a leader with a minority of five steps down", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c", "d", "e"]);
    cluster.elect("a");
    cluster.partition(["a", "b"], ["c", "d", "e"]);
    cluster.heartbeat("a");
    cluster.fire("a", "election"); // the round that began before the partition
    assert.equal(cluster.state("a").role, "leader");
    cluster.heartbeat("a");
    cluster.fire("a", "election");
    assert.equal(cluster.state("a").role, "follower");
  });

  it("thesis §6.2 without CheckQuorum an isolated leader stays leader", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"], { config: { checkQuorum: false } });
    cluster.elect("a");
    cluster.isolate("a");
    for (let round = 0; round < 5; round++) {
      cluster.heartbeat("a");
      const armed = cluster.armed("a", "election");
      if (armed) cluster.fire("a", "election");
    }
    assert.equal(cluster.state("a").role, "leader");
  });
});
