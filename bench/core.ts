/**
 * Throughput of the pure core alone: a simulated 3-node cluster with no I/O.
 *
 * Messages are delivered in process through one FIFO (a ring buffer, no per-message closures);
 * storage effects are acknowledged at once with `persisted` and `apply` with `applied`. The
 * leader keeps `--window` proposals outstanding so replication is pipelined (see the core's
 * maxInflight). Each batch size runs on a fresh cluster: warm up, then measure for a fixed wall
 * time; a proposal counts once the leader applies it, and the followers must have caught up at
 * the end.
 *
 *   npm run bench:core -- [--seconds 2] [--warmup 0.5] [--quick] [--sizes 1,16,256,4096]
 *                         [--window 32] [--out bench/results/core.json]
 *
 * Runs unchanged on Node (tsx), Bun and Deno.
 */
import process from "node:process";
import {
  createState,
  defaultConfig,
  type Effect,
  type Input,
  type RaftState,
  step,
} from "../mod.ts";
import { benchArgs } from "./args.ts";
import { fmt, printTable, runtime, writeReport } from "./report.ts";

const ENTRY_BYTES = 64;
const IDS = ["n1", "n2", "n3"] as const;

interface Options {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly sizes: readonly number[];
  readonly window: number;
  readonly out: string | URL;
}

function parseOptions(argv: readonly string[]): Options {
  const args = benchArgs(argv, {
    usage:
      "usage: bench/core.ts [--seconds S] [--warmup S] [--quick] [--sizes 1,16,...] [--window N] [--out FILE]",
    levelsName: "sizes",
    levels: [1, 16, 256, 4096],
    out: new URL("./results/core.json", import.meta.url),
    seconds: { normal: 2, quick: 0.25 },
    warmup: { normal: 0.5, quick: 0.1 },
    extra: { window: 32 },
  });
  const { seconds, warmupSeconds, levels: sizes, out } = args;
  return { seconds, warmupSeconds, sizes, window: args.extra.window as number, out };
}

/** FIFO of (node, input) pairs on a growable ring buffer: O(1), no shifting, no closures. */
class InputQueue {
  private nodes = new Uint8Array(1024);
  private inputs: (Input | undefined)[] = new Array(1024).fill(undefined);
  private head = 0;
  private size = 0;
  private mask = 1023;

  get length(): number {
    return this.size;
  }

  push(node: number, input: Input): void {
    if (this.size > this.mask) this.grow();
    const slot = (this.head + this.size) & this.mask;
    this.nodes[slot] = node;
    this.inputs[slot] = input;
    this.size++;
  }

  /** The node of the next input; call `take` right after. */
  peekNode(): number {
    return this.nodes[this.head] as number;
  }

  take(): Input {
    const slot = this.head;
    const input = this.inputs[slot] as Input;
    this.inputs[slot] = undefined;
    this.head = (slot + 1) & this.mask;
    this.size--;
    return input;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const nodes = new Uint8Array(capacity);
    const inputs: (Input | undefined)[] = new Array(capacity).fill(undefined);
    for (let i = 0; i < this.size; i++) {
      const slot = (this.head + i) & this.mask;
      nodes[i] = this.nodes[slot] as number;
      inputs[i] = this.inputs[slot];
    }
    this.nodes = nodes;
    this.inputs = inputs;
    this.head = 0;
    this.mask = capacity - 1;
  }
}

class Cluster {
  readonly states: RaftState[];
  readonly queue = new InputQueue();
  /** Last index each node's state machine received (checked contiguous). */
  readonly applied: number[];
  readonly index = new Map<string, number>();
  leader = -1;
  steps = 0;
  messages = 0;
  /** Leader-side: last index proposed so far. */
  proposed = 0;
  proposals = 0;
  private nextRequestId = 1;

  constructor() {
    this.states = IDS.map((id, i) => {
      this.index.set(id, i);
      return createState({ id, seed: 42 });
    });
    this.applied = IDS.map(() => 0);
  }

  deliver(node: number, input: Input): void {
    const result = step(this.states[node] as RaftState, input);
    this.states[node] = result.state;
    this.steps++;
    const effects = result.effects;
    for (let i = 0; i < effects.length; i++) this.execute(node, effects[i] as Effect);
  }

  private execute(node: number, e: Effect): void {
    switch (e.type) {
      case "send":
        this.messages++;
        this.queue.push(this.index.get(e.message.to) as number, {
          type: "message",
          message: e.message,
        });
        return;
      case "appendLog": {
        const last = e.entries[e.entries.length - 1];
        if (last) {
          const input: Input = {
            type: "persisted",
            index: last.index,
            term: last.term,
            epoch: e.epoch,
          };
          this.queue.push(node, input);
        }
        return;
      }
      case "apply": {
        const first = e.entries[0];
        const last = e.entries[e.entries.length - 1];
        if (!first || !last) return;
        if (first.index !== (this.applied[node] as number) + 1) {
          throw new Error(`${IDS[node]} applied ${first.index} after ${this.applied[node]}`);
        }
        this.applied[node] = last.index;
        this.queue.push(node, { type: "applied", index: last.index });
        return;
      }
      case "roleChanged":
        if (e.role === "leader") this.leader = node;
        else if (this.leader === node) this.leader = -1;
        return;
      case "proposalAccepted":
      case "saveHardState":
      case "truncateLog":
      case "armTimer":
      case "cancelTimer":
        return; // storage is "immediate"; there is no clock
      case "proposalRejected":
      case "initializeRejected":
      case "loadEntries":
        throw new Error(`unexpected effect from ${IDS[node]}: ${JSON.stringify(e)}`);
    }
  }

