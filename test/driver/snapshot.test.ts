/**
 * Snapshots driven by `Raft` (§7) on the memory network and memory stores: compaction by policy
 * and on demand, restart from snapshot plus log, catching up through a snapshot (a new member,
 * a partitioned follower), chunked streaming that resumes after failures, installs that crash,
 * stale chunks and superseded streams.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { NodeId } from "../../src/core/types.ts";
import { FatalError } from "../../src/driver/errors.ts";
import type { RaftOptionsConfig } from "../../src/driver/raft.ts";
import type { SnapshotChunk } from "../../src/net/network.ts";
import type { LogWrite } from "../../src/storage/log-store.ts";
import { MemoryLogStore } from "../../src/storage/memory.ts";
import type { MemorySnapshotStore } from "../../src/storage/memory-snapshot.ts";
import type { SnapshotMeta, SnapshotWriter } from "../../src/storage/snapshot-store.ts";
import { bytes, TestCluster, type TestNode, testConfig, waitMs } from "./harness.ts";

const ids = ["n1", "n2", "n3"];

/** Snapshots every 20 entries, 5 trailing entries kept, small windows and chunks. */
const snapConfig: RaftOptionsConfig = {
  ...testConfig,
  snapshotThreshold: 20,
  snapshotTrailingEntries: 5,
  maxWindowEntries: 10,
  snapshotChunkBytes: 100,
};

const clusters: TestCluster[] = [];

async function cluster(config: RaftOptionsConfig = snapConfig, nodes = ids): Promise<TestCluster> {
  const c = await TestCluster.started(nodes, config, { snapshotChunkBytes: 48 });
  clusters.push(c);
  await c.initializeAll();
  return c;
}

after(async () => {
  for (const c of clusters) await c.shutdown();
});

/** Writes `count` commands of about 50 bytes each (so a snapshot spans many chunks). */
async function writeMany(node: TestNode, count: number, tag: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    await node.raft.write(bytes(`${tag}-${i}-${"x".repeat(40)}`));
  }
}

/** Waits until every node in `among` applied what the leader applied, with the same commands. */
async function sameState(c: TestCluster, leader: TestNode, among: readonly NodeId[] = ids) {
  const applied = leader.raft.metrics.current.lastApplied;
  await c.waitAll(among, (m) => m.lastApplied >= applied, `applied ${applied}`);
  for (const id of among) {
    assert.deepEqual(c.node(id).machine.applied, leader.machine.applied, `${id}'s state`);
  }
}

async function currentMeta(node: TestNode): Promise<SnapshotMeta | null> {
  return (await node.snapshots?.current())?.meta ?? null;
}

