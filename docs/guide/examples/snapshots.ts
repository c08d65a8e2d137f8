// Snapshots and compaction: three nodes compact their logs by policy, a fourth node joins and
// catches up from a snapshot streamed in chunks, and a restarted node comes back from its
// snapshot plus the log after it. In memory, so the whole story runs in one process.
import {
  type Entry,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  Raft,
  type RaftMetrics,
  type RaftOptionsConfig,
  type SnapshotMeta,
  type StateMachine,
} from "../../../mod.ts";

const encoder = new TextEncoder();

/** A replicated map of `key=value` commands, with streaming snapshot and restore. */
class MapMachine implements StateMachine {
  data = new Map<string, string>();
  /** The index of every snapshot this replica was restored from. */
  readonly restoredFrom: number[] = [];

  apply(entries: readonly Entry[]): Uint8Array[] {
    for (const entry of entries) {
      if (entry.kind !== "command") continue;
      const [key, value] = new TextDecoder().decode(entry.data).split("=");
      this.data.set(key as string, value as string);
    }
    return entries.map(() => new Uint8Array());
  }

  lastApplied(): number {
    return 0; // in memory: on start, the driver restores the latest snapshot and replays the log
  }

  /**
   * The map as JSON lines, in pieces of about 1 KiB. Applies go on while the driver writes the
   * stream to the store, so the entries are copied now: the stream is the state of this call.
   */
  snapshot(): AsyncIterable<Uint8Array> {
    const entries = [...this.data];
    return (async function* () {
      let lines = "";
      for (const entry of entries) {
        lines += `${JSON.stringify(entry)}\n`;
        if (lines.length >= 1024) {
          yield encoder.encode(lines);
          lines = "";
        }
      }
      if (lines !== "") yield encoder.encode(lines);
    })();
  }

  /** Builds a new map line by line as the stream comes, then switches to it at once. */
  async restore(meta: SnapshotMeta, stream: AsyncIterable<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    const data = new Map<string, string>();
    let partial = ""; // a line cut at the chunk's end
    for await (const chunk of stream) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() as string;
      for (const line of lines) data.set(...(JSON.parse(line) as [string, string]));
    }
    if (partial + decoder.decode() !== "") throw new Error("snapshot cut in the middle of a line");
    this.data = data; // a restore that throws stops the node: the map is never half replaced
    this.restoredFrom.push(meta.index);
  }
}

const config: RaftOptionsConfig = {
  // Generous election timeouts: the nodes share one process, which may be busy.
  electionTimeoutMinMs: 1000,
  electionTimeoutMaxMs: 2000,
  snapshotThreshold: 100, // snapshot every 100 applied entries (default 10,000)
  snapshotTrailingEntries: 10, // and keep 10 entries before the snapshot in the log
  snapshotChunkBytes: 4096, // stream snapshots to followers 4 KiB at a time (default 1 MiB)
};
const network = new MemoryNetwork();
interface Node {
  raft: Raft;
  machine: MapMachine;
  logStore: MemoryLogStore;
  snapshotStore: MemorySnapshotStore;
}
const nodes = new Map<string, Node>();

/** Starts `id` on its stores (new ones unless given: a restart keeps them). */
async function startNode(id: string, stores?: Node): Promise<Node> {
  const machine = new MapMachine();
  const logStore = stores?.logStore ?? new MemoryLogStore();
  const snapshotStore = stores?.snapshotStore ?? new MemorySnapshotStore();
  const raft = new Raft({
    id,
    config,
    logStore,
    snapshotStore, // SQLite: `snapshotStore: logStore.snapshots`, in the log's file
    stateMachine: machine,
    network: network.endpoint(id),
  });
  network.register(`mem://${id}`, raft);
  await raft.start();
  const node = { raft, machine, logStore, snapshotStore };
  nodes.set(id, node);
  return node;
}
const waitMs = { timeoutMs: 20_000 };
const where = (m: RaftMetrics) =>
  `snapshot at ${m.snapshotIndex}, log from ${m.firstLogIndex} to ${m.lastLogIndex}`;

