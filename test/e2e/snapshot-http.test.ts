/**
 * A node added after compaction catches up through a snapshot streamed over HTTP: three real Raft
 * nodes on SQLite files (log and snapshots in one file each), over real HTTP on 127.0.0.1 with a
 * cluster secret, compact their logs; a fourth node, fresh, joins as a learner and can only get
 * the state through `POST /install-snapshot` (several chunks), then the log after it. It ends with
 * the same state as the others, keeps up with later writes, and restarts from its own snapshot
 * plus log.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import type { Server } from "../../adapters/server.ts";
import type { Entry, NodeId } from "../../src/core/types.ts";
import { NotLeaderError } from "../../src/driver/errors.ts";
import type { RaftMetrics } from "../../src/driver/metrics.ts";
import type { Raft, RaftOptionsConfig } from "../../src/driver/raft.ts";
import type { ApplyResponse, StateMachine } from "../../src/driver/state-machine.ts";
import { raftRoutes } from "../../src/http/routes.ts";
import { INSTALL_SNAPSHOT_PATH } from "../../src/http/snapshot-codec.ts";
import { FetchNetwork } from "../../src/net/fetch.ts";
import type { SnapshotMeta } from "../../src/storage/snapshot-store.ts";
import type { SqliteLogStore } from "../../src/storage/sqlite.ts";
import { bytes, text } from "../driver/harness.ts";
import { loadAdapter, runtime } from "../helpers/runtime.ts";
import { startSqliteRaft } from "../helpers/sqlite-raft.ts";

const SECRET = "e2e snapshot secret";
const WAIT_MS = 20_000;
const CHUNK_BYTES = 4096;
/** Each command carries this much padding, so the snapshot spans many chunks. */
const PAD = "x".repeat(200);

const config: RaftOptionsConfig = {
  // Slow elections: fsyncs and three runtimes' HTTP stacks share a small, busy machine.
  electionTimeoutMinMs: 1000,
  electionTimeoutMaxMs: 2000,
  heartbeatIntervalMs: 100,
  rpcTimeoutMs: 2000,
  readTimeoutMs: 5000,
  snapshotThreshold: 100,
  snapshotTrailingEntries: 10,
  snapshotChunkBytes: CHUNK_BYTES,
};

const encoder = new TextEncoder();

/**
 * The commands applied, in order; its snapshot is one JSON string per line, streamed in pieces
 * of about 1 KiB. It keeps nothing across a restart: it is rebuilt from the snapshot and the log.
 */
class ListMachine implements StateMachine {
  readonly applied: string[] = [];
  restores = 0;

  apply(entries: readonly Entry[]): ApplyResponse[] {
    return entries.map((entry) => {
      if (entry.kind !== "command") return new Uint8Array(0);
      const command = text(entry.data);
      this.applied.push(command);
      return bytes(`ok:${command}`);
    });
  }

  lastApplied(): number {
    return 0;
  }

  snapshot(): AsyncIterable<Uint8Array> {
    const state = this.applied.slice();
    return (async function* () {
      let piece = "";
      for (const command of state) {
        piece += `${JSON.stringify(command)}\n`;
        if (piece.length >= 1024) {
          yield encoder.encode(piece);
          piece = "";
        }
      }
      if (piece !== "") yield encoder.encode(piece);
    })();
  }

  async restore(_meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let textData = "";
    for await (const chunk of data) textData += decoder.decode(chunk, { stream: true });
    textData += decoder.decode();
    const lines = textData.split("\n").filter((line) => line !== "");
    this.applied.length = 0;
    for (const line of lines) this.applied.push(JSON.parse(line) as string);
    this.restores++;
  }
}

interface SqliteNode {
  readonly id: NodeId;
  readonly raft: Raft;
  readonly machine: ListMachine;
  readonly network: FetchNetwork;
  readonly store: SqliteLogStore;
  readonly server: Server;
  readonly address: string;
  /** Snapshot chunks this node's server received, with their offsets. */
  readonly chunks: { offset: number; bytes: number }[];
}

const { serve } = await loadAdapter();

