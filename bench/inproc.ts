/**
 * Throughput and latency of whole `Raft` nodes in one process: a 3-node cluster on the memory
 * network and memory log stores, the driver's real batching, group commit and timers.
 *
 * For each level of concurrency a fresh cluster is formed and elects a leader; then `writers`
 * loops each run `await leader.write(data)` with a 64-byte payload, back to back. After a
 * warm-up, writes that complete within the measuring window are counted and their latency
 * (write call to resolution) recorded. When the writers stop, every follower must apply exactly
 * what the leader applied (same entries, in order, same digest) and the leader's state machine
 * must have applied exactly the writes that resolved.
 *
 *   npm run bench:inproc -- [--seconds 3] [--warmup 1] [--quick] [--writers 1,16,64,256]
 *                           [--out bench/results/inproc.json]
 *
 * Runs unchanged on Node (tsx), Bun and Deno (timing with the web-standard performance.now()).
 */
import process from "node:process";
import {
  type ApplyResponse,
  type Entry,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  type NodeId,
  Raft,
  type RaftOptionsConfig,
  resolveConfig,
  type SnapshotMeta,
  type StateMachine,
} from "../mod.ts";
import { benchArgs } from "./args.ts";
import { Histogram } from "./histogram.ts";
import { Progress } from "./progress.ts";
import { fmt, printTable, runtime, writeReport } from "./report.ts";

const ENTRY_BYTES = 64;
const IDS = ["n1", "n2", "n3"] as const;
/** Timings of a LAN; every other limit is the core's and the driver's default. */
const CONFIG: RaftOptionsConfig = {
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  heartbeatIntervalMs: 50,
  // Compaction as a deployment runs it (etcd's default threshold), so the logs, and the heap the
  // collector walks, stay bounded however many writes a level makes. Followers lag by far less
  // than the trailing entries, so none needs a snapshot sent.
  snapshotThreshold: 100_000,
  snapshotTrailingEntries: 50_000,
};
const FORM_TIMEOUT_MS = 10_000;
const SETTLE_TIMEOUT_MS = 10_000;
const PROGRESS_MS = 250;

interface Options {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly writers: readonly number[];
  readonly out: string | URL;
}

function parseOptions(argv: readonly string[]): Options {
  const args = benchArgs(argv, {
    usage:
      "usage: bench/inproc.ts [--seconds S] [--warmup S] [--quick] [--writers 1,16,...] [--out FILE]",
    levelsName: "writers",
    levels: [1, 16, 64, 256],
    out: new URL("./results/inproc.json", import.meta.url),
    seconds: { normal: 3, quick: 1 },
    warmup: { normal: 1, quick: 0.5 },
  });
  const { seconds, warmupSeconds, levels: writers, out } = args;
  return { seconds, warmupSeconds, writers, out };
}

const EMPTY = new Uint8Array(0);

/**
 * Counts what it applies and answers every command with an empty response. Checks that entries
 * arrive contiguously and keeps a digest of (index, term, first payload byte) so replicas can be
 * compared cheaply.
 */
class CountingStateMachine implements StateMachine {
  commands = 0;
  lastIndex = 0;
  digest = 0;

  apply(entries: readonly Entry[]): ApplyResponse[] {
    const responses: ApplyResponse[] = [];
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      if (entry.index !== this.lastIndex + 1) {
        throw new Error(`applied ${entry.index} after ${this.lastIndex}`);
      }
      this.lastIndex = entry.index;
      if (entry.kind === "command") {
        this.commands++;
        const mix = (entry.index * 31 + entry.term) ^ (entry.data[0] as number);
        this.digest = (Math.imul(this.digest, 0x01000193) + mix) | 0;
      }
      responses.push(EMPTY);
    }
    return responses;
  }

  lastApplied(): number {
    return 0; // keeps nothing: a restarted node restores its snapshot and replays the log
  }

  /** The counters, as one chunk. */
  async *snapshot(): AsyncIterable<Uint8Array> {
    const { commands, lastIndex, digest } = this;
    yield new TextEncoder().encode(JSON.stringify({ commands, lastIndex, digest }));
  }

  async restore(_meta: SnapshotMeta, data: AsyncIterable<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of data) text += decoder.decode(chunk, { stream: true });
    text += decoder.decode();
    Object.assign(this, JSON.parse(text) as Pick<this, "commands" | "lastIndex" | "digest">);
  }
}