describe("Raft snapshots: compaction", () => {
  it("snapshots at the policy point, purges all but the trailing entries, and restarts from snapshot plus log", async () => {
    const c = await cluster();
    const leader = await c.leader();
    const seen = new Map<NodeId, number[]>();
    for (const id of ids) {
      const indexes: number[] = [];
      seen.set(id, indexes);
      c.node(id).raft.metrics.subscribe((m) => {
        if (m.snapshotIndex !== indexes[indexes.length - 1] && m.snapshotIndex > 0) {
          indexes.push(m.snapshotIndex);
        }
      });
    }
    await writeMany(leader, 50, "a");
    await c.waitAll(
      ids,
      (m) => m.snapshotIndex >= 40 && m.firstLogIndex === m.snapshotIndex - 5 + 1,
      "two snapshots, log purged to the trailing entries",
    );
    for (const id of ids) {
      const node = c.node(id);
      const indexes = seen.get(id) as number[];
      // The first snapshot comes once 20 entries were applied, the next 20 later.
      assert.ok((indexes[0] as number) >= 20 && (indexes[0] as number) < 40, `${id}: ${indexes}`);
      const m = node.raft.metrics.current;
      const meta = await currentMeta(node);
      assert.equal(meta?.index, m.snapshotIndex);
      assert.equal(meta?.term, m.snapshotTerm);
      assert.equal(node.store.firstIndex, m.firstLogIndex);
    }
    await sameState(c, leader);
    const before = leader.machine.applied.slice();
    const snapshotOf = new Map(
      ids.map((id) => [id, c.node(id).raft.metrics.current.snapshotIndex]),
    );
    for (const id of ids) await c.stop(id);
    for (const id of ids) await c.restart(id);
    for (const id of ids) {
      // Restored from its snapshot on start, before any message arrived.
      assert.deepEqual(c.node(id).machine.restores, [snapshotOf.get(id)]);
    }
    const next = await c.leader();
    await next.raft.write(bytes("after-restart"));
    await sameState(c, next);
    assert.deepEqual(next.machine.applied, [...before, "after-restart"]);
  });

  it("triggerSnapshot snapshots on demand, on the leader and on a follower", async () => {
    const c = await cluster({ ...snapConfig, snapshotThreshold: 0 });
    const leader = await c.leader();
    await writeMany(leader, 12, "t");
    const applied = leader.raft.metrics.current.lastApplied;
    const index = await leader.raft.triggerSnapshot();
    assert.equal(index, applied);
    assert.equal((await currentMeta(leader))?.index, index);
    await leader.raft.metrics.waitFor((m) => m.firstLogIndex === index - 5 + 1, {
      timeoutMs: waitMs,
    });
    // Nothing applied since: the same snapshot.
    assert.equal(await leader.raft.triggerSnapshot(), index);
    const follower = c.node(ids.find((id) => id !== leader.id) as NodeId);
    await follower.raft.metrics.waitFor((m) => m.lastApplied >= applied, { timeoutMs: waitMs });
    const followerIndex = await follower.raft.triggerSnapshot();
    assert.ok(followerIndex >= applied);
    assert.equal((await currentMeta(follower))?.index, followerIndex);
  });

  it("without a snapshotStore the node never snapshots and refuses chunks", async () => {
    const c = await TestCluster.started(ids, { ...testConfig, snapshotThreshold: 2 });
    clusters.push(c);
    await c.initializeAll();
    const leader = await c.leader();
    await writeMany(leader, 5, "n");
    await assert.rejects(leader.raft.triggerSnapshot(), /snapshotStore/);
    assert.equal(leader.raft.metrics.current.snapshotIndex, 0);
    assert.equal(leader.store.firstIndex, 1);
    const chunk = chunkFor(leader.id, 1, { from: "n9", index: 3, offset: 0, data: bytes("x") });
    await assert.rejects(leader.raft.handleSnapshotChunk(chunk), /no snapshotStore/);
  });
});

describe("Raft snapshots: catching up through a snapshot", () => {
  it("a node added after compaction receives the snapshot, then the log, and ends with the same state", async () => {
    const c = await cluster();
    const leader = await c.leader();
    await writeMany(leader, 60, "b");
    // The last snapshot the policy takes (at 60 or so) is durable and the log purged behind it.
    await leader.raft.metrics.waitFor((m) => m.snapshotIndex >= 60 && m.firstLogIndex > 55, {
      timeoutMs: waitMs,
    });
    const n4 = await c.addNode("n4");
    await leader.raft.changeMembership({ ...c.members, n4: n4.address });
    await sameState(c, leader, [...ids, "n4"]);
    assert.equal(n4.machine.restores.length, 1, `one snapshot installed: ${n4.machine.restores}`);
    const installed = n4.machine.restores[0] as number;
    assert.ok(installed >= 40, `installed ${installed}`);
    await leader.raft.write(bytes("after-join"));
    await sameState(c, leader, [...ids, "n4"]);
    // Its log starts after the snapshot: the entries before it were never sent.
    assert.ok(n4.store.firstIndex > installed - 5, `n4's log starts at ${n4.store.firstIndex}`);
    assert.ok(n4.raft.metrics.current.membership.voters.includes("n4"));
  });

  it("a follower partitioned for longer than the kept log catches up through a snapshot", async () => {
    const c = await cluster();
    const leader = await c.leader();
    await writeMany(leader, 5, "c");
    await sameState(c, leader);
    const lagging = c.node(ids.find((id) => id !== leader.id) as NodeId);
    c.network.isolate(lagging.id);
    await writeMany(leader, 60, "d");
    await leader.raft.metrics.waitFor((m) => m.firstLogIndex > lagging.store.lastIndex + 1, {
      timeoutMs: waitMs,
    });
    c.network.heal();
    await sameState(c, leader);
    assert.equal(lagging.machine.restores.length, 1);
    assert.equal(lagging.raft.metrics.current.snapshotIndex, lagging.machine.restores[0]);
  });
});