describe(`a node added after compaction catches up by a snapshot over HTTP on ${runtime}`, () => {
  let dir = "";
  const nodes = new Map<NodeId, SqliteNode>();
  const acknowledged: string[] = [];

  async function startNode(id: NodeId, port = 0): Promise<SqliteNode> {
    const machine = new ListMachine();
    const network = new FetchNetwork({ secret: SECRET, backoffMaxMs: 500 });
    const { raft, store } = await startSqliteRaft(join(dir, `${id}.db`), {
      id,
      config,
      stateMachine: machine,
      network,
    });
    const chunks: { offset: number; bytes: number }[] = [];
    const app = new Hono();
    // Records what arrives on the wire, ahead of the routes (which validate and answer).
    app.use(`/raft${INSTALL_SNAPSHOT_PATH}`, async (c, next) => {
      const body = new Uint8Array(await c.req.raw.clone().arrayBuffer());
      const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
      if (body.length >= 33) {
        chunks.push({ offset: view.getUint32(29), bytes: body.length });
      }
      await next();
    });
    app.route("/raft", raftRoutes(raft, { secret: SECRET }));
    const server = await serve(app, { hostname: "127.0.0.1", port });
    const node: SqliteNode = {
      id,
      raft,
      machine,
      network,
      store,
      server,
      address: `http://127.0.0.1:${server.port}/raft`,
      chunks,
    };
    nodes.set(id, node);
    return node;
  }

  async function stopNode(node: SqliteNode): Promise<void> {
    nodes.delete(node.id);
    await node.raft.shutdown();
    node.network.close();
    await node.server.close();
    await node.store.close();
  }

  function waitFor(
    node: SqliteNode,
    predicate: (m: RaftMetrics) => boolean,
    message: string,
  ): Promise<RaftMetrics> {
    return node.raft.metrics.waitFor(predicate, { timeoutMs: WAIT_MS, message });
  }

  /** Waits until `among` agree on one leader in one term, and returns it. */
  async function agreedLeader(among: readonly SqliteNode[]): Promise<SqliteNode> {
    for (;;) {
      const seen = await waitFor(among[0] as SqliteNode, (m) => m.leaderId !== null, "a leader");
      const leader = nodes.get(seen.leaderId as NodeId) as SqliteNode;
      const { term } = await waitFor(leader, (m) => m.role === "leader", "the leader leads");
      const agreed = await Promise.all(
        among.map((n) => waitFor(n, (m) => m.term >= term && m.leaderId !== null, "a leader")),
      );
      if (agreed.every((m) => m.term === term && m.leaderId === leader.id)) return leader;
    }
  }

  /**
   * `count` commands through the founders' leader, 25 at a time. A write refused with
   * NotLeaderError was never appended, so it is retried on the new leader; `acknowledged` keeps
   * the commands in log order.
   */
  async function writes(prefix: string, count: number): Promise<void> {
    const founders = ["n1", "n2", "n3"].map((id) => nodes.get(id) as SqliteNode);
    const written: { index: number; command: string }[] = [];
    for (let batch = 0; batch < count; batch += 25) {
      let pending = Array.from(
        { length: Math.min(25, count - batch) },
        (_, i) => `${prefix}${batch + i}:${PAD}`,
      );
      while (pending.length > 0) {
        const leader = await agreedLeader(founders);
        const results = await Promise.allSettled(pending.map((c) => leader.raft.write(bytes(c))));
        const refused: string[] = [];
        for (const [i, result] of results.entries()) {
          const command = pending[i] as string;
          if (result.status === "fulfilled") {
            assert.equal(text(result.value.response), `ok:${command}`);
            written.push({ index: result.value.index, command });
          } else if (result.reason instanceof NotLeaderError) {
            refused.push(command);
          } else {
            throw result.reason;
          }
        }
        pending = refused;
      }
    }
    written.sort((a, b) => a.index - b.index);
    acknowledged.push(...written.map((w) => w.command));
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "keel-e2e-snapshot-"));
  });

  after(async () => {
    for (const node of [...nodes.values()]) await stopNode(node);
    await rm(dir, { recursive: true, force: true });
  });

  it("compacts, streams the snapshot in chunks to the new node, which then follows the log", async () => {
    const founders = await Promise.all(["n1", "n2", "n3"].map((id) => startNode(id)));
    const members = Object.fromEntries(founders.map((n) => [n.id, n.address]));
    await Promise.all(founders.map((n) => n.raft.initialize(members)));

    // Past the threshold, twice: every founder snapshots and purges its log's prefix.
    await writes("a", 250);
    for (const node of founders) {
      await waitFor(
        node,
        (m) => m.snapshotIndex >= 200 && m.firstLogIndex > 100,
        `${node.id} compacted`,
      );
    }
    const leader = await agreedLeader(founders);
    const purgedTo = leader.raft.metrics.current.firstLogIndex;
    assert.ok(purgedTo > 1, `the leader's log starts at ${purgedTo}`);

    // A fresh node joins: the entries it needs are gone, so only the snapshot can bring it up.
    const joiner = await startNode("n4");
    await leader.raft.addLearner("n4", joiner.address, { blocking: true, timeoutMs: WAIT_MS });
    const caughtUp = joiner.raft.metrics.current;
    assert.ok(caughtUp.snapshotIndex >= 200, `n4 installed snapshot ${caughtUp.snapshotIndex}`);
    assert.equal(joiner.machine.restores, 1, "n4's state came from one restore");
    // Several chunks, over HTTP, starting at 0 and covering the snapshot in order.
    const data = joiner.chunks.filter((c) => c.offset > 0);
    assert.ok(data.length >= 5, `${joiner.chunks.length} chunk requests`);
    assert.equal(joiner.chunks[0]?.offset, 0);
    const offsets = joiner.chunks.map((c) => c.offset);
    assert.deepEqual(
      offsets,
      [...offsets].sort((a, b) => a - b),
      "chunks in order",
    );

    // Then the log: later writes reach it by AppendEntries.
    await writes("b", 30);
    const lastIndex = (await agreedLeader(founders)).raft.metrics.current.lastLogIndex;
    for (const node of nodes.values()) {
      await waitFor(node, (m) => m.lastApplied >= lastIndex, `${node.id} applied ${lastIndex}`);
      assert.deepEqual(
        node.machine.applied,
        acknowledged,
        `${node.id} has every command, in order`,
      );
    }
    assert.equal(joiner.machine.restores, 1, "no second snapshot was needed");
    assert.equal(joiner.raft.metrics.current.stopped, false);
  });

  it("the new node restarts from its own snapshot and log", async () => {
    const joiner = nodes.get("n4") as SqliteNode;
    const port = joiner.server.port;
    await stopNode(joiner);
    const restarted = await startNode("n4", port);
    assert.equal(restarted.machine.restores, 1, "restored from its snapshot on start");
    const lastIndex = Math.max(
      ...[...nodes.values()].map((n) => n.raft.metrics.current.lastLogIndex),
    );
    await waitFor(restarted, (m) => m.lastApplied >= lastIndex, `n4 applied ${lastIndex}`);
    assert.deepEqual(restarted.machine.applied, acknowledged);
    assert.equal(restarted.chunks.length, 0, "no snapshot was streamed again");
  });
});
