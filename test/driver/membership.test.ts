/**
 * Dynamic membership through the driver (§6, thesis §4): learners, joint consensus, a removed
 * leader stepping down, and leadership transfer (thesis §3.10), on whole `Raft` nodes over the
 * memory network. Every wait is on metrics or a promise, never a sleep.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { NodeId } from "../../src/core/types.ts";
import {
  AdminError,
  type AdminErrorCode,
  NotLeaderError,
  ShutdownError,
  TransferInProgressError,
} from "../../src/driver/errors.ts";
import { bytes, TestCluster, type TestNode } from "./harness.ts";

const clusters: TestCluster[] = [];

after(async () => {
  for (const c of clusters) await c.shutdown();
});

/** A cluster whose nodes all run; `initial` (default: all) form it, the others wait. */
async function cluster(
  ids: readonly NodeId[],
  initial: readonly NodeId[] = ids,
): Promise<TestCluster> {
  const c = new TestCluster(initial);
  clusters.push(c);
  await c.startAll();
  for (const id of ids) if (!initial.includes(id)) await c.addNode(id);
  const members = Object.fromEntries(initial.map((id) => [id, `mem://${id}`]));
  await Promise.all(initial.map((id) => c.node(id).raft.initialize(members)));
  return c;
}

const addresses = (ids: readonly NodeId[]) =>
  Object.fromEntries(ids.map((id) => [id, `mem://${id}`]));

/** Writes `prefix-0`, `prefix-1`… one after another until stopped; records what was acknowledged. */
function backgroundWriter(node: TestNode, prefix: string) {
  const acknowledged: string[] = [];
  let stopped = false;
  const done = (async () => {
    for (let i = 0; !stopped; i++) {
      await node.raft.write(bytes(`${prefix}-${i}`));
      acknowledged.push(`${prefix}-${i}`);
    }
  })();
  return {
    acknowledged,
    async stop(): Promise<string[]> {
      stopped = true;
      await done;
      return acknowledged;
    },
  };
}

