/** Whole `Raft` nodes in one process on the memory network and memory stores. */
import type { Entry, NodeId } from "../../src/core/types.ts";
import type { RaftMetrics } from "../../src/driver/metrics.ts";
import { Raft, type RaftOptionsConfig } from "../../src/driver/raft.ts";
import {
  ApplyFailure,
  type ApplyResponse,
  type StateMachine,
} from "../../src/driver/state-machine.ts";
import { MemoryNetwork } from "../../src/net/memory.ts";
import { MemoryLogStore } from "../../src/storage/memory.ts";
import { MemorySnapshotStore } from "../../src/storage/memory-snapshot.ts";
import type { SnapshotMeta } from "../../src/storage/snapshot-store.ts";

export const testConfig: RaftOptionsConfig = {
  electionTimeoutMinMs: 150,
  electionTimeoutMaxMs: 300,
  heartbeatIntervalMs: 30,
  rpcTimeoutMs: 200,
  readTimeoutMs: 2000,
};

export const waitMs = 10_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/**
 * Records every applied command in order and answers with "ok:<command>". A command starting
 * with "fail" fails deterministically; "crash" throws (a non-deterministic failure).
 */
export class RecordingStateMachine implements StateMachine {
  readonly applied: string[] = [];
  lastIndex = 0;

  apply(entries: readonly Entry[]): ApplyResponse[] {
    return entries.map((entry) => {
      this.lastIndex = entry.index;
      if (entry.kind !== "command") return new Uint8Array();
      const command = text(entry.data);
      if (command === "crash") throw new Error("state machine crashed");
      if (command.startsWith("fail")) return new ApplyFailure(`refused ${command}`);
      this.applied.push(command);
      return bytes(`ok:${command}`);
    });
  }

  lastApplied(): number {
    return 0; // keeps nothing across restarts: the log is replayed
  }

  /** Snapshot indexes this state machine was restored from, in order. */
  readonly restores: number[] = [];
  /** Bytes per chunk of `snapshot()`: small, so a snapshot spans many chunks. */
  snapshotChunkBytes = 64;

  /** Set to make the next snapshot streams fail after their first chunk. */
  failSnapshots = false;

  /** The applied commands as JSON lines, captured now, streamed in small chunks. */
  snapshot(): AsyncIterable<Uint8Array> {
    const all = encoder.encode(this.applied.map((c) => `${JSON.stringify(c)}\n`).join(""));
    const size = this.snapshotChunkBytes;
    const fail = this.failSnapshots;
    return (async function* () {
      for (let at = 0; at < all.length; at += size) {
        yield all.subarray(at, at + size);
        if (fail) throw new Error("snapshot stream broke");
      }
    })();
  }

  async restore(meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const chunk of data) parts.push(chunk.slice());
    const lines = text(concat(parts))
      .split("\n")
      .filter((line) => line !== "");
    this.applied.length = 0;
    for (const line of lines) this.applied.push(JSON.parse(line) as string);
    this.lastIndex = meta.index;
    this.restores.push(meta.index);
  }
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export interface TestNode {
  readonly id: NodeId;
  readonly address: string;
  raft: Raft;
  store: MemoryLogStore;
  machine: RecordingStateMachine;
  /** Set when the cluster was made with snapshot stores. */
  snapshots: MemorySnapshotStore | undefined;
}

/** Options of a {@link TestCluster}. */
export interface TestClusterOptions {
  /** Give every node a MemorySnapshotStore (with this chunk size): snapshots on. */
  readonly snapshotChunkBytes?: number;
  /** Makes each node's LogStore (default: a MemoryLogStore). */
  readonly newLogStore?: () => MemoryLogStore;
}

export class TestCluster {
  readonly network: MemoryNetwork;
  readonly nodes = new Map<NodeId, TestNode>();

  constructor(
    readonly ids: readonly NodeId[],
    readonly config: RaftOptionsConfig = testConfig,
    seed = 1,
    readonly options: TestClusterOptions = {},
  ) {
    this.network = new MemoryNetwork({ seed });
    for (const id of ids) {
      const store = options.newLogStore?.() ?? new MemoryLogStore();
      this.nodes.set(id, this.#create(id, store, this.#newSnapshotStore()));
    }
  }

  static async started(
    ids: readonly NodeId[],
    config?: RaftOptionsConfig,
    options?: TestClusterOptions,
  ): Promise<TestCluster> {
    const cluster = new TestCluster(ids, config, 1, options);
    await cluster.startAll();
    return cluster;
  }

  #newSnapshotStore(): MemorySnapshotStore | undefined {
    const chunkBytes = this.options.snapshotChunkBytes;
    return chunkBytes === undefined ? undefined : new MemorySnapshotStore({ chunkBytes });
  }

