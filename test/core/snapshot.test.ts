/** Snapshots and log compaction (§7, thesis §5): policy, purge, streaming to followers, install. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createState, type Effect, type Message, step } from "../../mod.ts";
import { Cluster, effectsOfType, membershipOf, messages, restoredFrom, run } from "./harness.ts";

const text = new TextEncoder();
let nextRequest = 1;

/** Proposes `count` commands one at a time at the leader, delivering after each. */
function proposeEach(cluster: Cluster, leader: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const commands = [text.encode(`cmd ${nextRequest}`)];
    cluster.step(leader, { type: "propose", requestId: nextRequest++, commands });
    cluster.deliver();
  }
}

function installs(effects: readonly Effect[]) {
  return effectsOfType(effects, "installSnapshot");
}

describe("§7 snapshots and log compaction", () => {
  test("a snapshot is taken at the policy point; the purge keeps the trailing entries", () => {
    const config = { snapshotThreshold: 10, snapshotTrailingEntries: 3 };
    const cluster = Cluster.bootstrap(["n1", "n2", "n3"], { config });
    cluster.elect("n1");
    const from = cluster.trace.length;
    proposeEach(cluster, "n1", 7); // entries 3..9 (1: membership, 2: blank)
    assert.deepEqual(effectsOfType(cluster.effectsSince(from, "n1"), "buildSnapshot"), []);
    proposeEach(cluster, "n1", 1); // entry 10: the 10th applied
    const effects = cluster.effectsSince(from, "n1");
    const [build] = effectsOfType(effects, "buildSnapshot");
    assert.deepEqual(build, {
      type: "buildSnapshot",
      index: 10,
      term: 1,
      membership: membershipOf(["n1", "n2", "n3"]),
    });
    assert.deepEqual(effectsOfType(effects, "purgeLog"), [{ type: "purgeLog", upToIndex: 7 }]);
    const leader = cluster.state("n1");
    assert.equal(leader.log.snapshotIndex, 10);
    assert.equal(leader.log.snapshotTerm, 1);
    assert.equal(cluster.storage.get("n1")?.purged, 7); // the log's first index is now 8
    // Followers compact by the same policy (once they learn the commit).
    cluster.heartbeat("n1");
    assert.equal(cluster.state("n2").log.snapshotIndex, 10);
    proposeEach(cluster, "n1", 10);
    assert.equal(cluster.state("n1").log.snapshotIndex, 20);
    assert.equal(cluster.storage.get("n1")?.purged, 17);
  });

  test("triggerSnapshot snapshots on demand; threshold 0 never does by itself", () => {
    const config = { snapshotThreshold: 0, snapshotTrailingEntries: 0 };
    const cluster = Cluster.bootstrap(["n1", "n2", "n3"], { config });
    cluster.elect("n1");
    proposeEach(cluster, "n1", 30);
    assert.equal(cluster.state("n1").log.snapshotIndex, 0);
    const effects = cluster.step("n1", { type: "triggerSnapshot", requestId: 99 });
    assert.deepEqual(effectsOfType(effects, "snapshotTriggered"), [
      { type: "snapshotTriggered", requestId: 99, index: 32 },
    ]);
    assert.equal(cluster.state("n1").log.snapshotIndex, 32);
    assert.equal(cluster.storage.get("n1")?.purged, 32);
  });

  test("a node added after compaction receives the snapshot, then the log", () => {
    const config = { snapshotThreshold: 5, snapshotTrailingEntries: 0 };
    const cluster = new Cluster(["n1", "n2", "n3", "n4"], { config });
    for (const id of ["n1", "n2", "n3"]) {
      cluster.step(id, { type: "start" });
      cluster.step(id, { type: "initialize", membership: membershipOf(["n1", "n2", "n3"]) });
    }
    cluster.step("n4", { type: "start" });
    cluster.elect("n1");
    proposeEach(cluster, "n1", 12);
    assert.ok(cluster.storage.get("n1")?.purged ?? 0 >= 10);
    const from = cluster.trace.length;
    const membership = membershipOf(["n1", "n2", "n3"], ["n4"]);
    cluster.step("n1", { type: "changeMembership", requestId: 1000, membership });
    cluster.deliver();
    cluster.heartbeat("n1"); // the probe after a stream waits for a heartbeat answer
    proposeEach(cluster, "n1", 2);
    cluster.heartbeat("n1");
    const sent = effectsOfType(cluster.effectsSince(from, "n1"), "sendSnapshot");
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.peer, "n4");
    assert.equal(installs(cluster.effectsSince(from, "n4")).length, 1);
    const leader = cluster.state("n1");
    const joined = cluster.state("n4");
    assert.equal(joined.log.lastIndex, leader.log.lastIndex);
    assert.equal(joined.commitIndex, leader.commitIndex);
    assert.equal(joined.role, "learner");
    assert.deepEqual(cluster.applied.get("n4"), cluster.applied.get("n1"));
  });

  test("a follower partitioned longer than the kept log catches up through a snapshot", () => {
    const config = { snapshotThreshold: 5, snapshotTrailingEntries: 2 };
    const cluster = Cluster.bootstrap(["n1", "n2", "n3"], { config });
    cluster.elect("n1");
    cluster.isolate("n3");
    proposeEach(cluster, "n1", 20);
    assert.ok(cluster.state("n3").log.lastIndex < 5);
    cluster.heal();
    const from = cluster.trace.length;
    cluster.heartbeat("n1");
    cluster.heartbeat("n1");
    const [install] = installs(cluster.effectsSince(from, "n3"));
    assert.ok(install, "n3 installed a snapshot");
    assert.equal(install.discardLog, true);
    proposeEach(cluster, "n1", 1);
    cluster.heartbeat("n1");
    const leader = cluster.state("n1");
    const follower = cluster.state("n3");
    assert.equal(follower.log.lastIndex, leader.log.lastIndex);
    assert.equal(follower.commitIndex, leader.commitIndex);
    assert.equal(follower.appliedIndex, leader.appliedIndex);
    assert.deepEqual(cluster.applied.get("n3"), cluster.applied.get("n1"));
  });

  test("a failed stream falls back to probing and sends the snapshot again", () => {
    const config = { snapshotThreshold: 5, snapshotTrailingEntries: 0 };
    const cluster = Cluster.bootstrap(["n1", "n2", "n3"], { config });
    cluster.elect("n1");
    cluster.isolate("n3");
    proposeEach(cluster, "n1", 10);
    const from = cluster.trace.length;
    cluster.heartbeat("n1"); // n3 still cut off: the stream fails
    cluster.heal();
    cluster.heartbeat("n1");
    cluster.heartbeat("n1");
    const sent = effectsOfType(cluster.effectsSince(from, "n1"), "sendSnapshot");
    assert.ok(sent.length >= 1);
    assert.equal(cluster.state("n3").commitIndex, cluster.state("n1").commitIndex);
  });

  test("a leader that steps down cancels its snapshot streams", () => {
    const config = { snapshotThreshold: 5, snapshotTrailingEntries: 0 };
    const cluster = Cluster.bootstrap(["n1", "n2", "n3"], { config });
    cluster.elect("n1");
    cluster.isolate("n3");
    proposeEach(cluster, "n1", 10);
    cluster.heal();
    cluster.holdSnapshots = true; // the stream is still running
    cluster.fire("n1", "heartbeat");
    cluster.deliver();
    assert.equal(cluster.state("n1").progress.get("n3")?.state, "snapshot");
    const higher: Message = {
      type: "heartbeat",
      term: 9,
      from: "n2",
      to: "n1",
      leaderCommit: 0,
      round: 0,
    };
    const effects = cluster.step("n1", { type: "message", message: higher });
    assert.deepEqual(effectsOfType(effects, "cancelSnapshot"), [
      { type: "cancelSnapshot", peer: "n3" },
    ]);
  });
});