describe("Raft snapshots: reading the log for a lagging follower", () => {
  it("a leader whose store lags behind its log reads only what is durable (regression)", async () => {
    // Found by the chaos run: with entries appended in memory but not yet in the store, a
    // follower behind the in-memory window made the leader read past the store's end and stop.
    const c = await TestCluster.started(
      ids,
      { ...testConfig, maxWindowEntries: 10, snapshotThreshold: 0 },
      { snapshotChunkBytes: 48, newLogStore: () => new GatedLogStore() },
    );
    clusters.push(c);
    await c.initializeAll();
    const leader = await c.leader();
    const lagging = c.node(ids.find((id) => id !== leader.id) as NodeId);
    c.network.isolate(lagging.id);
    await writeMany(leader, 100, "m");
    const gate = leader.store as GatedLogStore;
    const durable = gate.lastIndex;
    gate.hold();
    const pending = Array.from({ length: 5 }, (_, i) => leader.raft.write(bytes(`gated-${i}`)));
    await leader.raft.metrics.waitFor((m) => m.lastLogIndex >= durable + 5, { timeoutMs: waitMs });
    c.network.heal();
    await lagging.raft.metrics.waitFor((m) => m.lastApplied >= durable, { timeoutMs: waitMs });
    assert.equal(
      leader.raft.metrics.current.stopped,
      false,
      String(leader.raft.metrics.current.error),
    );
    gate.release();
    await Promise.all(pending);
    await sameState(c, leader);
  });
});

