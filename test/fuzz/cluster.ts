/**
 * The fuzzers' target: three nodes of the example key-value service in this process (Raft on a
 * SQLite file, kvApp served over real HTTP on 127.0.0.1 by the running runtime's adapter), with
 * election timeouts long enough that no election happens on its own while the fuzzers run, so
 * any change of term, log or data afterwards is the fuzzers' doing.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "../../adapters/server.ts";
import { kvApp, RAFT_PATH } from "../../examples/kv/api.ts";
import { KvStateMachine } from "../../examples/kv/state-machine.ts";
import type { Raft, RaftOptionsConfig } from "../../src/driver/raft.ts";
import { FetchNetwork } from "../../src/net/fetch.ts";
import type { SqliteLogStore } from "../../src/storage/sqlite.ts";
import { loadAdapter } from "../helpers/runtime.ts";
import { startSqliteRaft } from "../helpers/sqlite-raft.ts";
import { freePort } from "../kv/cluster.ts";
import { send } from "./inputs.ts";

export const SECRET = "fuzz cluster secret";
export const WAIT_MS = 20_000;

const config: RaftOptionsConfig = {
  electionTimeoutMinMs: 4000,
  electionTimeoutMaxMs: 6000,
  heartbeatIntervalMs: 100,
  rpcTimeoutMs: 2000,
  readTimeoutMs: 5000,
};

export interface FuzzNode {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly raft: Raft;
  readonly machine: KvStateMachine;
  readonly network: FetchNetwork;
  readonly store: SqliteLogStore;
  readonly server: Server;
}

/** What must not change: each node's Raft state and its data, in a comparable form. */
export interface ClusterState {
  readonly nodes: readonly {
    readonly id: string;
    readonly role: string;
    readonly term: number;
    readonly leader: string | null;
    readonly commitIndex: number;
    readonly lastApplied: number;
    readonly lastLogIndex: number;
    readonly snapshotIndex: number;
    readonly membership: unknown;
    readonly stopped: boolean;
    readonly data: string;
  }[];
}

export class FuzzCluster {
  private constructor(
    readonly dir: string,
    readonly nodes: readonly FuzzNode[],
  ) {}

  static async start(): Promise<FuzzCluster> {
    const { serve } = await loadAdapter();
    const dir = await mkdtemp(join(tmpdir(), "keel-fuzz-"));
    const ids = ["n1", "n2", "n3"];
    const ports = await Promise.all(ids.map(() => freePort()));
    const members = Object.fromEntries(
      ids.map((id, i) => [id, `http://127.0.0.1:${ports[i]}${RAFT_PATH}`]),
    );
    const nodes: FuzzNode[] = [];
    for (const [i, id] of ids.entries()) {
      const machine = new KvStateMachine();
      const network = new FetchNetwork({ secret: SECRET, backoffMaxMs: 500 });
      const { raft, store } = await startSqliteRaft(join(dir, `${id}.db`), {
        id,
        config,
        stateMachine: machine,
        network,
      });
      const server = await serve(kvApp(raft, machine, { secret: SECRET }), {
        hostname: "127.0.0.1",
        port: ports[i],
      });
      const url = `http://127.0.0.1:${server.port}`;
      nodes.push({ id, port: server.port, url, raft, machine, network, store, server });
    }
    // Every founding member initializes (as the example service's nodes do); one of them wins
    // the first election after its timeout.
    await Promise.all(nodes.map((n) => n.raft.initialize(members)));
    const cluster = new FuzzCluster(dir, nodes);
    await cluster.settled();
    return cluster;
  }

  leader(): FuzzNode {
    const leaders = this.nodes.filter((n) => n.raft.metrics.current.role === "leader");
    assert.equal(leaders.length, 1, "one leader");
    return leaders[0];
  }

  followers(): FuzzNode[] {
    return this.nodes.filter((n) => n.raft.metrics.current.role !== "leader");
  }

  /**
   * Resolves once every node knows the same leader and has applied the leader's whole log: the
   * state is then still, so two snapshots of it compare.
   */
  async settled(): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const metrics = this.nodes.map((n) => n.raft.metrics.current);
      const leader = metrics.find((m) => m.role === "leader");
      if (
        leader !== undefined &&
        metrics.every(
          (m) =>
            m.leaderId === leader.id &&
            m.term === leader.term &&
            m.lastLogIndex === leader.lastLogIndex &&
            m.commitIndex === leader.lastLogIndex &&
            m.lastApplied === leader.lastLogIndex,
        )
      ) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`the cluster did not settle: ${JSON.stringify(metrics)}`);
      }
      // Wait for any node's next change of metrics.
      await Promise.race(
        this.nodes.map((n) =>
          n.raft.metrics
            .waitFor((m) => m !== n.raft.metrics.current, { timeoutMs: 1000 })
            .catch(() => undefined),
        ),
      );
    }
  }

  async state(): Promise<ClusterState> {
    const nodes = [];
    for (const n of this.nodes) {
      const m = n.raft.metrics.current;
      const chunks: string[] = [];
      const decoder = new TextDecoder();
      for await (const chunk of n.machine.snapshot()) chunks.push(decoder.decode(chunk));
      nodes.push({
        id: m.id,
        role: m.role,
        term: m.term,
        leader: m.leaderId,
        commitIndex: m.commitIndex,
        lastApplied: m.lastApplied,
        lastLogIndex: m.lastLogIndex,
        snapshotIndex: m.snapshotIndex,
        membership: m.membership,
        stopped: m.stopped,
        data: chunks.join(""),
      });
    }
    return { nodes };
  }

  /** Every node still answers /status with 200 and is not stopped. */
  async assertAlive(): Promise<void> {
    for (const n of this.nodes) {
      assert.equal(n.raft.metrics.current.stopped, false, `${n.id} is running`);
      const answer = await send(`${n.url}/status`);
      assert.equal(answer.status, 200, `${n.id} answers /status`);
    }
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) {
      await n.raft.shutdown();
      n.network.close();
      await n.server.close();
      await n.store.close();
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