async function rejectsWith(promise: Promise<unknown>, code: AdminErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof AdminError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** Waits until every node in `ids` applied everything `leader` applied; all agree on it. */
async function sameApplied(c: TestCluster, leader: TestNode, ids: readonly NodeId[]) {
  const last = leader.raft.metrics.current.commitIndex;
  await c.waitAll(ids, (m) => m.lastApplied >= last, `applied ${last}`);
  for (const id of ids) assert.deepEqual(c.node(id).machine.applied, leader.machine.applied, id);
}

const sorted = (ids: readonly NodeId[]) => [...ids].sort();

describe("Raft driver: membership changes", () => {
  it("1 → 5 voters: learners added (blocking), then promoted; writes keep committing", async () => {
    const all = ["n1", "n2", "n3", "n4", "n5"];
    const c = await cluster(all, ["n1"]);
    const leader = await c.leader(["n1"]);
    const writer = backgroundWriter(leader, "w");
    for (const id of all.slice(1)) {
      const { membership } = await leader.raft.addLearner(id, `mem://${id}`, { blocking: true });
      assert.ok(membership.learners.includes(id));
      const { matchIndex } = leader.raft.metrics.current.replication[id] ?? { matchIndex: 0 };
      assert.ok(matchIndex >= leader.raft.metrics.current.lastLogIndex - 100, "caught up");
    }
    assert.equal(c.node("n3").raft.metrics.current.role, "learner");
    const { membership } = await leader.raft.changeMembership(all);
    assert.deepEqual(sorted(membership.voters), all);
    assert.deepEqual(membership.learners, []);
    assert.equal(membership.outgoing, undefined);
    const acknowledged = await writer.stop();
    assert.ok(acknowledged.length > 0);
    await leader.raft.write(bytes("after"));
    await sameApplied(c, leader, all);
    for (const w of acknowledged) assert.ok(leader.machine.applied.includes(w), w);
    await c.waitAll(all, (m) => m.membership.voters.length === 5, "every node has C_new");
    for (const id of all.slice(1))
      assert.equal(c.node(id).raft.metrics.current.role, "follower", id);
  });

  it("5 → 3 removing the leader: it steps down, C_new elects a leader, no acknowledged write is lost, removed nodes get no more appends", async () => {
    const all = ["n1", "n2", "n3", "n4", "n5"];
    const c = await cluster(all);
    const old = await c.leader();
    const acknowledged: string[] = [];
    for (let i = 0; i < 20; i++) {
      await old.raft.write(bytes(`before-${i}`));
      acknowledged.push(`before-${i}`);
    }
    const keep = all.filter((id) => id !== old.id).slice(0, 3);
    const removed = all.filter((id) => !keep.includes(id));
    const writer = backgroundWriter(old, "during");
    const { membership } = await old.raft.changeMembership(keep);
    assert.deepEqual(sorted(membership.voters), sorted(keep));
    await writer.stop().catch(() => {}); // writes racing the step-down may fail: not acknowledged
    acknowledged.push(...writer.acknowledged);
    const fresh = await c.leader(keep);
    assert.ok(keep.includes(fresh.id));
    assert.notEqual(old.raft.metrics.current.role, "leader");

    let toRemoved = 0;
    c.network.setFilter((_from, to, message) => {
      if (
        removed.includes(to) &&
        (message.type === "appendEntries" || message.type === "heartbeat")
      ) {
        toRemoved++;
      }
      return true;
    });
    const { term } = fresh.raft.metrics.current;
    for (let i = 0; i < 20; i++) {
      await fresh.raft.write(bytes(`after-${i}`));
      acknowledged.push(`after-${i}`);
    }
    await fresh.raft.ensureLinearizable();
    c.network.setFilter(null);
    assert.equal(toRemoved, 0, "no AppendEntries or heartbeat to removed nodes");
    assert.equal(fresh.raft.metrics.current.term, term, "the removed nodes did not disrupt");
    assert.equal((await c.leader(keep)).id, fresh.id);
    await sameApplied(c, fresh, keep);
    for (const w of acknowledged) assert.ok(fresh.machine.applied.includes(w), w);
    assert.deepEqual(
      Object.keys(fresh.raft.metrics.current.replication).sort(),
      sorted(keep.filter((id) => id !== fresh.id)),
      "the leader replicates to the members of C_new only",
    );
  });

  it("replaces all three voters at once (the new ones join as learners first); the old ones can go", async () => {
    const olds = ["a1", "a2", "a3"];
    const news = ["b1", "b2", "b3"];
    const c = await cluster([...olds, ...news], olds);
    const old = await c.leader(olds);
    for (let i = 0; i < 20; i++) await old.raft.write(bytes(`old-${i}`));
    const { membership } = await old.raft.changeMembership(addresses(news));
    assert.deepEqual(sorted(membership.voters), news);
    assert.deepEqual(membership.learners, []);
    for (const id of olds) c.network.isolate(id);
    const fresh = await c.leader(news);
    await fresh.raft.write(bytes("new-era"));
    await sameApplied(c, fresh, news);
    assert.equal(fresh.machine.applied.filter((w) => w.startsWith("old-")).length, 20);
    c.network.heal();
  });

  it("promoted learners count toward the new quorum: 3 → 5, old followers isolated, commits continue", async () => {
    const olds = ["p1", "p2", "p3"];
    const all = [...olds, "p4", "p5"];
    const c = await cluster(all, olds);
    const leader = await c.leader(olds);
    await leader.raft.changeMembership(addresses(all));
    // Old followers gone: only the leader and the two promoted learners remain: 3 of 5.
    for (const id of olds) if (id !== leader.id) c.network.isolate(id);
    const { index } = await leader.raft.write(bytes("needs-promoted-votes"));
    assert.ok(leader.raft.metrics.current.commitIndex >= index);
    await c.waitAll(["p4", "p5"], (m) => m.lastApplied >= index, "the new voters applied it");
    assert.equal(leader.raft.metrics.current.role, "leader");
    c.network.heal();
  });

  it("retain keeps removed voters as learners; they keep receiving the log", async () => {
    const all = ["r1", "r2", "r3"];
    const c = await cluster(all);
    const leader = await c.leader();
    const dropped = all.find((id) => id !== leader.id) as NodeId;
    const keep = all.filter((id) => id !== dropped);
    const { membership } = await leader.raft.changeMembership(keep, { retain: true });
    assert.deepEqual(membership.learners, [dropped]);
    const { index } = await leader.raft.write(bytes("to-the-learner"));
    await c.waitAll([dropped], (m) => m.lastApplied >= index && m.role === "learner", "learner");
  });

  it("membership is recorded in the log: after a restart of every node the new configuration holds", async () => {
    const all = ["m1", "m2", "m3", "m4"];
    const c = await cluster(all, ["m1", "m2", "m3"]);
    const leader = await c.leader(["m1", "m2", "m3"]);
    const target = ["m2", "m3", "m4"];
    await leader.raft.changeMembership(addresses(target), { retain: true });
    const { index } = await (await c.leader(target)).raft.write(bytes("before-restart"));
    await c.waitAll(all, (m) => m.lastApplied >= index, "applied before the restart");
    for (const id of all) await c.stop(id);
    for (const id of all) await c.restart(id);
    const next = await c.leader(target);
    for (const id of all) {
      const { membership } = c.node(id).raft.metrics.current;
      assert.deepEqual(sorted(membership.voters), target, id);
      assert.deepEqual(membership.learners, ["m1"], id);
    }
    assert.equal(c.node("m1").raft.metrics.current.role, "learner");
    const { index: after } = await next.raft.write(bytes("after-restart"));
    await c.waitAll(all, (m) => m.lastApplied >= after, "the restarted cluster applies");
  });

  it("one change at a time: a second request during a change is rejected with change_in_progress", async () => {
    const c = await cluster(["s1", "s2", "s3", "s4"], ["s1", "s2", "s3"]);
    const leader = await c.leader(["s1", "s2", "s3"]);
    const first = leader.raft.changeMembership(addresses(["s1", "s2", "s3", "s4"]));
    await rejectsWith(leader.raft.changeMembership(["s1", "s2"]), "change_in_progress");
    await rejectsWith(leader.raft.addLearner("s5", "mem://s5"), "change_in_progress");
    await first;
    await leader.raft.changeMembership(["s1", "s2", "s3"]); // once done, the next one runs
  });

  it("bad requests: a newcomer without an address, no voters, a voter as learner, a follower", async () => {
    const ids = ["v1", "v2", "v3"];
    const c = await cluster(ids);
    const leader = await c.leader();
    await rejectsWith(leader.raft.changeMembership([...ids, "v4"]), "invalid_membership");
    await rejectsWith(leader.raft.changeMembership([]), "invalid_membership");
    await rejectsWith(leader.raft.addLearner("v2", "mem://v2"), "invalid_membership");
    const follower = c.node(ids.find((id) => id !== leader.id) as NodeId);
    await assert.rejects(follower.raft.addLearner("x", "mem://x"), (error: unknown) => {
      assert.ok(error instanceof NotLeaderError);
      assert.equal(error.leaderId, leader.id);
      return true;
    });
    await assert.rejects(follower.raft.transferLeadership(), NotLeaderError);
  });

  it("shutdown rejects a pending admin request", async () => {
    const c = await cluster(["solo"]);
    const leader = await c.leader(["solo"]);
    // Nobody at the ghost's address: it never catches up.
    const pending = leader.raft.addLearner("ghost", "mem://ghost", { blocking: true });
    await leader.raft.metrics.waitFor((m) => m.membership.learners.includes("ghost"), {
      timeoutMs: 5000,
    });
    await c.stop("solo");
    await assert.rejects(pending, ShutdownError);
  });
});

describe("Raft driver: leadership transfer", () => {
  it("to a named node, then to the best one", async () => {
    const ids = ["t1", "t2", "t3"];
    const c = await cluster(ids);
    const first = await c.leader();
    await first.raft.write(bytes("one"));
    const target = ids.find((id) => id !== first.id) as NodeId;
    assert.equal(await first.raft.transferLeadership(target), target);
    const second = await c.leader();
    assert.equal(second.id, target);
    await second.raft.write(bytes("two"));
    const best = await second.raft.transferLeadership();
    assert.notEqual(best, second.id);
    const third = await c.leader();
    assert.equal(third.id, best);
    await third.raft.write(bytes("three"));
    await sameApplied(c, third, ids);
    assert.deepEqual(third.machine.applied, ["one", "two", "three"]);
  });

  it("to a lagging node: the leader catches it up first", async () => {
    const ids = ["l1", "l2", "l3"];
    const c = await cluster(ids);
    const leader = await c.leader();
    const target = ids.find((id) => id !== leader.id) as NodeId;
    c.network.block(leader.id, target);
    for (let i = 0; i < 50; i++) await leader.raft.write(bytes(`x${i}`));
    const lag = leader.raft.metrics.current.replication[target]?.lag ?? 0;
    assert.ok(lag >= 50, `the target lags (${lag})`);
    c.network.unblock(leader.id, target);
    assert.equal(await leader.raft.transferLeadership(target), target);
    const fresh = await c.leader();
    assert.equal(fresh.id, target);
    await fresh.raft.write(bytes("after"));
    await sameApplied(c, fresh, ids);
    assert.equal(fresh.machine.applied.length, 51);
  });

  it("to an unreachable node: writes are refused meanwhile, the transfer aborts, the leader resumes", async () => {
    const ids = ["u1", "u2", "u3"];
    const c = await cluster(ids);
    const leader = await c.leader();
    await leader.raft.write(bytes("before"));
    const target = ids.find((id) => id !== leader.id) as NodeId;
    c.network.isolate(target);
    const transfer = leader.raft.transferLeadership(target);
    const refused = leader.raft.write(bytes("during")); // stepped right after the transfer
    await assert.rejects(refused, (error: unknown) => {
      assert.ok(error instanceof TransferInProgressError, String(error));
      return true;
    });
    await rejectsWith(transfer, "transfer_aborted");
    assert.equal(leader.raft.metrics.current.role, "leader");
    await leader.raft.write(bytes("after"));
    assert.deepEqual(leader.machine.applied, ["before", "after"]);
    c.network.heal();
  });
});
