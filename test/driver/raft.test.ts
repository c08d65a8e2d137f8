import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  BackpressureError,
  FatalError,
  LeadershipLostError,
  NotLeaderError,
  ShutdownError,
  TimeoutError,
} from "../../src/driver/errors.ts";
import { Raft } from "../../src/driver/raft.ts";
import { ApplyFailure } from "../../src/driver/state-machine.ts";
import { MemoryNetwork } from "../../src/net/memory.ts";
import { MemoryLogStore } from "../../src/storage/memory.ts";
import { bytes, RecordingStateMachine, TestCluster, testConfig, text, waitMs } from "./harness.ts";

const ids = ["n1", "n2", "n3"];
const clusters: TestCluster[] = [];

async function cluster(nodes = ids, config = testConfig): Promise<TestCluster> {
  const c = await TestCluster.started(nodes, config);
  clusters.push(c);
  return c;
}

after(async () => {
  for (const c of clusters) await c.shutdown();
});

describe("Raft driver: formation", () => {
  it("uninitialized nodes stay passive: no timers, no messages, term 0", async () => {
    const c = await cluster();
    await Promise.resolve();
    for (const node of c.nodes.values()) {
      assert.equal(node.raft.state.timers.election, 0, "no election timer armed");
      assert.equal(node.raft.metrics.current.term, 0);
      assert.equal(node.raft.metrics.current.role, "follower");
    }
    assert.equal(c.network.totalCounters().sent, 0);
    await assert.rejects(c.node("n1").raft.write(bytes("x")), NotLeaderError);
  });

  it("after initialize on every node, one leader and agreement on term and commit", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    const { term } = leader.raft.metrics.current;
    // The leader's blank entry (index 2) commits the initial membership with it (§5.4.2).
    const { commitIndex: commit } = await leader.raft.metrics.waitFor((m) => m.commitIndex >= 2, {
      timeoutMs: waitMs,
    });
    await c.waitAll(
      ids,
      (m) => m.term === term && m.commitIndex === commit,
      "same term and commit",
    );
  });

  it("initialize on an initialized node is an error", async () => {
    const c = await cluster();
    await c.initializeAll();
    await assert.rejects(c.node("n1").raft.initialize(c.members), /already initialized/);
  });

  it("a single node initialized alone becomes leader and accepts 1,000 writes", async () => {
    const c = await cluster(["solo"]);
    await c.node("solo").raft.initialize({ solo: "mem://solo" });
    const leader = await c.leader();
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => leader.raft.write(bytes(`w${i}`))),
    );
    assert.deepEqual(
      results.map((r) => text(r.response)),
      Array.from({ length: 1000 }, (_, i) => `ok:w${i}`),
    );
    const indices = results.map((r) => r.index);
    assert.deepEqual(
      indices,
      [...indices].sort((a, b) => a - b),
      "indices follow write order",
    );
    assert.equal(leader.machine.applied.length, 1000);
  });
});

describe("Raft driver: lifecycle", () => {
  const vote = {
    type: "requestVote",
    term: 6,
    from: "c",
    to: "b",
    preVote: false,
    transfer: false,
    lastLogIndex: 0,
    lastLogTerm: 0,
  } as const;

  it("requests that arrive while start() loads the store are refused, not run on empty state", async () => {
    const store = new MemoryLogStore();
    await store.write({ hardState: { term: 5, votedFor: "b" }, entries: [] });
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slowStore = Object.assign(Object.create(store), {
      load: async () => {
        await gate;
        return store.load();
      },
    }) as MemoryLogStore;
    const raft = new Raft({
      id: "b",
      config: testConfig,
      logStore: slowStore,
      stateMachine: new RecordingStateMachine(),
      network: new MemoryNetwork().endpoint("b"),
    });
    const starting = raft.start();
    await assert.rejects(raft.handle(vote), /not been started/);
    release();
    await starting;
    assert.deepEqual(store.hardState, { term: 5, votedFor: "b" });
    await raft.shutdown();
  });

  it("a request still queued when the node stops is answered with null", async () => {
    const c = await cluster(["b"]);
    const pending = c.node("b").raft.handle(vote);
    await c.node("b").raft.shutdown();
    assert.equal(await pending, null);
  });
});