  /** Delivers everything queued (and whatever that produces). */
  drain(): void {
    const q = this.queue;
    while (q.length > 0) {
      const node = q.peekNode();
      this.deliver(node, q.take());
    }
  }

  /** Starts, initializes and elects the first node by firing its election timer. */
  boot(): void {
    const membership = { voters: [...IDS], learners: [], addresses: {} };
    for (let i = 0; i < IDS.length; i++) {
      this.deliver(i, { type: "start" });
      this.deliver(i, { type: "initialize", membership });
    }
    this.drain();
    const generation = (this.states[0] as RaftState).timers.election;
    this.deliver(0, { type: "timeout", timer: "election", generation });
    this.drain();
    if (this.leader !== 0) throw new Error("node 1 did not win the election");
    this.proposed = (this.states[0] as RaftState).log.lastIndex;
  }

  propose(commands: readonly Uint8Array[]): void {
    this.deliver(this.leader, { type: "propose", requestId: this.nextRequestId++, commands });
    this.proposed += commands.length;
    this.proposals++;
  }

  /**
   * Keeps `window` proposals of `commands` outstanding (proposed, not yet applied on the leader)
   * while delivering queued inputs one at a time, until `deadline` (performance.now()).
   */
  pump(commands: readonly Uint8Array[], window: number, deadline: number): void {
    const q = this.queue;
    const leader = this.leader;
    const limit = window * commands.length;
    for (let n = 1; ; n++) {
      while (this.proposed - (this.applied[leader] as number) < limit) this.propose(commands);
      if (q.length === 0) throw new Error("stalled: nothing queued with proposals outstanding");
      const node = q.peekNode();
      this.deliver(node, q.take());
      if ((n & 255) === 0 && performance.now() >= deadline) return;
    }
  }

  /** Lets everything in flight finish and tells the followers the final commit index. */
  settle(): void {
    this.drain();
    const leader = this.states[this.leader] as RaftState;
    this.deliver(this.leader, {
      type: "timeout",
      timer: "heartbeat",
      generation: leader.timers.heartbeat,
    });
    this.drain();
    const expected = this.applied[this.leader] as number;
    for (let i = 0; i < IDS.length; i++) {
      const s = this.states[i] as RaftState;
      if (this.applied[i] !== expected || s.commitIndex !== expected) {
        throw new Error(
          `${IDS[i]} did not catch up: applied ${this.applied[i]}, commit ${s.commitIndex}, leader applied ${expected}`,
        );
      }
    }
    if (expected !== this.proposed) throw new Error(`applied ${expected} of ${this.proposed}`);
  }
}

interface Result {
  readonly batchSize: number;
  readonly seconds: number;
  readonly entries: number;
  readonly proposals: number;
  readonly steps: number;
  readonly messages: number;
  readonly entriesPerSecond: number;
  readonly proposalsPerSecond: number;
  readonly stepsPerEntry: number;
  readonly messagesPerEntry: number;
  readonly nsPerStep: number;
  /** Last index every node applied after settling (the followers caught up). */
  readonly finalIndex: number;
}

function runSize(batchSize: number, opts: Options): Result {
  const commands: Uint8Array[] = [];
  for (let i = 0; i < batchSize; i++) commands.push(new Uint8Array(ENTRY_BYTES).fill(i & 0xff));
  const cluster = new Cluster();
  cluster.boot();
  cluster.pump(commands, opts.window, performance.now() + opts.warmupSeconds * 1000);

  const leader = cluster.leader;
  const entries0 = cluster.applied[leader] as number;
  const steps0 = cluster.steps;
  const messages0 = cluster.messages;
  const start = performance.now();
  cluster.pump(commands, opts.window, start + opts.seconds * 1000);
  const elapsed = (performance.now() - start) / 1000;
  const entries = (cluster.applied[leader] as number) - entries0;
  const steps = cluster.steps - steps0;
  const messages = cluster.messages - messages0;

  cluster.settle();
  return {
    batchSize,
    seconds: elapsed,
    entries,
    proposals: entries / batchSize,
    steps,
    messages,
    entriesPerSecond: entries / elapsed,
    proposalsPerSecond: entries / batchSize / elapsed,
    stepsPerEntry: steps / entries,
    messagesPerEntry: messages / entries,
    nsPerStep: (elapsed * 1e9) / steps,
    finalIndex: cluster.applied[leader] as number,
  };
}

function printResults(results: readonly Result[]): void {
  const header = ["batch", "entries/s", "proposals/s", "steps/entry", "msgs/entry"];
  const rows = results.map((r) => [
    String(r.batchSize),
    fmt(r.entriesPerSecond),
    fmt(r.proposalsPerSecond),
    fmt(r.stepsPerEntry, 3),
    fmt(r.messagesPerEntry, 3),
  ]);
  printTable(header, rows);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const rt = runtime();
  console.log(
    `core bench on ${rt.name} ${rt.version}: 3 nodes, ${ENTRY_BYTES}-byte entries, ` +
      `${opts.window} proposals outstanding (maxInflight ${defaultConfig.maxInflight}), ` +
      `${opts.warmupSeconds}s warm-up + ${opts.seconds}s per size`,
  );
  const results: Result[] = [];
  for (const size of opts.sizes) results.push(runSize(size, opts));
  printResults(results);

  const report = {
    benchmark: "core",
    date: new Date().toISOString(),
    runtime: rt,
    nodes: IDS.length,
    entryBytes: ENTRY_BYTES,
    window: opts.window,
    warmupSeconds: opts.warmupSeconds,
    seconds: opts.seconds,
    config: defaultConfig,
    results,
  };
  await writeReport(opts.out, report);
}

await main();
