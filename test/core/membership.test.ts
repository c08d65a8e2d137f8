/**
 * Dynamic membership (§6, thesis §4): learners, joint consensus (C_old,new then C_new), a leader
 * removed by a change, removed servers, one change at a time, and leadership transfer (§3.10).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  activeConfig,
  committedIndex,
  type Effect,
  type Membership,
  type Message,
  type NodeId,
  voteResult,
} from "../../mod.ts";
import { Cluster, effectsOfType, membershipOf, messages } from "./harness.ts";

const encode = (text: string) => new TextEncoder().encode(text);
let nextRequest = 1;

/** n1 alone is initialized (a single voter elects itself); the others wait to be added. */
function growFromOne(ids: readonly NodeId[]): Cluster {
  const cluster = new Cluster(ids);
  for (const id of ids) cluster.step(id, { type: "start" });
  cluster.step(ids[0] as NodeId, {
    type: "initialize",
    membership: membershipOf([ids[0] as NodeId]),
  });
  cluster.deliver();
  assert.equal(cluster.state(ids[0] as NodeId).role, "leader");
  return cluster;
}

/** A bootstrapped cluster of `ids` with `leader` elected and its blank entry committed. */
function elected(ids: readonly NodeId[], leader: NodeId = ids[0] as NodeId): Cluster {
  const cluster = Cluster.bootstrap(ids);
  cluster.elect(leader);
  cluster.heartbeat(leader);
  return cluster;
}

function change(cluster: Cluster, at: NodeId, membership: Membership): readonly Effect[] {
  const effects = cluster.step(at, {
    type: "changeMembership",
    requestId: nextRequest++,
    membership,
  });
  cluster.deliver();
  return effects;
}

function propose(cluster: Cluster, at: NodeId, text: string): readonly Effect[] {
  const effects = cluster.step(at, {
    type: "propose",
    requestId: nextRequest++,
    commands: [encode(text)],
  });
  cluster.deliver();
  return effects;
}

function transfer(cluster: Cluster, at: NodeId, to: NodeId | null): readonly Effect[] {
  return cluster.step(at, { type: "transferLeadership", requestId: nextRequest++, to });
}

function active(cluster: Cluster, id: NodeId): Membership {
  return activeConfig(cluster.state(id).configs).membership;
}

function appliedCommands(cluster: Cluster, id: NodeId): string[] {
  return (cluster.applied.get(id) ?? []).flatMap((e) =>
    e.kind === "command" ? [new TextDecoder().decode(e.data)] : [],
  );
}

function rejection(effects: readonly Effect[]): string | undefined {
  return effectsOfType(effects, "adminRejected")[0]?.reason;
}

describe("thesis §4.3 joint quorums", () => {
  const joint: Membership = {
    voters: ["d", "e", "f"],
    outgoing: ["a", "b", "c"],
    learners: [],
    addresses: {},
  };

  it("commitment needs a majority of C_old and of C_new", () => {
    const at = (values: Record<NodeId, number>) => (id: NodeId) => values[id] ?? 0;
    assert.equal(committedIndex(joint, at({ d: 5, e: 5, f: 5 })), 0);
    assert.equal(committedIndex(joint, at({ a: 5, b: 5, c: 5 })), 0);
    assert.equal(committedIndex(joint, at({ a: 5, b: 5, d: 5, e: 4 })), 4);
  });

  it("an election needs both majorities; a candidate's own vote counts only where it is a member", () => {
    // Candidate a is only in C_old: its vote does nothing for C_new.
    const votes = (granted: NodeId[]) => (id: NodeId) => (granted.includes(id) ? true : undefined);
    assert.equal(voteResult(joint, votes(["a", "d", "e"])), "pending");
    assert.equal(voteResult(joint, votes(["a", "b", "d"])), "pending");
    assert.equal(voteResult(joint, votes(["a", "b", "d", "e"])), "won");
    const lost = (id: NodeId) => (["d", "e"].includes(id) ? false : id === "a" ? true : undefined);
    assert.equal(voteResult(joint, lost), "lost");
  });
});