interface BenchNode {
  readonly id: NodeId;
  readonly address: string;
  readonly raft: Raft;
  readonly store: MemoryLogStore;
  readonly machine: CountingStateMachine;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(what: string, timeoutMs: number, done: () => boolean): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

class Cluster {
  readonly network = new MemoryNetwork({ seed: 1 });
  readonly nodes: readonly BenchNode[] = IDS.map((id) => {
    const store = new MemoryLogStore();
    const machine = new CountingStateMachine();
    const raft = new Raft({
      id,
      config: CONFIG,
      logStore: store,
      snapshotStore: new MemorySnapshotStore(),
      stateMachine: machine,
      network: this.network.endpoint(id),
    });
    return { id, address: `mem://${id}`, raft, store, machine };
  });

  /** Starts and initializes every node, and returns the leader they agree on. */
  async form(): Promise<BenchNode> {
    for (const node of this.nodes) {
      this.network.register(node.address, node.raft);
      await node.raft.start();
    }
    const members = Object.fromEntries(this.nodes.map((n) => [n.id, n.address]));
    await Promise.all(this.nodes.map((n) => n.raft.initialize(members)));
    let leader: BenchNode | undefined;
    await waitUntil("leader election", FORM_TIMEOUT_MS, () => {
      const metrics = this.nodes.map((n) => n.raft.metrics.current);
      const leaders = this.nodes.filter((n) => n.raft.metrics.current.role === "leader");
      leader = leaders[0];
      return (
        leaders.length === 1 &&
        metrics.every((m) => m.leaderId === leader?.id && m.term === metrics[0]?.term)
      );
    });
    return leader as BenchNode;
  }

  /** Waits until every follower applied what the leader applied, and compares them. */
  async settle(leader: BenchNode, resolvedWrites: number): Promise<number> {
    const target = leader.machine.lastIndex;
    await waitUntil("followers catching up", SETTLE_TIMEOUT_MS, () =>
      this.nodes.every((n) => {
        const fatal = n.raft.metrics.current.error;
        if (fatal) throw new Error(`${n.id} stopped: ${fatal.message}`);
        return n.machine.lastIndex >= target;
      }),
    );
    if (leader.machine.commands !== resolvedWrites) {
      throw new Error(
        `the leader applied ${leader.machine.commands} commands, ${resolvedWrites} writes resolved`,
      );
    }
    for (const node of this.nodes) {
      const m = node.machine;
      if (
        m.lastIndex !== target ||
        m.commands !== leader.machine.commands ||
        m.digest !== leader.machine.digest
      ) {
        throw new Error(
          `${node.id} applied ${m.commands} commands up to ${m.lastIndex} (digest ${m.digest}), ` +
            `the leader ${leader.machine.commands} up to ${target} (digest ${leader.machine.digest})`,
        );
      }
    }
    return target;
  }