describe("§7 InstallSnapshot receiver", () => {
  const voters = ["n1", "n2", "n3"];
  const snapshotFrom = (term: number, index: number, snapTerm: number): Message => ({
    type: "installSnapshot",
    term,
    from: "n1",
    to: "n2",
    lastIncludedIndex: index,
    lastIncludedTerm: snapTerm,
    membership: membershipOf(voters),
  });

  test("a snapshot of a stale term is rejected with our term (§5.1)", () => {
    const state = createState({ id: "n2", restored: restoredFrom(voters, [1, 1, 5]) });
    const { state: after, effects } = run(state, {
      type: "message",
      message: snapshotFrom(3, 3, 1),
    });
    assert.deepEqual(installs(effects), []);
    assert.deepEqual(messages(effects, "installSnapshotResponse"), [
      {
        type: "installSnapshotResponse",
        term: 5,
        from: "n2",
        to: "n1",
        success: false,
        matchIndex: 0,
      },
    ]);
    assert.equal(after.log, state.log);
  });

  test("the entries after a matching last included entry are kept (thesis §5.3)", () => {
    const state = createState({ id: "n2", restored: restoredFrom(voters, [1, 1, 2, 2]) });
    const { state: after, effects } = run(state, {
      type: "message",
      message: snapshotFrom(3, 2, 1),
    });
    assert.deepEqual(installs(effects), [
      {
        type: "installSnapshot",
        index: 2,
        term: 1,
        membership: membershipOf(voters),
        discardLog: false,
      },
    ]);
    assert.equal(after.log.snapshotIndex, 2);
    assert.equal(after.log.lastIndex, 4);
    assert.equal(after.log.lastTerm, 2);
    assert.equal(after.commitIndex, 2);
    const sent = effects.filter((e) => e.type === "send");
    assert.deepEqual(sent, [
      {
        type: "send",
        afterPersist: true, // leaves once the install is durable
        message: {
          type: "installSnapshotResponse",
          term: 3,
          from: "n2",
          to: "n1",
          success: true,
          matchIndex: 2,
        },
      },
    ]);
    const installed = step(after, { type: "snapshotInstalled", index: 2, term: 1 }).state;
    assert.equal(installed.appliedIndex, 2);
  });

  test("a conflicting log, or one too short, is discarded", () => {
    const state = createState({ id: "n2", restored: restoredFrom(voters, [1, 1, 2, 2]) });
    const conflict = run(state, { type: "message", message: snapshotFrom(3, 3, 3) });
    assert.equal(installs(conflict.effects)[0]?.discardLog, true);
    assert.equal(conflict.state.log.lastIndex, 3);
    assert.equal(conflict.state.log.lastTerm, 3);
    const beyond = run(state, { type: "message", message: snapshotFrom(3, 7, 3) });
    assert.equal(installs(beyond.effects)[0]?.discardLog, true);
    assert.equal(beyond.state.log.lastIndex, 7);
    assert.equal(beyond.state.commitIndex, 7);
  });

  test("a snapshot we already cover is acknowledged without an install", () => {
    const restored = restoredFrom(voters, [1, 1, 2, 2], { appliedIndex: 3 });
    const state = createState({ id: "n2", restored });
    const { effects } = run(state, { type: "message", message: snapshotFrom(3, 3, 2) });
    assert.deepEqual(installs(effects), []);
    assert.equal(messages(effects, "installSnapshotResponse")[0]?.matchIndex, 3);
  });

  test("a node restarts from its snapshot plus the log after it", () => {
    const state = createState({
      id: "n2",
      restored: {
        hardState: { term: 2, votedFor: null },
        snapshotIndex: 10,
        snapshotTerm: 2,
        prevIndex: 10,
        prevTerm: 2,
        entries: [{ index: 11, term: 2, kind: "blank" }],
        memberships: [{ index: 10, membership: membershipOf(voters) }],
        appliedIndex: 10,
      },
    });
    assert.equal(state.commitIndex, 10);
    assert.equal(state.log.snapshotIndex, 10);
    assert.equal(state.log.lastIndex, 11);
    assert.deepEqual(state.applyingConfig.membership, membershipOf(voters));
  });
});