describe("§6 growing and shrinking the cluster", () => {
  it("1 → 3 voters: learners first, then a joint change, then C_new automatically", () => {
    const cluster = growFromOne(["n1", "n2", "n3"]);
    propose(cluster, "n1", "a");
    const addLearners = change(cluster, "n1", membershipOf(["n1"], ["n2", "n3"]));
    assert.equal(effectsOfType(addLearners, "adminAccepted").length, 1);
    assert.equal(active(cluster, "n1").outgoing, undefined, "learner-only changes are not joint");
    assert.equal(cluster.state("n2").role, "learner");
    assert.equal(cluster.armed("n2", "election"), undefined, "a learner never campaigns");
    cluster.heartbeat("n1");
    assert.deepEqual(appliedCommands(cluster, "n2"), ["a"]);

    const promote = change(cluster, "n1", membershipOf(["n1", "n2", "n3"]));
    const accepted = effectsOfType(promote, "adminAccepted")[0];
    assert.ok(accepted);
    const n1 = cluster.state("n1");
    // C_old,new at the accepted index, then C_new right after it, both committed.
    assert.equal(n1.configs.length, 1);
    assert.deepEqual(activeConfig(n1.configs).index, accepted.index + 1);
    assert.deepEqual([...active(cluster, "n1").voters], ["n1", "n2", "n3"]);
    assert.equal(active(cluster, "n1").outgoing, undefined);
    assert.ok(n1.commitIndex >= accepted.index + 1);
    cluster.heartbeat("n1");
    assert.equal(cluster.state("n3").role, "follower");
    assert.ok(cluster.armed("n3", "election"), "a promoted learner arms its election timer");

    // The new voters count: with n1 isolated, n2 and n3 elect a leader and keep every entry.
    cluster.isolate("n1");
    cluster.fire("n3", "election"); // n3 stops waiting for n1 (it would ignore n2 while in lease)
    cluster.deliver();
    const leader = cluster.elect("n2");
    assert.equal(leader.role, "leader");
    propose(cluster, "n2", "b");
    cluster.heartbeat("n2");
    assert.deepEqual(appliedCommands(cluster, "n3"), ["a", "b"]);
  });

  it("a second change during a change is rejected; so is one before the leader's blank commits", () => {
    const cluster = elected(["n1", "n2", "n3"]);
    cluster.filter = () => false; // hold the first change uncommitted
    cluster.step("n1", {
      type: "changeMembership",
      requestId: 1,
      membership: membershipOf(["n1", "n2"]),
    });
    const second = transferOrChange(cluster);
    assert.equal(rejection(second), "change_in_progress");
    cluster.heal();

    const fresh = Cluster.bootstrap(["a", "b", "c"]);
    fresh.filter = (m) => m.type !== "appendEntriesResponse"; // the blank is never acknowledged
    fresh.fire("a", "election");
    fresh.deliver();
    assert.equal(fresh.state("a").role, "leader");
    const early = fresh.step("a", {
      type: "changeMembership",
      requestId: 2,
      membership: membershipOf(["a", "b"]),
    });
    assert.equal(rejection(early), "change_in_progress");

    const follower = cluster.step("n2", {
      type: "changeMembership",
      requestId: 3,
      membership: membershipOf(["n2"]),
    });
    assert.equal(rejection(follower), "not_leader");
    assert.equal(effectsOfType(follower, "adminRejected")[0]?.leaderId, "n1");
    const invalid = elected(["x", "y", "z"]).step("x", {
      type: "changeMembership",
      requestId: 4,
      membership: { voters: [], learners: ["y"], addresses: {} },
    });
    assert.equal(rejection(invalid), "invalid_membership");
  });

  it("removing the leader: it leads C_old,new without counting itself in C_new, then steps down", () => {
    const cluster = elected(["n1", "n2", "n3", "n4"]);
    propose(cluster, "n1", "a");
    const start = cluster.trace.length;
    change(cluster, "n1", membershipOf(["n2", "n3", "n4"]));
    const n1 = cluster.state("n1");
    assert.notEqual(n1.role, "leader", "the removed leader steps down once C_new commits");
    assert.equal(cluster.armed("n1", "election"), undefined, "and never campaigns again");
    const handover = messages(cluster.effectsSince(start, "n1"), "timeoutNow");
    assert.equal(handover.length, 1, "it hands leadership to an up-to-date voter of C_new");
    const leader = cluster.leader();
    assert.ok(["n2", "n3", "n4"].includes(leader.id));
    assert.ok(leader.term > n1.term - 1);
    propose(cluster, leader.id, "b");
    cluster.heartbeat(leader.id);
    for (const id of ["n2", "n3", "n4"]) assert.deepEqual(appliedCommands(cluster, id), ["a", "b"]);
  });

  it("the removed leader does not count its own acknowledgement in C_new", () => {
    const cluster = elected(["n1", "n2", "n3"]);
    // Only n2 answers: C_old,new {n2,n3} + {n1,n2,n3}: n1 + n2 is a majority of C_old, and
    // n2 alone is not a majority of C_new, so nothing of the change commits.
    cluster.filter = (m) => m.from !== "n3" && m.to !== "n3";
    change(cluster, "n1", membershipOf(["n2", "n3"]));
    const n1 = cluster.state("n1");
    assert.equal(n1.role, "leader");
    assert.ok(activeConfig(n1.configs).membership.outgoing, "still joint");
    assert.ok(n1.commitIndex < activeConfig(n1.configs).index);
  });

  it("replacing every voter at once", () => {
    const ids = ["n1", "n2", "n3", "n4", "n5", "n6"];
    const cluster = new Cluster(ids);
    for (const id of ids) cluster.step(id, { type: "start" });
    for (const id of ["n1", "n2", "n3"]) {
      cluster.step(id, { type: "initialize", membership: membershipOf(["n1", "n2", "n3"]) });
    }
    cluster.elect("n1");
    propose(cluster, "n1", "a");
    change(cluster, "n1", membershipOf(["n1", "n2", "n3"], ["n4", "n5", "n6"]));
    change(cluster, "n1", membershipOf(["n4", "n5", "n6"]));
    assert.notEqual(cluster.state("n1").role, "leader");
    const leader = cluster.leader();
    assert.ok(["n4", "n5", "n6"].includes(leader.id));
    // The old voters are gone: cut them off and the new ones still commit.
    cluster.partition(["n4", "n5", "n6"]);
    propose(cluster, leader.id, "b");
    cluster.heartbeat(leader.id);
    for (const id of ["n4", "n5", "n6"]) assert.deepEqual(appliedCommands(cluster, id), ["a", "b"]);
  });

  it("promoted learners count toward the new quorum (old voters isolated, commits go on)", () => {
    const ids = ["n1", "n2", "n3", "n4", "n5"];
    const cluster = new Cluster(ids);
    for (const id of ids) cluster.step(id, { type: "start" });
    for (const id of ["n1", "n2", "n3"]) {
      cluster.step(id, { type: "initialize", membership: membershipOf(["n1", "n2", "n3"]) });
    }
    cluster.elect("n1");
    change(cluster, "n1", membershipOf(["n1", "n2", "n3"], ["n4", "n5"]));
    change(cluster, "n1", membershipOf(["n1", "n4", "n5"]));
    assert.equal(cluster.state("n1").role, "leader");
    cluster.partition(["n1", "n4", "n5"], ["n2"], ["n3"]);
    const before = cluster.state("n1").commitIndex;
    propose(cluster, "n1", "c");
    assert.ok(cluster.state("n1").commitIndex > before, "n4 and n5 make the quorum");
  });

  it("a removed node stops receiving AppendEntries once C_new commits, and cannot disturb", () => {
    const cluster = elected(["n1", "n2", "n3"]);
    change(cluster, "n1", membershipOf(["n1", "n2"]));
    assert.equal(cluster.state("n1").progress.has("n3"), false);
    const start = cluster.sent.length;
    propose(cluster, "n1", "x");
    cluster.heartbeat("n1");
    assert.equal(
      cluster.sent.slice(start).filter((m) => m.to === "n3").length,
      0,
      "nothing is sent to n3",
    );
    // n3 learned C_new but not that it committed: it may still campaign (thesis §4.2.2, it
    // could be needed until C_new commits), but it does not count its own vote and the others,
    // hearing from their leader, ignore it (thesis §4.2.3).
    const n3 = cluster.state("n3");
    assert.ok(!activeConfig(n3.configs).membership.voters.includes("n3"));
    const term = cluster.state("n1").term;
    cluster.filter = () => true;
    cluster.fire("n3", "election");
    cluster.deliver();
    assert.equal(cluster.state("n1").role, "leader");
    assert.equal(cluster.state("n1").term, term);
    assert.equal(cluster.state("n2").term, term);
  });

  it("thesis §4.2.2 a leader that removed itself and lost leadership before C_new committed can win again and finish the change", () => {
    // n1 leads {n1, n2}, moves to {n2} and is cut off before n2 has C_new: n2's active
    // configuration still needs n1's vote, which n2's shorter log cannot get. n1, not in C_new
    // but in the configuration before it, must campaign.
    const cluster = elected(["n1", "n2"], "n1");
    const carriesNewConfig = (m: Message) =>
      m.type === "appendEntries" &&
      m.entries.some((e) => e.kind === "membership" && e.membership.outgoing === undefined);
    // The joint configuration reaches n2 and commits; C_new does not reach n2.
    cluster.filter = (m) => !carriesNewConfig(m);
    cluster.step("n1", {
      type: "changeMembership",
      requestId: 1,
      membership: membershipOf(["n2"]),
    });
    cluster.deliver();
    assert.equal(activeConfig(cluster.state("n2").configs).membership.outgoing?.length, 2);
    // n1 loses touch with n2 long enough for CheckQuorum to depose it.
    cluster.filter = () => false;
    cluster.fire("n1", "election");
    cluster.fire("n1", "election");
    assert.notEqual(cluster.state("n1").role, "leader");
    cluster.filter = () => true;
    // n2's election timer runs out: it cannot win (its joint configuration needs n1, whose log
    // is longer), but n1, a voter of the configuration before C_new, can, and finishes C_new.
    cluster.fire("n2", "election");
    cluster.deliver();
    assert.notEqual(cluster.state("n2").role, "leader");
    for (let round = 0; round < 10 && cluster.state("n2").role !== "leader"; round++) {
      if (cluster.state("n1").role !== "leader") cluster.fire("n1", "election");
      cluster.deliver();
    }
    assert.equal(cluster.state("n2").role, "leader", "the change completed and n2 leads C_new");
  });

  it("a removed node that missed C_new is denied without raising anyone's term", () => {
    const cluster = elected(["n1", "n2", "n3"], "n1");
    cluster.filter = (m) => m.to !== "n3";
    change(cluster, "n1", membershipOf(["n1", "n2"]));
    propose(cluster, "n1", "y");
    const term = cluster.state("n1").term;
    // n3 still thinks it is a voter of C_old,new (or C_old): its campaign goes nowhere.
    cluster.filter = (m) => m.from === "n3" || m.to === "n3";
    cluster.fire("n3", "election");
    cluster.deliver();
    cluster.fire("n3", "election");
    cluster.deliver();
    assert.equal(cluster.state("n1").term, term);
    assert.equal(cluster.state("n1").role, "leader");
    assert.equal(cluster.state("n2").term, term);
  });
});

