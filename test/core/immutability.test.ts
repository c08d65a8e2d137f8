/**
 * `step` never mutates the state it is given (DESIGN.md, "The core"): old states stay valid, so a
 * simulator can fork and a test can compare before and after. Every state below is deep-frozen
 * before it is stepped (see freeze.ts) and compared with a snapshot afterwards.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createState, type Entry, entryAt, type RaftState, step } from "../../mod.ts";
import { deepFreeze, observable } from "./freeze.ts";
import { Cluster, entriesOfTerms, logTerms, msg, restoredFrom, run } from "./harness.ts";

function dataAt(state: RaftState, index: number): number[] {
  const entry = entryAt(state.log, index) as Entry;
  assert.equal(entry.kind, "command");
  return entry.kind === "command" ? [...entry.data] : [];
}

describe("step never mutates its input state", () => {
  it("the freeze used by these tests does stop mutation", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"]);
    const leader = deepFreeze(cluster.elect("a"));
    assert.throws(() => {
      (leader as { term: number }).term = 9;
    }, TypeError);
    assert.throws(() => (leader.progress as Map<string, unknown>).set("z", {}), TypeError);
    assert.throws(() => (leader.progress as Map<string, unknown>).delete("b"), TypeError);
    assert.throws(() => {
      (leader.progress.get("b") as { match: number }).match = 0;
    }, TypeError);
    assert.throws(() => {
      (leader.log as { lastIndex: number }).lastIndex = 0;
    }, TypeError);
    assert.throws(() => {
      (leader.timers as { election: number }).election = 0;
    }, TypeError);
  });

  it("a whole cluster's life under frozen inputs: election, writes, partition, re-election, repair", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"], { guard: true });
    cluster.elect("a");
    for (let i = 0; i < 5; i++) {
      cluster.step("a", { type: "propose", requestId: i, commands: [new Uint8Array([i])] });
      cluster.deliver();
    }
    cluster.heartbeat("a");
    // a is cut off with an uncommitted write; b takes over; a steps down by CheckQuorum.
    cluster.isolate("a");
    cluster.step("a", { type: "propose", requestId: 9, commands: [new Uint8Array([9])] });
    cluster.deliver();
    cluster.fire("a", "election");
    cluster.fire("a", "election");
    assert.equal(cluster.state("a").role, "follower");
    cluster.fire("c", "election");
    cluster.deliver();
    cluster.fire("b", "election");
    cluster.deliver();
    assert.equal(cluster.state("b").role, "leader");
    cluster.step("b", { type: "propose", requestId: 10, commands: [new Uint8Array([10])] });
    cluster.deliver();
    // a rejoins: its entry 8 of term 1 is overwritten.
    cluster.heal();
    cluster.heartbeat("b");
    cluster.step("b", { type: "propose", requestId: 11, commands: [new Uint8Array([11])] });
    cluster.deliver();
    cluster.heartbeat("b");
    assert.deepEqual(logTerms(cluster.state("a")), logTerms(cluster.state("b")));
    assert.equal(cluster.state("a").commitIndex, cluster.state("b").commitIndex);
    assert.ok(cluster.trace.length > 100, `only ${cluster.trace.length} steps`);
  });

  it("Figure 7 (f) repaired under frozen inputs", () => {
    const voters = ["L", "V", "F"];
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const cluster = Cluster.restore(
      {
        L: restoredFrom(voters, leaderLog, { term: 7 }),
        V: restoredFrom(voters, leaderLog, { term: 7 }),
        F: restoredFrom(voters, [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
      },
      { guard: true },
    );
    cluster.elect("L");
    assert.deepEqual(logTerms(cluster.state("F")), [...leaderLog, 8]);
  });

  it("forks of one state are independent: appends to one are invisible to the other", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"]);
    const leader = deepFreeze(cluster.elect("a"));
    const before = observable(leader);
    const last = leader.log.lastIndex;

    const left = step(leader, { type: "propose", requestId: 1, commands: [new Uint8Array([1])] });
    const right = step(leader, { type: "propose", requestId: 2, commands: [new Uint8Array([2])] });
    const leftMore = run(left.state, {
      type: "propose",
      requestId: 3,
      commands: [new Uint8Array([3]), new Uint8Array([4])],
    });

    assert.deepEqual(dataAt(left.state, last + 1), [1]);
    assert.deepEqual(dataAt(right.state, last + 1), [2]);
    assert.deepEqual(dataAt(leftMore.state, last + 3), [4]);
    assert.equal(right.state.log.lastIndex, last + 1);
    assert.deepEqual(dataAt(right.state, last + 1), [2], "still 2 after the left fork grew");
    assert.equal(leader.log.lastIndex, last);
    assert.deepEqual(observable(leader), before);
  });

  it("a follower's truncation does not reach the state it came from", () => {
    const follower = deepFreeze(
      createState({ id: "b", restored: restoredFrom(["a", "b", "c"], [1, 1, 1], { term: 1 }) }),
    );
    const before = observable(follower);
    const repaired = step(
      follower,
      msg({
        type: "appendEntries",
        term: 2,
        from: "a",
        to: "b",
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: entriesOfTerms([2, 2], 2),
        leaderCommit: 0,
      }),
    );
    assert.deepEqual(logTerms(repaired.state), [1, 2, 2]);
    assert.deepEqual(logTerms(follower), [1, 1, 1]);
    // The old state can still be stepped on its own path.
    const other = step(follower, { type: "persisted", index: 3, term: 1, epoch: 0 });
    assert.deepEqual(logTerms(other.state), [1, 1, 1]);
    assert.deepEqual(observable(follower), before);
  });

  it("step is deterministic: the same state and input give the same result", () => {
    const cluster = Cluster.bootstrap(["a", "b", "c"]);
    const leader = deepFreeze(cluster.elect("a"));
    const input = { type: "propose", requestId: 1, commands: [new Uint8Array([1, 2])] } as const;
    const one = step(leader, input);
    const two = step(leader, input);
    assert.deepEqual(two.effects, one.effects);
    assert.deepEqual(observable(two.state), observable(one.state));
  });
});
