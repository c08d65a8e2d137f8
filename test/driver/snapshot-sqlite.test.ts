/**
 * Snapshots on SQLite files (the runtime's own SQLite): three `Raft` nodes in one process on
 * the memory network, each with a SqliteLogStore and its `.snapshots`. A node reopened from its
 * file after the others compacted past its log catches up through a snapshot; every node
 * reopened from its file restarts from its snapshot plus its log, with the same state.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { NodeId } from "../../src/core/types.ts";
import type { Raft, RaftOptionsConfig } from "../../src/driver/raft.ts";
import { MemoryNetwork } from "../../src/net/memory.ts";
import type { SqliteLogStore } from "../../src/storage/sqlite.ts";
import { runtime } from "../helpers/runtime.ts";
import { startSqliteRaft } from "../helpers/sqlite-raft.ts";
import { bytes, RecordingStateMachine, testConfig, waitMs } from "./harness.ts";

const ids: readonly NodeId[] = ["n1", "n2", "n3"];
const config: RaftOptionsConfig = {
  ...testConfig,
  snapshotThreshold: 20,
  snapshotTrailingEntries: 5,
  maxWindowEntries: 10,
  snapshotChunkBytes: 100,
};

interface FileNode {
  readonly raft: Raft;
  readonly store: SqliteLogStore;
  readonly machine: RecordingStateMachine;
}

describe(`Raft snapshots on SQLite files, on ${runtime}`, () => {
  let dir = "";
  const network = new MemoryNetwork();
  const nodes = new Map<NodeId, FileNode>();

  after(async () => {
    for (const id of [...nodes.keys()]) await stop(id);
    network.close();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  const node = (id: NodeId) => nodes.get(id) as FileNode;

  async function start(id: NodeId): Promise<FileNode> {
    const machine = new RecordingStateMachine();
    const { raft, store } = await startSqliteRaft(join(dir, `${id}.db`), {
      id,
      config,
      stateMachine: machine,
      network: network.endpoint(id),
    });
    network.register(`mem://${id}`, raft);
    const started = { raft, store, machine };
    nodes.set(id, started);
    return started;
  }

  async function stop(id: NodeId): Promise<void> {
    const { raft, store } = node(id);
    network.unregister(`mem://${id}`);
    await raft.shutdown();
    await store.close();
    nodes.delete(id);
  }

  async function leaderOf(among: readonly NodeId[]): Promise<FileNode> {
    const first = node(among[0] as NodeId);
    const { leaderId } = await first.raft.metrics.waitFor(
      (m) => m.leaderId !== null && among.includes(m.leaderId),
      { timeoutMs: waitMs },
    );
    const leader = node(leaderId as NodeId);
    await leader.raft.metrics.waitFor((m) => m.role === "leader", { timeoutMs: waitMs });
    return leader;
  }

  async function write(leader: FileNode, count: number, tag: string): Promise<number> {
    let index = 0;
    for (let i = 0; i < count; i++) {
      index = (await leader.raft.write(bytes(`${tag}${i}-${"y".repeat(30)}`))).index;
    }
    return index;
  }

  async function sameState(among: readonly NodeId[], index: number, expected: string[]) {
    for (const id of among) {
      await node(id).raft.metrics.waitFor((m) => m.lastApplied >= index, { timeoutMs: waitMs });
      assert.deepEqual(node(id).machine.applied, expected, `${id}'s state`);
    }
  }

  it("a node reopened behind the compacted log installs a snapshot; all restart from snapshot plus log", {
    timeout: 60_000,
  }, async () => {
    dir = await mkdtemp(join(tmpdir(), "keel-snapshot-sqlite-"));
    for (const id of ids) await start(id);
    const members = Object.fromEntries(ids.map((id) => [id, `mem://${id}`]));
    await Promise.all(ids.map((id) => node(id).raft.initialize(members)));
    let leader = await leaderOf(ids);
    await sameState(ids, await write(leader, 25, "a"), leader.machine.applied);
    const lagging = ids.find((id) => node(id) !== leader) as NodeId;
    await node(lagging).raft.metrics.waitFor((m) => m.snapshotIndex >= 20, { timeoutMs: waitMs });
    const ownSnapshot = node(lagging).raft.metrics.current.snapshotIndex;
    await stop(lagging);

    const rest = ids.filter((id) => id !== lagging);
    leader = await leaderOf(rest);
    const written = await write(leader, 60, "b");
    await leader.raft.metrics.waitFor((m) => m.snapshotIndex >= 60 && m.firstLogIndex > 30, {
      timeoutMs: waitMs,
    });
    const reopened = await start(lagging);
    assert.deepEqual(reopened.machine.restores, [ownSnapshot], "restored from its own file");
    await sameState(ids, written, leader.machine.applied);
    assert.equal(reopened.machine.restores.length, 2, "then installed the leader's snapshot");
    const installed = reopened.machine.restores[1] as number;
    assert.ok(installed >= 60, `installed ${installed}`);

    const expected = leader.machine.applied.slice();
    const snapshotOf = new Map<NodeId, number>();
    for (const id of ids) {
      const { raft, store } = node(id);
      // The file can be a sync ahead of the metrics, which move once a commit is durable.
      const purged = (await store.load()).snapshotIndex;
      const built = (await store.snapshots.current())?.meta.index ?? 0;
      await raft.metrics.waitFor((m) => m.firstLogIndex > purged && m.snapshotIndex >= built, {
        timeoutMs: waitMs,
      });
      const { snapshotIndex, firstLogIndex } = raft.metrics.current;
      const current = await store.snapshots.current();
      assert.equal(current?.meta.index, snapshotIndex, `${id}: the snapshot is in the file`);
      assert.equal((await store.load()).snapshotIndex + 1, firstLogIndex, `${id}: log purged`);
      snapshotOf.set(id, snapshotIndex);
    }
    for (const id of ids) await stop(id);
    for (const id of ids) await start(id);
    for (const id of ids) {
      assert.deepEqual(node(id).machine.restores, [snapshotOf.get(id)], `${id} restored`);
    }
    leader = await leaderOf(ids);
    const last = (await leader.raft.write(bytes("after-reopen"))).index;
    await sameState(ids, last, [...expected, "after-reopen"]);
  });
});