describe("Raft snapshots: streaming", () => {
  it("a stream that loses chunks mid-way resumes from the acknowledged offset and completes", async () => {
    // One snapshot, on demand: the stream is of it alone.
    const c = await cluster({ ...snapConfig, snapshotThreshold: 0 });
    const leader = await c.leader();
    const lagging = c.node(ids.find((id) => id !== leader.id) as NodeId);
    c.network.isolate(lagging.id);
    await writeMany(leader, 60, "e");
    await leader.raft.triggerSnapshot();
    await leader.raft.metrics.waitFor((m) => m.firstLogIndex > 30, { timeoutMs: waitMs });
    const snapshot = await leader.snapshots?.current();
    assert.ok(snapshot && snapshot.size > 1000, `a snapshot of ${snapshot?.size} bytes`);
    // Lose the chunk at offset 500 twice and the one at 1000 once.
    const losses = new Map([
      [500, 2],
      [1000, 1],
    ]);
    const delivered: { offset: number; length: number }[] = [];
    let dropped = 0;
    c.network.setChunkFilter((_from, to, chunk) => {
      if (to !== lagging.id) return true;
      const left = losses.get(chunk.offset) ?? 0;
      if (left > 0 && chunk.data.length > 0) {
        losses.set(chunk.offset, left - 1);
        dropped++;
        return false;
      }
      delivered.push({ offset: chunk.offset, length: chunk.data.length });
      return true;
    });
    c.network.heal();
    await sameState(c, leader);
    assert.equal(dropped, 3);
    assert.deepEqual(lagging.machine.restores, [snapshot.meta.index]);
    // Resumed, not restarted: nothing before a lost chunk was sent again, and the bytes sent
    // are the snapshot plus, per loss, the chunks in flight behind the lost one (2 at most).
    const sent = delivered.filter((d) => d.length > 0);
    const total = sent.reduce((n, d) => n + d.length, 0);
    assert.ok(total >= snapshot.size && total <= snapshot.size + 3 * 2 * 100, `${total} bytes`);
    assert.equal(sent.filter((d) => d.offset === 0).length, 1, "the start was sent once");
    const before500 = sent.filter((d) => d.offset < 500);
    assert.equal(before500.length, 5, "each chunk before the first loss was sent once");
  });

  it("a newer snapshot supersedes a running stream: the old one stops, the new one is installed", async () => {
    const c = await cluster({ ...snapConfig, snapshotThreshold: 0 });
    const leader = await c.leader();
    const lagging = c.node(ids.find((id) => id !== leader.id) as NodeId);
    c.network.isolate(lagging.id);
    await writeMany(leader, 30, "f");
    const first = await leader.raft.triggerSnapshot();
    await leader.raft.metrics.waitFor((m) => m.firstLogIndex > 10, { timeoutMs: waitMs });
    // The first snapshot's chunks never arrive: its stream retries until superseded.
    const order: number[] = [];
    let firstTried!: () => void;
    const tried = new Promise<void>((resolve) => {
      firstTried = resolve;
    });
    c.network.setChunkFilter((_from, to, chunk) => {
      if (to !== lagging.id) return true;
      order.push(chunk.snapshot.lastIncludedIndex);
      if (chunk.snapshot.lastIncludedIndex === first) {
        firstTried();
        return false;
      }
      return true;
    });
    c.network.heal();
    await tried;
    await writeMany(leader, 5, "g");
    const second = await leader.raft.triggerSnapshot();
    assert.ok(second > first);
    await sameState(c, leader);
    assert.deepEqual(lagging.machine.restores, [second]);
    const firstOfSecond = order.indexOf(second);
    assert.ok(firstOfSecond > 0);
    assert.ok(
      order.slice(firstOfSecond).every((index) => index === second),
      `no chunk of ${first} after the stream of ${second} began: ${order}`,
    );
  });

  it("a chunk of a stale term is answered with the current term and not written", async () => {
    const c = await cluster();
    const leader = await c.leader();
    await writeMany(leader, 3, "h");
    const follower = c.node(ids.find((id) => id !== leader.id) as NodeId);
    await follower.raft.metrics.waitFor((m) => m.leaderId === leader.id, { timeoutMs: waitMs });
    const { term } = follower.raft.metrics.current;
    const held = follower.snapshots?.storedBytes;
    for (const done of [false, true]) {
      const chunk = chunkFor(follower.id, term - 1, {
        from: leader.id,
        index: 1000,
        offset: 0,
        data: bytes("stale bytes"),
        done,
      });
      const answer = await follower.raft.handleSnapshotChunk(chunk);
      assert.deepEqual(answer, {
        term,
        from: follower.id,
        to: leader.id,
        offset: 0,
        answer: null,
      });
    }
    assert.equal(follower.snapshots?.storedBytes, held);
    assert.equal(follower.raft.metrics.current.snapshotIndex, 0);
  });

  it("a chunk beyond the bytes held is answered with the offset needed; an overlap is skipped", async () => {
    const c = await cluster();
    const leader = await c.leader();
    const follower = c.node(ids.find((id) => id !== leader.id) as NodeId);
    await follower.raft.metrics.waitFor((m) => m.leaderId === leader.id, { timeoutMs: waitMs });
    const { term } = follower.raft.metrics.current;
    const send = (offset: number, text: string) =>
      follower.raft.handleSnapshotChunk(
        chunkFor(follower.id, term, { from: leader.id, index: 500, offset, data: bytes(text) }),
      );
    assert.equal((await send(50, "gap")).offset, 0);
    assert.equal((await send(0, "0123456789")).offset, 10);
    assert.equal((await send(5, "56789abcde")).offset, 15);
    assert.equal(follower.snapshots?.storedBytes, 15);
  });
});