// Three nodes; write 300 keys, 30 at a time (the leader batches them).
const members = { n1: "mem://n1", n2: "mem://n2", n3: "mem://n3" };
for (const id of Object.keys(members)) await startNode(id);
await Promise.all([...nodes.values()].map((node) => node.raft.initialize(members)));
const { leaderId } = await (nodes.get("n1") as Node).raft.metrics.waitFor(
  (m) => m.leaderId !== null,
  waitMs,
);
const leader = (nodes.get(leaderId as string) as Node).raft;
await leader.metrics.waitFor((m) => m.role === "leader", waitMs);
for (let i = 0; i < 300; i += 30) {
  const batch = Array.from({ length: 30 }, (_, j) => `key${i + j}=${"v".repeat(32)}${i + j}`);
  await Promise.all(batch.map((command) => leader.write(encoder.encode(command))));
}
const commit = leader.metrics.current.commitIndex;
console.log(`leader ${leader.id} committed 300 keys, up to index ${commit}`);

// Each node snapshots on its own, every 100 entries it applies, and purges its log behind.
for (const [id, node] of nodes) {
  // Once a snapshot is durable and the log purged behind it (less the 10 trailing entries).
  const purged = (m: RaftMetrics) => m.snapshotIndex > 0 && m.firstLogIndex === m.snapshotIndex - 9;
  const metrics = await node.raft.metrics.waitFor(
    (m) => m.lastApplied >= commit && purged(m),
    waitMs,
  );
  console.log(`${id}: ${where(metrics)}`);
}
// Snapshots on demand (the example service's `POST /admin/snapshot`): of what is applied now.
for (const [id, node] of nodes) {
  // A build already running (the policy's) answers first, with its own index: ask again until
  // the snapshot covers everything applied.
  let index = await node.raft.triggerSnapshot();
  while (index < commit) index = await node.raft.triggerSnapshot();
  console.log(`${id}: triggerSnapshot() took ${index}; ${where(node.raft.metrics.current)}`);
}

// A fourth node joins. The leader's log no longer starts at 1, so it gets the snapshot,
// streamed chunk by chunk, and then the entries after it.
network.resetCounters();
const n4 = await startNode("n4");
await leader.changeMembership({ ...members, n4: "mem://n4" });
await leader.write(encoder.encode("after=join"));
const last = leader.metrics.current.commitIndex;
await n4.raft.metrics.waitFor((m) => m.lastApplied >= last, waitMs);
const chunks = network.counters("snapshotChunk").delivered;
const bytes = (await (nodes.get(leader.id) as Node).snapshotStore.current())?.size;
console.log(
  `n4 restored the snapshot at ${n4.machine.restoredFrom}: ${bytes} bytes in ${chunks} chunks`,
);
console.log(`n4: ${where(n4.raft.metrics.current)}`);
const leaderMap = (nodes.get(leader.id) as Node).machine.data;
const same = (node: Node) =>
  JSON.stringify([...node.machine.data]) === JSON.stringify([...leaderMap]);
console.log(`n4 holds ${n4.machine.data.size} keys, the leader's state: ${same(n4)}`);

// A follower restarts on the same stores: its snapshot is restored, then the log replayed.
const followerId = ["n1", "n2", "n3"].find((id) => id !== leader.id) as string;
const follower = nodes.get(followerId) as Node;
await follower.raft.shutdown();
network.unregister(`mem://${followerId}`);
const restarted = await startNode(followerId, follower);
await restarted.raft.metrics.waitFor((m) => m.lastApplied >= last, waitMs);
const { lastApplied } = restarted.raft.metrics.current;
console.log(
  `${followerId} restarted: restored ${restarted.machine.restoredFrom}, replayed to ${lastApplied}, the leader's state: ${same(restarted)}`,
);

for (const node of nodes.values()) await node.raft.shutdown();
network.close(); // clears its timers, so the process can exit at once
