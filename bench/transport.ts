/**
 * A/B of Keel's peer transport on Node: the example service with FetchNetwork on undici's global
 * fetch (`KEEL_PEER_FETCH=global`) against adapters/node.ts's node:http fetch (the default), as two
 * 3-node clusters up together, driven like bench/cluster.ts's `keel` variant. Runs interleave:
 * at every level each cluster takes its turn, in alternating order over `--rounds` rounds, and
 * the medians per level are compared.
 *
 *   npx tsx bench/transport.ts [--connections 1,16,64,256] [--seconds 5] [--warmup 1] [--rounds 2]
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { type RunningCluster, startKeel } from "./clusters.ts";
import { type LoadResult, load, valueOfBytes } from "./load.ts";
import { type CpuSample, cpuPercent, cpuSample } from "./procstat.ts";
import { Progress } from "./progress.ts";
import { fmt, printTable, runtime, writeReport } from "./report.ts";

const VALUE_BYTES = 64;
const SIDES = ["undici", "node-http"] as const;
type Side = (typeof SIDES)[number];

interface Row extends LoadResult {
  readonly side: Side;
  readonly round: number;
  readonly cpuMicrosPerWrite: number;
}

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "1,16,64,256" },
    seconds: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    rounds: { type: "string", default: "2" },
    out: { type: "string" },
  },
});
const levels = values.connections.split(",").map(Number);
const seconds = Number(values.seconds);
const warmupSeconds = Number(values.warmup);
const rounds = Number(values.rounds);
if (
  !levels.every((n) => Number.isSafeInteger(n) && n > 0) ||
  !(seconds > 0 && warmupSeconds > 0 && Number.isSafeInteger(rounds) && rounds > 0)
) {
  throw new Error("--connections: positive integers; --seconds, --warmup, --rounds: positive");
}

async function start(side: Side): Promise<RunningCluster> {
  // startKeel spawns the nodes with this process's environment.
  if (side === "undici") process.env.KEEL_PEER_FETCH = "global";
  else delete process.env.KEEL_PEER_FETCH;
  try {
    return await startKeel(3, {});
  } finally {
    delete process.env.KEEL_PEER_FETCH;
  }
}

async function measure(
  cluster: RunningCluster,
  side: Side,
  connections: number,
  round: number,
  progress: Progress,
): Promise<Row> {
  cluster.check();
  await cluster.settle();
  const nodes = cluster.nodes;
  let opened: CpuSample[] = [];
  let closed: CpuSample[] = [];
  const result = await load(cluster.target, valueOfBytes(VALUE_BYTES), {
    connections,
    seconds,
    warmupSeconds,
    onProgress: (phase, elapsed, done) =>
      progress.update(
        `round ${round} ${side} @ ${connections}: ${phase} ${elapsed.toFixed(1)} s, ` +
          `${fmt(elapsed > 0 ? done / elapsed : 0)} writes/s`,
      ),
    onWindow: (edge) => {
      const samples = nodes.map((n) => cpuSample(n.pid));
      if (edge === "open") opened = samples;
      else closed = samples;
    },
  });
  cluster.check();
  const cpuSeconds = nodes.reduce(
    (sum, _, i) =>
      sum + (cpuPercent(opened[i] as CpuSample, closed[i] as CpuSample) / 100) * result.seconds,
    0,
  );
  return {
    ...result,
    side,
    round,
    cpuMicrosPerWrite: result.requests > 0 ? (cpuSeconds * 1e6) / result.requests : Number.NaN,
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const progress = new Progress();
const clusters = new Map<Side, RunningCluster>();
const rows: Row[] = [];
const rt = runtime();
console.log(
  `transport A/B on ${rt.name} ${rt.version}: ${levels.join(", ")} connections, ` +
    `${warmupSeconds} s warm-up + ${seconds} s per run, ${rounds} rounds, interleaved`,
);
try {
  for (const side of SIDES) {
    progress.update(`starting ${side}`);
    clusters.set(side, await start(side));
  }
  for (let round = 1; round <= rounds; round++) {
    for (const [i, connections] of levels.entries()) {
      // Alternate which side goes first, so neither always runs on a warmer machine.
      const order = (round + i) % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        rows.push(
          await measure(clusters.get(side) as RunningCluster, side, connections, round, progress),
        );
      }
    }
  }
} finally {
  progress.update("stopping the clusters");
  await Promise.all([...clusters.values()].map((c) => c.stop()));
  progress.clear();
}

const summary = levels.map((connections) => {
  const of = (side: Side) => {
    const mine = rows.filter((r) => r.side === side && r.connections === connections);
    return {
      writesPerSecond: median(mine.map((r) => r.requestsPerSecond)),
      p50: median(mine.map((r) => r.latencyMs.p50)),
      p99: median(mine.map((r) => r.latencyMs.p99)),
      cpuMicrosPerWrite: median(mine.map((r) => r.cpuMicrosPerWrite)),
      errors: mine.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0),
    };
  };
  return { connections, undici: of("undici"), nodeHttp: of("node-http") };
});

printTable(
  ["conn", "side", "round", "writes/s", "p50 ms", "p99 ms", "cpu µs/write", "errors"],
  rows.map((r) => [
    String(r.connections),
    r.side,
    String(r.round),
    fmt(r.requestsPerSecond),
    fmt(r.latencyMs.p50, 2),
    fmt(r.latencyMs.p99, 2),
    fmt(r.cpuMicrosPerWrite),
    String(r.non2xx + r.errors + r.timeouts),
  ]),
);
console.log("\nMedians per level; node:http over undici:");
printTable(
  ["conn", "undici w/s · p50/p99", "node:http w/s · p50/p99", "w/s ×", "p50 ×", "cpu/write ×"],
  summary.map(({ connections, undici: u, nodeHttp: n }) => [
    String(connections),
    `${fmt(u.writesPerSecond)} · ${fmt(u.p50, 2)}/${fmt(u.p99, 1)}`,
    `${fmt(n.writesPerSecond)} · ${fmt(n.p50, 2)}/${fmt(n.p99, 1)}`,
    fmt(n.writesPerSecond / u.writesPerSecond, 2),
    fmt(n.p50 / u.p50, 2),
    fmt(n.cpuMicrosPerWrite / u.cpuMicrosPerWrite, 2),
  ]),
);
await writeReport(values.out ?? new URL("./results/transport.json", import.meta.url), {
  benchmark: "transport",
  date: new Date().toISOString(),
  runtime: rt,
  valueBytes: VALUE_BYTES,
  warmupSeconds,
  seconds,
  rounds,
  rows,
  summary,
});