describe("Raft driver: writes and reads", () => {
  it("reads on the leader succeed; on followers they reject with NotLeaderError naming the leader", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    const { index } = await leader.raft.write(bytes("a"));
    await leader.raft.ensureLinearizable();
    assert.ok(leader.raft.metrics.current.lastApplied >= index);
    assert.equal(await leader.raft.read(() => leader.machine.applied.at(-1)), "a");
    for (const id of ids.filter((id) => id !== leader.id)) {
      const error = await c
        .node(id)
        .raft.ensureLinearizable()
        .then(
          () => null,
          (e: unknown) => e,
        );
      assert.ok(error instanceof NotLeaderError);
      assert.equal(error.leaderId, leader.id);
      assert.equal(error.leaderAddr, leader.address);
      await assert.rejects(c.node(id).raft.write(bytes("x")), NotLeaderError);
    }
  });

  it("six concurrent writers × 1,000 writes: all committed, applied in one order everywhere", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    const { term } = leader.raft.metrics.current;
    const writers = Array.from({ length: 6 }, async (_, w) => {
      for (let i = 0; i < 1000; i++) await leader.raft.write(bytes(`${w}-${i}`));
    });
    await Promise.all(writers);
    const last = leader.raft.metrics.current.lastApplied;
    await c.waitAll(ids, (m) => m.lastApplied >= last, "every node applied everything");
    const order = leader.machine.applied;
    assert.equal(order.length, 6000);
    for (const id of ids) assert.deepEqual(c.node(id).machine.applied, order);
    for (let w = 0; w < 6; w++) {
      const mine = order.filter((cmd) => cmd.startsWith(`${w}-`));
      assert.deepEqual(
        mine,
        Array.from({ length: 1000 }, (_, i) => `${w}-${i}`),
      );
    }
    assert.equal((await c.leader()).id, leader.id, "no leader change");
    assert.equal(leader.raft.metrics.current.term, term, "no term change");
  });

  it("writes from separate callbacks of one event-loop turn leave as one append and one AppendEntries per follower", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    await leader.raft.write(bytes("settle"));
    const appendsBefore = c.network.counters("appendEntries").sent;
    const storeWritesBefore = leader.store.writeCount;
    // Timers due together run one after another in the same turn, each followed by its own
    // microtasks, as the callbacks of HTTP requests that arrived together do.
    const writes = await new Promise<Promise<unknown>[]>((resolve) => {
      const started: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) {
        setTimeout(() => {
          started.push(leader.raft.write(bytes(`t${i}`)));
          if (started.length === 20) resolve(started);
        }, 0);
      }
    });
    await Promise.all(writes);
    const followers = ids.length - 1;
    assert.ok(
      c.network.counters("appendEntries").sent - appendsBefore <= 2 * followers,
      "20 writes of one turn sent at most 2 AppendEntries per follower",
    );
    assert.ok(leader.store.writeCount - storeWritesBefore <= 2, "and at most 2 LogStore writes");
  });

  it("past maxPendingWrites, writes are rejected at once (backpressure)", async () => {
    const c = await cluster(ids, { ...testConfig, maxPendingWrites: 10 });
    await c.initializeAll();
    const leader = await c.leader();
    const writes = Array.from({ length: 25 }, (_, i) => leader.raft.write(bytes(`b${i}`)));
    const settled = await Promise.allSettled(writes);
    const rejected = settled.filter((s) => s.status === "rejected");
    assert.equal(rejected.length, 15);
    for (const r of rejected)
      assert.ok((r as PromiseRejectedResult).reason instanceof BackpressureError);
    assert.equal(settled.filter((s) => s.status === "fulfilled").length, 10);
    await leader.raft.write(bytes("after")); // the bound frees as writes apply
  });

  it("a deterministic state machine failure fails that write only", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    const [before, failed, afterwards] = await Promise.allSettled([
      leader.raft.write(bytes("one")),
      leader.raft.write(bytes("fail-two")),
      leader.raft.write(bytes("three")),
    ]);
    assert.equal(before.status, "fulfilled");
    assert.equal(failed.status, "rejected");
    assert.ok((failed as PromiseRejectedResult).reason instanceof ApplyFailure);
    assert.equal(afterwards.status, "fulfilled");
    assert.equal(leader.raft.metrics.current.stopped, false);
  });
});

