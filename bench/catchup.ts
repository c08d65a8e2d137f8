/**
 * What pipelining buys where it matters: a follower catching up over a link with latency.
 * Three `Raft` nodes in one process on the memory network (FIFO per link, every message delayed
 * `--latency-ms` one way) and memory stores. One follower is cut off while the leader commits
 * `--entries` 64-byte writes with the other; then the link heals and the benchmark times how
 * long the lagging follower takes to hold all of them, with `maxInflight` 1 (one AppendEntries
 * out at a time: one round trip per batch of at most `maxBatchEntries`) and with the default 64
 * (batches leave back to back, a round trip for the whole stream). Runs alternate over
 * `--rounds`, and each prints its time, entries/s and AppendEntries sent.
 *
 *   npm run bench:catchup -- [--entries 200000] [--latency-ms 5] [--rounds 2] [--inflight 1,64]
 *                            [--out bench/results/catchup.json]
 *
 * Runs unchanged on Node (tsx), Bun and Deno.
 */
import { parseArgs } from "node:util";
import {
  type ApplyResponse,
  type Entry,
  MemoryLogStore,
  MemoryNetwork,
  Raft,
  type StateMachine,
} from "../mod.ts";
import { Progress } from "./progress.ts";
import { fmt, printTable, runtime, writeReport } from "./report.ts";

const IDS = ["n1", "n2", "n3"] as const;
const ENTRY_BYTES = 64;
/** Writes in flight while the leader fills the log the follower will miss. */
const FILL_CONCURRENCY = 4096;
const WAIT_MS = 120_000;

const { values } = parseArgs({
  options: {
    entries: { type: "string", default: "200000" },
    "latency-ms": { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    inflight: { type: "string", default: "1,64" },
    out: { type: "string" },
  },
});
const entries = Number(values.entries);
const latencyMs = Number(values["latency-ms"]);
const rounds = Number(values.rounds);
const inflights = values.inflight.split(",").map(Number);
if (
  !(Number.isSafeInteger(entries) && entries > 0 && latencyMs >= 0 && rounds > 0) ||
  !inflights.every((n) => Number.isSafeInteger(n) && n > 0)
) {
  throw new Error("--entries, --rounds, --inflight: positive integers; --latency-ms: >= 0");
}

/** Applies nothing but its index. */
class IndexMachine implements StateMachine {
  lastIndex = 0;
  apply(batch: readonly Entry[]): ApplyResponse[] {
    this.lastIndex = (batch[batch.length - 1] as Entry).index;
    return batch.map(() => new Uint8Array(0));
  }
  lastApplied(): number {
    return 0;
  }
}

interface Row {
  readonly maxInflight: number;
  readonly round: number;
  readonly entries: number;
  readonly seconds: number;
  readonly entriesPerSecond: number;
  /** AppendEntries requests the leader sent the lagging follower while it caught up. */
  readonly appendRequests: number;
}

async function waitUntil(what: string, done: () => boolean): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function run(maxInflight: number, round: number, progress: Progress): Promise<Row> {
  const network = new MemoryNetwork({ seed: round });
  const nodes = IDS.map((id) => {
    const machine = new IndexMachine();
    const raft = new Raft({
      id,
      config: { electionTimeoutMinMs: 300, electionTimeoutMaxMs: 600, maxInflight },
      logStore: new MemoryLogStore(),
      stateMachine: machine,
      network: network.endpoint(id),
    });
    network.register(`mem://${id}`, raft);
    return { id, raft, machine };
  });
  try {
    for (const n of nodes) await n.raft.start();
    const members = Object.fromEntries(IDS.map((id) => [id, `mem://${id}`]));
    await Promise.all(nodes.map((n) => n.raft.initialize(members)));
    await waitUntil("a leader", () => nodes.some((n) => n.raft.metrics.current.role === "leader"));
    const leader = nodes.find((n) => n.raft.metrics.current.role === "leader") as (typeof nodes)[0];
    const lagging = nodes.find((n) => n !== leader) as (typeof nodes)[0];
    network.setFaults({ delayMs: [latencyMs, latencyMs] });
    network.partition([nodes.filter((n) => n !== lagging).map((n) => n.id), [lagging.id]]);

    const data = new Uint8Array(ENTRY_BYTES).fill(7);
    for (let written = 0; written < entries; written += FILL_CONCURRENCY) {
      const count = Math.min(FILL_CONCURRENCY, entries - written);
      progress.update(`maxInflight ${maxInflight}, round ${round}: writing ${written}/${entries}`);
      await Promise.all(Array.from({ length: count }, () => leader.raft.write(data)));
    }
    const target = leader.machine.lastIndex;
    const sentBefore = network.counters("appendEntries").sent;
    progress.update(`maxInflight ${maxInflight}, round ${round}: catching up`);
    const start = performance.now();
    network.heal();
    await waitUntil("the catch-up", () => lagging.machine.lastIndex >= target);
    const seconds = (performance.now() - start) / 1000;
    return {
      maxInflight,
      round,
      entries: target,
      seconds,
      entriesPerSecond: target / seconds,
      appendRequests: network.counters("appendEntries").sent - sentBefore,
    };
  } finally {
    for (const n of nodes) await n.raft.shutdown();
    network.close();
  }
}

const rt = runtime();
console.log(
  `catch-up bench on ${rt.name} ${rt.version}: a follower ${entries} entries behind, ` +
    `${latencyMs} ms one way on every link, maxInflight ${inflights.join(" vs ")}, ${rounds} rounds`,
);
const progress = new Progress();
const rows: Row[] = [];
for (let round = 1; round <= rounds; round++) {
  const order = round % 2 === 1 ? inflights : [...inflights].reverse();
  for (const maxInflight of order) rows.push(await run(maxInflight, round, progress));
}
progress.clear();
printTable(
  ["maxInflight", "round", "entries", "seconds", "entries/s", "AppendEntries"],
  rows.map((r) => [
    String(r.maxInflight),
    String(r.round),
    fmt(r.entries),
    fmt(r.seconds, 3),
    fmt(r.entriesPerSecond),
    fmt(r.appendRequests),
  ]),
);
const best = (n: number) =>
  Math.max(...rows.filter((r) => r.maxInflight === n).map((r) => r.entriesPerSecond));
const base = inflights[0] as number;
for (const n of inflights.slice(1)) {
  console.log(
    `maxInflight ${n} over ${base}: ${fmt(best(n) / best(base), 2)}× entries/s (best runs)`,
  );
}
await writeReport(values.out ?? new URL("./results/catchup.json", import.meta.url), {
  benchmark: "catchup",
  date: new Date().toISOString(),
  runtime: rt,
  entries,
  latencyMs,
  rows,
});