describe("Raft snapshots: failures during install", () => {
  it("a snapshot store failing at commit stops the follower with its previous state intact; it recovers", async () => {
    const c = await cluster();
    const leader = await c.leader();
    const lagging = c.node(ids.find((id) => id !== leader.id) as NodeId);
    await writeMany(leader, 25, "i");
    await lagging.raft.metrics.waitFor((m) => m.snapshotIndex >= 20, { timeoutMs: waitMs });
    await sameState(c, leader);
    const ownSnapshot = await currentMeta(lagging);
    const stateBefore = lagging.machine.applied.slice();
    const failing = new FailingCommitStore(lagging.snapshots as MemorySnapshotStore);
    await c.restart(lagging.id, { snapshots: failing as unknown as MemorySnapshotStore });
    const restarted = c.node(lagging.id);
    c.network.isolate(lagging.id);
    // Isolated, it applies nothing more, so builds nothing: the next commit is the install's.
    failing.armed = true;
    await writeMany(leader, 60, "j");
    await leader.raft.metrics.waitFor((m) => m.firstLogIndex > restarted.store.lastIndex + 1, {
      timeoutMs: waitMs,
    });
    const logBefore = restarted.store.lastIndex;
    c.network.heal();
    const error = await restarted.raft.closed;
    assert.ok(error instanceof FatalError, String(error));
    assert.equal(failing.commits, 1);
    // Previous state intact: its snapshot, its log, its state machine.
    assert.deepEqual(await failing.inner.current().then((s) => s?.meta), ownSnapshot);
    assert.equal(restarted.store.lastIndex, logBefore);
    assert.deepEqual(restarted.machine.applied, stateBefore);
    await c.restart(lagging.id, { snapshots: failing.inner });
    await sameState(c, leader);
  });

  it("a state machine whose snapshot stream fails stops its node; nothing half-built is current", async () => {
    const c = await cluster({ ...snapConfig, snapshotThreshold: 0 });
    const leader = await c.leader();
    await writeMany(leader, 10, "s");
    leader.machine.failSnapshots = true;
    await assert.rejects(leader.raft.triggerSnapshot(), FatalError);
    const error = await leader.raft.closed;
    assert.ok(error instanceof FatalError);
    assert.match(error.message, /state machine snapshot failed/);
    assert.equal(await currentMeta(leader), null);
    // The others elect a new leader and go on.
    const rest = ids.filter((id) => id !== leader.id);
    const next = await c.leader(rest);
    await next.raft.write(bytes("after"));
  });

  it("a node stopped in the middle of a transfer restarts on what it had and catches up", async () => {
    const c = await cluster();
    const leader = await c.leader();
    const lagging = c.node(ids.find((id) => id !== leader.id) as NodeId);
    c.network.isolate(lagging.id);
    await writeMany(leader, 60, "k");
    await leader.raft.metrics.waitFor((m) => m.firstLogIndex > 30, { timeoutMs: waitMs });
    let received = 0;
    let halfway!: () => void;
    const stalled = new Promise<void>((resolve) => {
      halfway = resolve;
    });
    c.network.setChunkFilter((_from, to) => {
      if (to !== lagging.id) return true;
      if (received >= 5) {
        halfway();
        return false;
      }
      received++;
      return true;
    });
    c.network.heal();
    await stalled;
    // The crash image: the log, and the snapshot store with a partial copy aside.
    const store = lagging.store.clone();
    const snapshots = (lagging.snapshots as MemorySnapshotStore).clone();
    assert.ok(snapshots.storedBytes > 0, "part of the snapshot is aside");
    assert.equal(await snapshots.current(), null, "no snapshot is current yet");
    await c.stop(lagging.id);
    c.network.setChunkFilter(null);
    await c.restart(lagging.id, { store, snapshots });
    await sameState(c, leader);
    assert.equal(c.node(lagging.id).machine.restores.length, 1);
  });

  it("a crash between the snapshot's commit and the log's reset is finished on restart", async () => {
    // Only an install from the leader resets a log: the lagging node's is the one that fails.
    const c = await TestCluster.started(ids, snapConfig, {
      snapshotChunkBytes: 48,
      newLogStore: () => new FailingResetLogStore(),
    });
    clusters.push(c);
    await c.initializeAll();
    const leader = await c.leader();
    const lagging = c.node(ids.find((id) => id !== leader.id) as NodeId);
    const failingLog = lagging.store as FailingResetLogStore;
    c.network.isolate(lagging.id);
    await writeMany(leader, 60, "l");
    await leader.raft.metrics.waitFor((m) => m.firstLogIndex > 30, { timeoutMs: waitMs });
    c.network.heal();
    const error = await c.node(lagging.id).raft.closed;
    assert.ok(error instanceof FatalError, String(error));
    const committed = await currentMeta(c.node(lagging.id));
    assert.ok(committed !== null, "the snapshot was committed");
    assert.ok(failingLog.lastIndex < committed.index, "the log was not reset");
    failingLog.failReset = false;
    await c.restart(lagging.id);
    const restarted = c.node(lagging.id);
    assert.deepEqual(restarted.machine.restores, [committed.index]);
    assert.equal(restarted.store.firstIndex, committed.index + 1);
    await sameState(c, leader);
  });
});

