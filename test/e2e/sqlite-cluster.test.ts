/**
 * Three real Raft nodes in one process on SQLite files (synchronous FULL), over real HTTP on
 * 127.0.0.1, with the running runtime's adapter: a leader is elected and commits writes; the
 * leader is stopped and the other two elect another and commit more; the stopped node restarts
 * from its SQLite file and catches up.
 *
 * The members' addresses are in the log, so the restarted node listens on the port it had. The
 * port is free once its server closed: listeners on all three runtimes set SO_REUSEADDR, so the
 * connections its close left in TIME_WAIT do not hold it.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import type { Server } from "../../adapters/server.ts";
import type { NodeId } from "../../src/core/types.ts";
import type { RaftMetrics } from "../../src/driver/metrics.ts";
import { Raft, type RaftOptionsConfig } from "../../src/driver/raft.ts";
import { raftRoutes } from "../../src/http/routes.ts";
import { FetchNetwork } from "../../src/net/fetch.ts";
import type { SqliteLogStore } from "../../src/storage/sqlite.ts";
import { bytes, RecordingStateMachine, text } from "../driver/harness.ts";
import { loadAdapter, runtime } from "../helpers/runtime.ts";

const SECRET = "e2e sqlite cluster secret";
const IDS: readonly NodeId[] = ["n1", "n2", "n3"];
/** Bound of every wait on a condition: generous, for a small and busy machine. */
const WAIT_MS = 15_000;

/** Timings with room for three runtimes' HTTP stacks and fsyncs on a small, busy machine. */
const config: RaftOptionsConfig = {
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  heartbeatIntervalMs: 50,
  rpcTimeoutMs: 1000,
  readTimeoutMs: 5000,
};

interface SqliteNode {
  readonly id: NodeId;
  readonly port: number;
  readonly raft: Raft;
  readonly machine: RecordingStateMachine;
  readonly network: FetchNetwork;
  readonly store: SqliteLogStore;
  readonly server: Server;
  running: boolean;
}

const { serve, openSqliteLogStore } = await loadAdapter();