  #create(id: NodeId, store: MemoryLogStore, snapshots: MemorySnapshotStore | undefined): TestNode {
    const machine = new RecordingStateMachine();
    const address = `mem://${id}`;
    const raft = new Raft({
      id,
      config: this.config,
      logStore: store,
      stateMachine: machine,
      network: this.network.endpoint(id),
      ...(snapshots ? { snapshotStore: snapshots } : {}),
    });
    return { id, address, raft, store, machine, snapshots };
  }

  /**
   * Creates and starts a node outside the initial members (`ids`): it waits, uninitialized, on
   * the network until a leader adds it.
   */
  async addNode(id: NodeId): Promise<TestNode> {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    this.nodes.set(id, this.#create(id, new MemoryLogStore(), this.#newSnapshotStore()));
    await this.start(id);
    return this.node(id);
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  get members(): Record<NodeId, string> {
    return Object.fromEntries(this.ids.map((id) => [id, `mem://${id}`]));
  }

  async startAll(): Promise<void> {
    for (const node of this.nodes.values()) await this.start(node.id);
  }

  async start(id: NodeId): Promise<void> {
    const node = this.node(id);
    this.network.register(node.address, node.raft);
    await node.raft.start();
  }

  async initializeAll(): Promise<void> {
    const members = this.members;
    await Promise.all([...this.nodes.values()].map((n) => n.raft.initialize(members)));
  }

  /**
   * Stops a node (its stores keep what they persisted) and starts a fresh one on those stores,
   * or on the ones given (a crash: clones taken at some point, or stores that behave again).
   */
  async restart(
    id: NodeId,
    stores: { store?: MemoryLogStore; snapshots?: MemorySnapshotStore } = {},
  ): Promise<void> {
    await this.stop(id);
    const old = this.node(id);
    const store = stores.store ?? old.store;
    this.nodes.set(id, this.#create(id, store, stores.snapshots ?? old.snapshots));
    await this.start(id);
  }

  async stop(id: NodeId): Promise<void> {
    const node = this.node(id);
    this.network.unregister(node.address);
    await node.raft.shutdown();
  }

  async shutdown(): Promise<void> {
    for (const node of this.nodes.values()) {
      this.network.unregister(node.address);
      await node.raft.shutdown();
    }
    this.network.close();
  }

  running(): TestNode[] {
    return [...this.nodes.values()].filter((n) => !n.raft.metrics.current.stopped);
  }

  /** Waits until the running nodes (or `among`) agree on one leader, and returns it. */
  async leader(among: readonly NodeId[] = this.running().map((n) => n.id)): Promise<TestNode> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const metrics = among.map((id) => this.node(id).raft.metrics.current);
      const leaders = metrics.filter((m) => m.role === "leader");
      const leader = leaders[0];
      if (
        leaders.length === 1 &&
        leader &&
        metrics.every((m) => m.leaderId === leader.id && m.term === leader.term)
      ) {
        return this.node(leader.id);
      }
      if (Date.now() > deadline) throw new Error(`no agreed leader among ${among.join(",")}`);
      await this.#changed(among);
    }
  }

  /** Waits until every node in `ids` satisfies `predicate`. */
  async waitAll(
    ids: readonly NodeId[],
    predicate: (m: RaftMetrics) => boolean,
    message: string,
  ): Promise<void> {
    await Promise.all(
      ids.map((id) =>
        this.node(id).raft.metrics.waitFor(predicate, { timeoutMs: waitMs, message }),
      ),
    );
  }

  /** Resolves on the next metrics change of any of `ids` (or after a heartbeat period). */
  #changed(ids: readonly NodeId[]): Promise<void> {
    return new Promise((resolve) => {
      const unsubscribes: (() => void)[] = [];
      const done = () => {
        clearTimeout(timer);
        for (const unsubscribe of unsubscribes) unsubscribe();
        resolve();
      };
      const timer = setTimeout(done, 50);
      for (const id of ids) unsubscribes.push(this.node(id).raft.metrics.subscribe(done));
    });
  }
}