function chunkFor(
  to: NodeId,
  term: number,
  o: { from: NodeId; index: number; offset: number; data: Uint8Array; done?: boolean },
): SnapshotChunk {
  return {
    snapshot: {
      type: "installSnapshot",
      term,
      from: o.from,
      to,
      lastIncludedIndex: o.index,
      lastIncludedTerm: term,
      membership: { voters: ids, learners: [], addresses: {} },
    },
    offset: o.offset,
    data: o.data,
    done: o.done ?? false,
  };
}

/** A MemorySnapshotStore whose writers' commit fails (a disk failure at the atomic point). */
class FailingCommitStore {
  armed = false;
  commits = 0;
  constructor(readonly inner: MemorySnapshotStore) {}
  current() {
    return this.inner.current();
  }
  read(meta?: SnapshotMeta, fromOffset?: number) {
    return this.inner.read(meta, fromOffset);
  }
  close() {
    return this.inner.close();
  }
  get storedBytes() {
    return this.inner.storedBytes;
  }
  async begin(meta: SnapshotMeta): Promise<SnapshotWriter> {
    const writer = await this.inner.begin(meta);
    return {
      meta: writer.meta,
      get offset() {
        return writer.offset;
      },
      write: (chunk, offset) => writer.write(chunk, offset),
      abort: () => writer.abort(),
      commit: async () => {
        if (!this.armed) return writer.commit();
        this.commits++;
        throw new Error("disk failed at commit");
      },
    };
  }
}

/** A MemoryLogStore whose reset fails (a crash right after an install's commit). */
class FailingResetLogStore extends MemoryLogStore {
  failReset = true;
  override async reset(index: number, term: number): Promise<void> {
    if (this.failReset) throw new Error("crashed before the log was reset");
    return super.reset(index, term);
  }
}

/** A MemoryLogStore whose writes wait while held (a slow disk): reads see only what was written. */
class GatedLogStore extends MemoryLogStore {
  #gate: Promise<void> | null = null;
  #open = () => {};

  /** Later writes wait until `release()`. */
  hold(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  release(): void {
    this.#gate = null;
    this.#open();
  }

  override async write(batch: LogWrite): Promise<void> {
    if (this.#gate) await this.#gate;
    return super.write(batch);
  }
}