describe("Raft driver: lease reads", () => {
  const leaseConfig = { ...testConfig, leaseReads: true };

  it("a leader holding its lease serves reads without a confirmation round", async () => {
    const c = await cluster(ids, leaseConfig);
    await c.initializeAll();
    const leader = await c.leader();
    await leader.raft.write(bytes("x"));
    await leader.raft.ensureLinearizable(); // a round a quorum answered: the lease starts
    const before = c.network.counters("heartbeat").sent;
    await leader.raft.ensureLinearizable();
    assert.equal(c.network.counters("heartbeat").sent, before, "no heartbeat was needed");
  });

  it("an isolated leader's lease runs out before another leader can be elected", async () => {
    const c = await cluster(ids, leaseConfig);
    await c.initializeAll();
    const old = await c.leader();
    await old.raft.write(bytes("x"));
    await old.raft.ensureLinearizable();
    c.network.isolate(old.id);
    const fresh = await c.leader(ids.filter((id) => id !== old.id));
    await fresh.raft.write(bytes("newer"));
    const error = await old.raft.ensureLinearizable({ timeoutMs: 500 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(error instanceof TimeoutError || error instanceof NotLeaderError, String(error));
    c.network.heal();
  });

  it("lease reads need CheckQuorum", () => {
    assert.throws(
      () => new TestCluster(["x"], { ...leaseConfig, checkQuorum: false }),
      /checkQuorum/,
    );
  });
});

describe("Raft driver: faults", () => {
  it("isolating the leader elects a new one; healing rejoins the old one as follower; no acknowledged write is lost", async () => {
    const c = await cluster();
    await c.initializeAll();
    const old = await c.leader();
    const acknowledged: string[] = [];
    for (let i = 0; i < 50; i++) {
      await old.raft.write(bytes(`before-${i}`));
      acknowledged.push(`before-${i}`);
    }
    c.network.isolate(old.id);
    const rest = ids.filter((id) => id !== old.id);
    const fresh = await c.leader(rest);
    assert.notEqual(fresh.id, old.id);
    for (let i = 0; i < 50; i++) {
      await fresh.raft.write(bytes(`after-${i}`));
      acknowledged.push(`after-${i}`);
    }
    const { term } = fresh.raft.metrics.current;
    c.network.heal();
    const last = fresh.raft.metrics.current.lastApplied;
    await c.waitAll(ids, (m) => m.lastApplied >= last && m.leaderId === fresh.id, "rejoined");
    assert.equal(old.raft.metrics.current.role, "follower");
    assert.equal(fresh.raft.metrics.current.role, "leader");
    assert.equal(
      fresh.raft.metrics.current.term,
      term,
      "PreVote: the rejoining node did not disrupt",
    );
    for (const id of ids) {
      const applied = c.node(id).machine.applied;
      for (const w of acknowledged) assert.ok(applied.includes(w), `${id} lost ${w}`);
    }
  });

  it("a write on a deposed leader whose entry is replaced rejects with LeadershipLostError", async () => {
    const c = await cluster();
    await c.initializeAll();
    const old = await c.leader();
    await old.raft.write(bytes("base"));
    c.network.isolate(old.id);
    const doomed = old.raft.write(bytes("doomed"));
    const fresh = await c.leader(ids.filter((id) => id !== old.id));
    await fresh.raft.write(bytes("winner"));
    c.network.heal();
    await assert.rejects(doomed, LeadershipLostError);
    const last = fresh.raft.metrics.current.lastApplied;
    await c.waitAll(ids, (m) => m.lastApplied >= last, "caught up");
    assert.ok(!old.machine.applied.includes("doomed"));
    assert.deepEqual(old.machine.applied, fresh.machine.applied);
  });

  it("ensureLinearizable on a leader partitioned away rejects or times out", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    await leader.raft.write(bytes("x"));
    c.network.isolate(leader.id);
    const error = await leader.raft.ensureLinearizable({ timeoutMs: 1000 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(error instanceof TimeoutError || error instanceof NotLeaderError, String(error));
    c.network.heal();
  });

  it("restart: every node restarts from its LogStore and rebuilds the same state", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    for (let i = 0; i < 100; i++) await leader.raft.write(bytes(`r${i}`));
    const last = leader.raft.metrics.current.lastApplied;
    await c.waitAll(ids, (m) => m.lastApplied >= last, "applied before restart");
    const before = leader.machine.applied.slice();
    for (const id of ids) await c.stop(id);
    for (const id of ids) await c.restart(id);
    const next = await c.leader();
    await next.raft.write(bytes("after-restart"));
    const lastAfter = next.raft.metrics.current.lastApplied;
    await c.waitAll(ids, (m) => m.lastApplied >= lastAfter, "applied after restart");
    for (const id of ids)
      assert.deepEqual(c.node(id).machine.applied, [...before, "after-restart"]);
  });

  it("a LogStore that fails stops that node cleanly; the rest of the cluster carries on", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    await leader.raft.write(bytes("ok"));
    leader.store.fail(new Error("disk on fire"));
    const pending = leader.raft.write(bytes("doomed"));
    const error = await leader.raft.closed;
    assert.ok(error instanceof FatalError);
    assert.match(String((error.cause as Error).message), /disk on fire/);
    await assert.rejects(pending, FatalError);
    await assert.rejects(leader.raft.write(bytes("more")), FatalError);
    assert.equal(leader.raft.metrics.current.stopped, true);
    c.network.unregister(leader.address);
    const rest = ids.filter((id) => id !== leader.id);
    const fresh = await c.leader(rest);
    await fresh.raft.write(bytes("carry-on"));
    assert.ok(fresh.machine.applied.includes("carry-on"));
  });

  it("a thrown state machine error stops the node", async () => {
    const c = await cluster(["solo"]);
    const node = c.node("solo");
    await node.raft.initialize({ solo: "mem://solo" });
    await c.leader();
    await assert.rejects(node.raft.write(bytes("crash")), FatalError);
    assert.ok((await node.raft.closed) instanceof FatalError);
  });

  it("shutdown rejects pending requests with ShutdownError and resolves when quiet", async () => {
    const c = await cluster();
    await c.initializeAll();
    const leader = await c.leader();
    c.network.isolate(leader.id); // nothing can commit
    const pending = leader.raft.write(bytes("stuck"));
    await leader.raft.shutdown();
    await assert.rejects(pending, ShutdownError);
    assert.equal(await leader.raft.closed, null);
    await assert.rejects(leader.raft.write(bytes("x")), ShutdownError);
  });
});
