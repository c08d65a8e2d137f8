/**
 * Flow control of replication (§5.3 with etcd's progress states): a follower in probe gets one
 * AppendEntries until it answers; in replicate the leader pipelines up to maxInflight batches,
 * each bounded by maxBatchEntries and maxBatchBytes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type AppendEntriesRequest,
  type Effect,
  type Input,
  type NodeId,
  step,
} from "../../mod.ts";
import { ack, Cluster, electedLeader, messages, msg, run } from "./harness.ts";

function reject(from: NodeId, rejectedIndex: number, lastIndex: number): Input {
  return msg({
    type: "appendEntriesResponse",
    term: 2,
    from,
    to: "a",
    success: false,
    matchIndex: 0,
    rejectedIndex,
    conflictTerm: 0,
    conflictIndex: lastIndex + 1,
  });
}

function propose(count: number, bytes = 8): Input {
  const commands = Array.from({ length: count }, (_, i) => new Uint8Array(bytes).fill(i));
  return { type: "propose", requestId: count, commands };
}

function appendsTo(effects: readonly Effect[], to: NodeId): AppendEntriesRequest[] {
  return messages(effects, "appendEntries").filter((m) => m.to === to);
}

/** [first, last] index of each AppendEntries; [prev + 1, prev] for an empty one. */
function ranges(appends: readonly AppendEntriesRequest[]): [number, number][] {
  return appends.map((m) => [m.prevLogIndex + 1, m.prevLogIndex + m.entries.length]);
}

describe("§5.3 flow control: probe", () => {
  it("§5.3 a probing follower gets one AppendEntries until it answers", () => {
    let leader = electedLeader();
    assert.equal(leader.progress.get("b")?.state, "probe");
    // c answers the probe and moves to replicate; b's answer is still on its way.
    leader = step(leader, ack("c", 2)).state;
    assert.equal(leader.progress.get("c")?.state, "replicate");

    for (let i = 0; i < 3; i++) {
      const { state, effects } = step(leader, propose(1));
      leader = state;
      assert.equal(appendsTo(effects, "b").length, 0, "b's probe is unanswered");
      assert.equal(appendsTo(effects, "c").length, 1, "c is replicating");
    }

    // b answers the probe: it has everything up to 2, and gets 3..5 in one batch.
    const answered = step(leader, ack("b", 2));
    assert.equal(answered.state.progress.get("b")?.state, "replicate");
    assert.deepEqual(ranges(appendsTo(answered.effects, "b")), [[3, 5]]);
  });

  it("§5.3 after a rejection the leader probes again, one AppendEntries at a time", () => {
    let leader = electedLeader();
    leader = run(leader, ack("c", 2), propose(4)).state;
    // b's log is empty (it lost its disk): its rejection of the probe at 1 sends one probe
    // from index 1.
    const rejected = step(leader, reject("b", 1, 0));
    assert.equal(rejected.state.progress.get("b")?.state, "probe");
    assert.deepEqual(ranges(appendsTo(rejected.effects, "b")), [[1, 6]]);

    const more = step(rejected.state, propose(2));
    assert.equal(appendsTo(more.effects, "b").length, 0, "the new probe is unanswered");

    // A heartbeat answer proves b alive: the probe is resent (it may have been lost).
    const alive = step(
      more.state,
      msg({ type: "heartbeatResponse", term: 2, from: "b", to: "a", round: 0 }),
    );
    assert.deepEqual(ranges(appendsTo(alive.effects, "b")), [[1, 8]]);
  });
});

describe("§5.3 flow control: replicate", () => {
  it("§5.3 the leader pipelines up to maxInflight batches of maxBatchEntries", () => {
    let leader = electedLeader({ maxInflight: 3, maxBatchEntries: 2 });
    leader = step(leader, ack("c", 2)).state;

    const proposed = step(leader, propose(10)); // entries 3..12
    assert.deepEqual(ranges(appendsTo(proposed.effects, "c")), [
      [3, 4],
      [5, 6],
      [7, 8],
    ]);
    assert.deepEqual(proposed.state.progress.get("c")?.inflight, [4, 6, 8]);

    // Each acknowledgement frees room for one more batch.
    const first = step(proposed.state, ack("c", 4));
    assert.deepEqual(ranges(appendsTo(first.effects, "c")), [[9, 10]]);
    // A cumulative acknowledgement frees every batch it covers.
    const both = step(first.state, ack("c", 8));
    assert.deepEqual(ranges(appendsTo(both.effects, "c")), [[11, 12]]);
    const done = step(both.state, ack("c", 12));
    assert.equal(appendsTo(done.effects, "c").length, 0, "nothing left to send");
    assert.deepEqual(done.state.progress.get("c")?.inflight, []);
    assert.equal(done.state.commitIndex, 2, "a's own entries 3..12 are not durable yet");
  });

  it("§5.3 a batch is bounded by maxBatchBytes; a single larger entry goes alone", () => {
    // A 100-byte command counts as 124 bytes: two fit in 300, three do not.
    let leader = electedLeader({ maxBatchBytes: 300 });
    leader = step(leader, ack("c", 2)).state;
    const small = step(leader, propose(7, 100)); // entries 3..9
    assert.deepEqual(ranges(appendsTo(small.effects, "c")), [
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 9],
    ]);
    for (const m of appendsTo(small.effects, "c")) {
      const bytes = m.entries.reduce(
        (n, e) => n + (e.kind === "command" ? e.data.byteLength : 0),
        0,
      );
      assert.ok(bytes <= 300);
    }

    const big = step(small.state, propose(1, 1000)); // entry 10
    assert.deepEqual(ranges(appendsTo(big.effects, "c")), [[10, 10]]);
  });

  it("§5.3 maxInflight bounds the pipeline even for one-entry proposals", () => {
    let leader = electedLeader({ maxInflight: 2 });
    leader = step(leader, ack("c", 2)).state;
    const sent: AppendEntriesRequest[] = [];
    for (let i = 0; i < 5; i++) {
      const { state, effects } = step(leader, propose(1));
      leader = state;
      sent.push(...appendsTo(effects, "c"));
    }
    assert.deepEqual(ranges(sent), [
      [3, 3],
      [4, 4],
    ]);
    // When the pipeline drains, everything proposed meanwhile goes in one batch.
    assert.deepEqual(ranges(appendsTo(step(leader, ack("c", 4)).effects, "c")), [[5, 7]]);
  });

  // In replicate, `next` has moved past the lost batch and there is nothing left to send, so
  // no rejection would reveal the loss: the leader sends an empty AppendEntries at the end of
  // the log when a heartbeat answer shows the follower behind (as etcd does).
  it("§5.3 a lost AppendEntries in replicate is resent once the follower is heard from", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"]);
    cluster.elect("a");
    // c is cut off while entry 3 is written; the transport does not report the loss.
    cluster.isolate("c");
    cluster.step("a", { type: "propose", requestId: 1, commands: [new Uint8Array([1])] });
    cluster.deliver();
    assert.equal(cluster.state("a").commitIndex, 3);
    cluster.heal();
    // The cluster is idle: only heartbeats (and c's answers) flow.
    for (let round = 0; round < 5; round++) cluster.heartbeat("a");
    assert.equal(cluster.state("a").progress.get("c")?.match, 3, "c never gets entry 3");
    assert.equal(cluster.state("c").commitIndex, 3);
  });
});