/** A second change proposed on n1 while the first is still under way. */
function transferOrChange(cluster: Cluster): readonly Effect[] {
  return cluster.step("n1", {
    type: "changeMembership",
    requestId: 99,
    membership: membershipOf(["n1", "n3"]),
  });
}

describe("thesis §3.10 leadership transfer", () => {
  it("to a named node: TimeoutNow once it is caught up, and it wins at once", () => {
    const cluster = elected(["n1", "n2", "n3"]);
    const effects = transfer(cluster, "n1", "n3");
    assert.equal(effectsOfType(effects, "adminAccepted").length, 1);
    assert.equal(messages(effects, "timeoutNow")[0]?.to, "n3", "n3 is already caught up");
    cluster.deliver();
    assert.equal(cluster.leader().id, "n3");
    assert.equal(cluster.state("n1").transfer, null);
  });

  it("to the best voter when no target is named", () => {
    const cluster = elected(["n1", "n2", "n3"]);
    cluster.filter = (m) => m.to !== "n2";
    propose(cluster, "n1", "a");
    cluster.heal();
    const effects = transfer(cluster, "n1", null);
    assert.equal(cluster.state("n1").transfer?.to, "n3", "n3 holds more of the log than n2");
    assert.equal(messages(effects, "timeoutNow")[0]?.to, "n3");
    cluster.deliver();
    assert.equal(cluster.leader().id, "n3");
  });

  it("a lagging target is caught up first; proposals and changes are refused meanwhile", () => {
    const cluster = elected(["n1", "n2", "n3"]);
    cluster.filter = (m) => m.to !== "n3" && m.from !== "n3";
    for (const text of ["a", "b", "c"]) propose(cluster, "n1", text);
    const effects = transfer(cluster, "n1", "n3");
    assert.equal(messages(effects, "timeoutNow").length, 0, "n3 lags: no TimeoutNow yet");
    const refused = cluster.step("n1", { type: "propose", requestId: 7, commands: [encode("d")] });
    assert.equal(effectsOfType(refused, "proposalRejected")[0]?.reason, "transferring");
    assert.equal(rejection(transferOrChange(cluster)), "transfer_in_progress");
    assert.equal(rejection(transfer(cluster, "n1", "n2")), "transfer_in_progress");
    cluster.heal();
    cluster.heartbeat("n1"); // n3 answers, is caught up, then gets TimeoutNow
    assert.equal(cluster.leader().id, "n3");
    assert.deepEqual(appliedCommands(cluster, "n3").slice(0, 3), ["a", "b", "c"]);
  });

  it("to an unreachable node: aborted after an election timeout, and the leader goes on", () => {
    const cluster = elected(["n1", "n2", "n3"]);
    cluster.isolate("n3");
    propose(cluster, "n1", "a");
    transfer(cluster, "n1", "n3");
    cluster.deliver();
    assert.equal(
      cluster.armed("n1", "election")?.afterMs,
      cluster.state("n1").config.electionTimeoutMinMs,
    );
    cluster.heartbeat("n1");
    const aborted = cluster.fire("n1", "election");
    assert.deepEqual(
      effectsOfType(aborted, "transferAborted").map((e) => e.to),
      ["n3"],
    );
    assert.equal(cluster.state("n1").role, "leader");
    assert.equal(cluster.state("n1").transfer, null);
    const accepted = propose(cluster, "n1", "b");
    assert.equal(effectsOfType(accepted, "proposalAccepted").length, 1);
  });

  it("refused by a follower, for itself trivially accepted, and refused for a non-voter", () => {
    const cluster = growFromOne(["n1", "n2"]);
    change(cluster, "n1", membershipOf(["n1"], ["n2"]));
    assert.equal(rejection(transfer(cluster, "n1", "n2")), "unknown_target");
    assert.equal(rejection(transfer(cluster, "n1", null)), "unknown_target");
    assert.equal(rejection(transfer(cluster, "n1", "zz")), "unknown_target");
    assert.equal(effectsOfType(transfer(cluster, "n1", "n1"), "adminAccepted").length, 1);
    assert.equal(rejection(transfer(cluster, "n2", "n1")), "not_leader");
  });

  it("TimeoutNow is honoured only from the leader of the current term", () => {
    const cluster = elected(["n1", "n2", "n3"]);
    const term = cluster.state("n2").term;
    const stale = cluster.step("n2", {
      type: "message",
      message: { type: "timeoutNow", term: term - 1, from: "n3", to: "n2" },
    });
    assert.equal(effectsOfType(stale, "roleChanged").length, 0);
    assert.equal(cluster.state("n2").term, term);
  });
});