describe(`a 3-node cluster on SQLite files over HTTP on ${runtime}`, () => {
  let dir = "";
  const nodes = new Map<NodeId, SqliteNode>();
  /** Every command the cluster acknowledged, in order. */
  const acknowledged: string[] = [];

  const node = (id: NodeId): SqliteNode => {
    const found = nodes.get(id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  };
  const running = (): SqliteNode[] => [...nodes.values()].filter((n) => n.running);
  const pathOf = (id: NodeId): string => join(dir, `${id}.db`);

  /**
   * Opens `id`'s SQLite file, starts its Raft, then serves its routes on `port` (0: any). The
   * node has loaded its state before the first request can reach it.
   */
  async function startNode(id: NodeId, port: number): Promise<SqliteNode> {
    const store = await openSqliteLogStore(pathOf(id), { synchronous: "full" });
    const machine = new RecordingStateMachine();
    // A short backoff cap: a restarted peer is probed again within half a second.
    const network = new FetchNetwork({ secret: SECRET, backoffMaxMs: 500 });
    const raft = new Raft({ id, config, logStore: store, stateMachine: machine, network });
    await raft.start();
    const app = new Hono();
    app.route("/raft", raftRoutes(raft, { secret: SECRET }));
    let server: Server;
    try {
      server = await serve(app, { hostname: "127.0.0.1", port });
    } catch (error) {
      await raft.shutdown();
      network.close();
      await store.close();
      throw new Error(`${id} could not listen on 127.0.0.1:${port}`, { cause: error });
    }
    if (port !== 0) assert.equal(server.port, port, `${id} listens on its old port`);
    const started: SqliteNode = {
      id,
      port: server.port,
      raft,
      machine,
      network,
      store,
      server,
      running: true,
    };
    nodes.set(id, started);
    return started;
  }

  /** Stops a node the way a process would go down: the node, its transport, server and file. */
  async function stopNode(stopping: SqliteNode): Promise<void> {
    if (!stopping.running) return;
    stopping.running = false;
    await stopping.raft.shutdown();
    stopping.network.close();
    await stopping.server.close();
    await stopping.store.close();
  }

  /**
   * Waits until `condition` holds over the metrics of `among` (checked on every change of any of
   * them, never on a timer); rejects after WAIT_MS naming `what` and each node's state.
   */
  function waitAll(
    among: readonly SqliteNode[],
    condition: (metrics: readonly RaftMetrics[]) => boolean,
    what: string,
  ): Promise<RaftMetrics[]> {
    const current = () => among.map((n) => n.raft.metrics.current);
    return new Promise((resolve, reject) => {
      const unsubscribes: (() => void)[] = [];
      const finish = (error: Error | null) => {
        clearTimeout(timer);
        for (const unsubscribe of unsubscribes) unsubscribe();
        if (error === null) resolve(current());
        else reject(error);
      };
      const check = () => {
        if (condition(current())) finish(null);
      };
      const timer = setTimeout(() => {
        const states = current().map(
          (m) =>
            `${m.id}: ${m.role} term ${m.term} leader ${m.leaderId} commit ${m.commitIndex} applied ${m.lastApplied}`,
        );
        finish(new Error(`${what} not within ${WAIT_MS} ms (${states.join("; ")})`));
      }, WAIT_MS);
      for (const n of among) unsubscribes.push(n.raft.metrics.subscribe(check));
      check();
    });
  }

  /** Waits until the running nodes agree on one leader in one term, and returns it. */
  async function agreedLeader(): Promise<SqliteNode> {
    const [first] = await waitAll(
      running(),
      (metrics) => {
        const leader = metrics.find((m) => m.role === "leader");
        return (
          leader !== undefined &&
          metrics.every((m) => m.leaderId === leader.id && m.term === leader.term)
        );
      },
      "agreement on a leader",
    );
    return node(first?.leaderId as NodeId);
  }

  /** `count` writes through `leader`, half at once and half one after another. */
  async function writeThrough(leader: SqliteNode, prefix: string, count: number): Promise<void> {
    const half = Math.floor(count / 2);
    const concurrent = Array.from({ length: half }, (_, i) => `${prefix}${i}`);
    const results = await Promise.all(concurrent.map((c) => leader.raft.write(bytes(c))));
    const indices = results.map((r) => r.index);
    assert.deepEqual(
      indices,
      [...indices].sort((a, b) => a - b),
      "concurrent writes are committed in order",
    );
    results.forEach((r, i) => {
      assert.equal(text(r.response), `ok:${concurrent[i]}`);
    });
    acknowledged.push(...concurrent);
    for (let i = half; i < count; i++) {
      const command = `${prefix}${i}`;
      const { response } = await leader.raft.write(bytes(command));
      assert.equal(text(response), `ok:${command}`);
      acknowledged.push(command);
    }
  }

  /** Waits until every running node applied the leader's whole log, then compares them. */
  async function allApplied(leader: SqliteNode): Promise<void> {
    const lastIndex = leader.raft.metrics.current.lastLogIndex;
    await waitAll(
      running(),
      (metrics) => metrics.every((m) => m.lastApplied >= lastIndex),
      `every running node applied index ${lastIndex}`,
    );
    for (const n of running()) {
      assert.deepEqual(n.machine.applied, acknowledged, `${n.id} applied every command in order`);
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "keel-e2e-sqlite-"));
  });

  after(async () => {
    for (const n of nodes.values()) await stopNode(n);
    await rm(dir, { recursive: true, force: true });
  });

  let firstLeader: SqliteNode | undefined;

  it("elects a leader and commits 100 writes on every node", async () => {
    for (const id of IDS) await startNode(id, 0);
    const members = Object.fromEntries(
      running().map((n) => [n.id, `http://127.0.0.1:${n.port}/raft`]),
    );
    await Promise.all(running().map((n) => n.raft.initialize(members)));
    firstLeader = await agreedLeader();
    await writeThrough(firstLeader, "a", 100);
    await allApplied(firstLeader);
    await firstLeader.raft.ensureLinearizable();
  });

  it("elects another leader when the leader stops, and commits 50 more writes", async () => {
    assert.ok(firstLeader, "the first test elected a leader");
    const term = firstLeader.raft.metrics.current.term;
    await stopNode(firstLeader);
    const leader = await agreedLeader();
    assert.notEqual(leader.id, firstLeader.id);
    assert.ok(leader.raft.metrics.current.term > term, "the new leader is in a later term");
    await writeThrough(leader, "b", 50);
    await allApplied(leader);
  });

  it("a node restarted from its SQLite file catches up on what it missed", async () => {
    assert.ok(firstLeader, "the first test elected a leader");
    const stopped = firstLeader;
    // What the file holds before the node starts: the 100 writes of the first test and more.
    const reopened = await openSqliteLogStore(pathOf(stopped.id));
    const onDisk = await reopened.load();
    await reopened.close();
    assert.ok(onDisk.lastIndex >= 100, `${stopped.id}'s file holds ${onDisk.lastIndex} entries`);

    const restarted = await startNode(stopped.id, stopped.port);
    assert.equal(restarted.raft.metrics.current.lastLogIndex, onDisk.lastIndex);
    const leader = await agreedLeader();
    assert.notEqual(leader.id, restarted.id, "a node with a stale log cannot win");
    await allApplied(leader);
    assert.equal(restarted.machine.applied.length, 150);

    // The restarted node takes part in replication again.
    await writeThrough(leader, "c", 10);
    await allApplied(leader);
    assert.equal(running().length, 3);
  });
});