  async shutdown(): Promise<void> {
    for (const node of this.nodes) {
      this.network.unregister(node.address);
      await node.raft.shutdown();
    }
    this.network.close();
  }
}

interface Counters {
  readonly time: number;
  /** User + system CPU time of the process (all threads: GC helpers too), µs. */
  readonly cpuMicros: number;
  readonly leaderAppends: number;
  readonly leaderEntries: number;
  readonly messages: number;
}

interface Result {
  readonly writers: number;
  readonly seconds: number;
  readonly writes: number;
  readonly writesPerSecond: number;
  readonly latencyMs: {
    readonly p50: number;
    readonly p99: number;
    readonly mean: number;
    readonly max: number;
  };
  /** LogStore writes on the leader during the window, and entries per write (group commit). */
  readonly leaderAppends: number;
  readonly entriesPerAppend: number;
  /** Requests and responses on the memory network during the window, per write. */
  readonly messagesPerWrite: number;
  /**
   * CPU time of the process per write during the window (µs, every thread): a measure of work
   * that a busy machine disturbs less than writes/s.
   */
  readonly cpuMicrosPerWrite: number;
  /** Last index every node applied after settling. */
  readonly finalIndex: number;
}

async function runLevel(writers: number, opts: Options, progress: Progress): Promise<Result> {
  const label = `${String(writers).padStart(4)} writers`;
  progress.update(`${label}: forming the cluster`);
  const cluster = new Cluster();
  try {
    return await measure(cluster, writers, opts, progress, label);
  } finally {
    await cluster.shutdown();
    progress.clear();
  }
}

async function measure(
  cluster: Cluster,
  writers: number,
  opts: Options,
  progress: Progress,
  label: string,
): Promise<Result> {
  const leader = await cluster.form();
  const counters = (time: number): Counters => ({
    time,
    cpuMicros: cpuMicros(),
    leaderAppends: leader.store.writeCount,
    leaderEntries: leader.store.entriesWritten,
    messages: cluster.network.totalCounters().sent,
  });

  const begin = performance.now();
  const measureStart = begin + opts.warmupSeconds * 1000;
  const measureEnd = measureStart + opts.seconds * 1000;
  const latencies = new Histogram();
  let resolved = 0;
  let atStart: Counters | undefined;
  let atEnd: Counters | undefined;
  let nextProgress = begin + PROGRESS_MS;

  let lastProgress = { time: begin, resolved: 0 };
  const onProgress = (now: number): void => {
    nextProgress = now + PROGRESS_MS;
    if (!progress.visible) return;
    // The rate since the previous update.
    const rate = ((resolved - lastProgress.resolved) / (now - lastProgress.time)) * 1000;
    lastProgress = { time: now, resolved };
    const phase =
      now < measureStart
        ? `warm-up ${((now - begin) / 1000).toFixed(1)}/${opts.warmupSeconds} s`
        : `${((now - measureStart) / 1000).toFixed(1)}/${opts.seconds} s`;
    progress.update(`${label}: ${phase}, ${fmt(rate)} writes/s`);
  };

  // Every writer reuses its payload: entries are immutable values, and the memory network and
  // store keep references, so nothing is copied either way.
  // A named function: profiles find the measuring loop by this name (profile.ts --window writer).
  async function writer(n: number): Promise<void> {
    const data = new Uint8Array(ENTRY_BYTES).fill(n & 0xff);
    const raft = leader.raft;
    // One clock read per write: the next write starts in the same synchronous run.
    let t0 = performance.now();
    for (;;) {
      await raft.write(data);
      const t1 = performance.now();
      resolved++;
      if (t1 >= measureStart) {
        if (t1 >= measureEnd) {
          atEnd ??= counters(t1);
          return;
        }
        atStart ??= counters(t1);
        latencies.record(t1 - t0);
      }
      if (t1 >= nextProgress) onProgress(t1);
      t0 = t1;
    }
  }
  await Promise.all(Array.from({ length: writers }, (_, n) => writer(n)));

  progress.update(`${label}: settling`);
  const finalIndex = await cluster.settle(leader, resolved);

  const start = atStart ?? counters(measureStart);
  const end = atEnd ?? counters(measureEnd);
  const seconds = opts.seconds;
  const measured = latencies.count;
  const appends = end.leaderAppends - start.leaderAppends;
  return {
    writers,
    seconds,
    writes: measured,
    writesPerSecond: measured / seconds,
    latencyMs: {
      p50: latencies.percentile(50),
      p99: latencies.percentile(99),
      mean: measured > 0 ? latencies.sum / measured : Number.NaN,
      max: latencies.max,
    },
    leaderAppends: appends,
    entriesPerAppend: appends > 0 ? (end.leaderEntries - start.leaderEntries) / appends : 0,
    messagesPerWrite: measured > 0 ? (end.messages - start.messages) / measured : 0,
    cpuMicrosPerWrite: measured > 0 ? (end.cpuMicros - start.cpuMicros) / measured : 0,
    finalIndex,
  };
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

function printResults(results: readonly Result[]): void {
  const header = [
    "writers",
    "writes/s",
    "p50 ms",
    "p99 ms",
    "entries/append",
    "msgs/write",
    "cpu µs/write",
  ];
  const rows = results.map((r) => [
    String(r.writers),
    fmt(r.writesPerSecond),
    fmt(r.latencyMs.p50, 3),
    fmt(r.latencyMs.p99, 3),
    fmt(r.entriesPerAppend, 1),
    fmt(r.messagesPerWrite, 3),
    fmt(r.cpuMicrosPerWrite, 2),
  ]);
  printTable(header, rows);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const rt = runtime();
  console.log(
    `inproc bench on ${rt.name} ${rt.version}: 3 Raft nodes, memory network and log stores, ` +
      `${ENTRY_BYTES}-byte writes, ${opts.warmupSeconds}s warm-up + ${opts.seconds}s per level`,
  );
  const progress = new Progress();
  const results: Result[] = [];
  for (const writers of opts.writers) results.push(await runLevel(writers, opts, progress));
  printResults(results);

  const report = {
    benchmark: "inproc",
    date: new Date().toISOString(),
    runtime: rt,
    nodes: IDS.length,
    entryBytes: ENTRY_BYTES,
    warmupSeconds: opts.warmupSeconds,
    seconds: opts.seconds,
    config: resolveConfig(CONFIG),
    results,
  };
  await writeReport(opts.out, report);
}

await main();
