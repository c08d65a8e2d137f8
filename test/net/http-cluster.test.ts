/** Three real Raft nodes in one process, talking over real HTTP on 127.0.0.1. */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Hono } from "hono";
import type { Server } from "../../adapters/server.ts";
import type { NodeId } from "../../src/core/types.ts";
import { Raft, type RaftOptionsConfig } from "../../src/driver/raft.ts";
import { raftRoutes } from "../../src/http/routes.ts";
import { FetchNetwork, type TransportLogger } from "../../src/net/fetch.ts";
import { MemoryLogStore } from "../../src/storage/memory.ts";
import { bytes, RecordingStateMachine, text, waitMs } from "../driver/harness.ts";
import { loadAdapter, runtime } from "../helpers/runtime.ts";

const SECRET = "cluster secret";

/** Timings with room for three runtimes' HTTP stacks on a small, busy machine. */
const config: RaftOptionsConfig = {
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  heartbeatIntervalMs: 50,
  rpcTimeoutMs: 1000,
  readTimeoutMs: 5000,
};

interface HttpNode {
  readonly id: NodeId;
  readonly raft: Raft;
  readonly machine: RecordingStateMachine;
  readonly network: FetchNetwork;
  readonly server: Server;
  readonly address: string;
}

describe(`a 3-node cluster over HTTP on ${runtime}`, () => {
  const nodes: HttpNode[] = [];
  const warnings: string[] = [];
  const logger: TransportLogger = {
    log: (level, message, fields) => {
      if (level !== "debug") warnings.push(`${level} ${message} ${JSON.stringify(fields)}`);
    },
  };

  after(async () => {
    for (const node of nodes) {
      await node.raft.shutdown();
      node.network.close();
      await node.server.close();
    }
  });

  it("elects a leader and commits 100 writes on every node", async () => {
    const { serve } = await loadAdapter();
    for (const id of ["n1", "n2", "n3"]) {
      const machine = new RecordingStateMachine();
      const network = new FetchNetwork({ secret: SECRET, logger });
      const raft = new Raft({
        id,
        config,
        logStore: new MemoryLogStore(),
        stateMachine: machine,
        network,
      });
      const app = new Hono();
      app.route("/raft", raftRoutes(raft, { secret: SECRET }));
      const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
      nodes.push({
        id,
        raft,
        machine,
        network,
        server,
        address: `http://127.0.0.1:${server.port}/raft`,
      });
    }
    const members = Object.fromEntries(nodes.map((n) => [n.id, n.address]));
    for (const node of nodes) await node.raft.start();
    await Promise.all(nodes.map((n) => n.raft.initialize(members)));

    // Every node learns of a leader; then the one n1 names must know it leads.
    const [first] = await Promise.all(
      nodes.map((n) =>
        n.raft.metrics.waitFor((m) => m.leaderId !== null, {
          timeoutMs: waitMs,
          message: "a leader",
        }),
      ),
    );
    const leader = nodes.find((n) => n.id === first?.leaderId) as HttpNode;
    await leader.raft.metrics.waitFor((m) => m.role === "leader", { timeoutMs: waitMs });

    // 50 writes at once (one batch), then 50 one after another (one round trip each).
    const concurrent = await Promise.all(
      Array.from({ length: 50 }, (_, i) => leader.raft.write(bytes(`w${i}`))),
    );
    for (let i = 50; i < 100; i++) {
      const { response } = await leader.raft.write(bytes(`w${i}`));
      assert.equal(text(response), `ok:w${i}`);
    }
    const indices = concurrent.map((r) => r.index);
    assert.deepEqual(
      indices,
      [...indices].sort((a, b) => a - b),
    );

    const lastIndex = leader.raft.metrics.current.lastLogIndex;
    await Promise.all(
      nodes.map((n) =>
        n.raft.metrics.waitFor((m) => m.lastApplied >= lastIndex, {
          timeoutMs: waitMs,
          message: `${n.id} applied ${lastIndex}`,
        }),
      ),
    );
    const expected = Array.from({ length: 100 }, (_, i) => `w${i}`);
    for (const node of nodes) {
      assert.deepEqual(node.machine.applied, expected, node.id);
      assert.equal(node.raft.metrics.current.leaderId, leader.id);
      assert.equal(node.raft.metrics.current.stopped, false);
    }
    // A linearizable read confirms leadership over HTTP heartbeats.
    await leader.raft.ensureLinearizable();
    assert.deepEqual(warnings, [], "no peer failed");
  });
});
