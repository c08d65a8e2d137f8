/**
 * Keel's peer transport on Node, compared: the example service with FetchNetwork on undici's
 * global fetch (`undici`, `KEEL_PEER_FETCH=global`), on adapters/node.ts's `createNodeFetch`
 * (`node-fetch`, `KEEL_PEER_FETCH=node`) and on its `createNodePost` (`node-post`, the default),
 * as 3-node clusters up together, driven like bench/cluster.ts's `keel` variant. Runs
 * interleave: at every level each cluster takes its turn, the order rotating from round to round,
 * and the medians per level are compared with undici's.
 *
 *   npx tsx bench/transport.ts [--connections 1,16,64,256] [--seconds 5] [--warmup 1] [--rounds 2]
 *                              [--sides undici,node-fetch,node-post]
 */
import process from "node:process";
import { type RunningCluster, startKeel } from "./clusters.ts";
import { interleaveArgs, interleaved } from "./interleave.ts";
import { type LoadResult, load, valueOfBytes } from "./load.ts";
import { CpuWindow } from "./procstat.ts";
import { Progress } from "./progress.ts";
import { fmt, printTable, runtime, writeReport } from "./report.ts";

const VALUE_BYTES = 64;
/** Each side and its KEEL_PEER_FETCH (undefined: unset, the service's default). */
const PEER_FETCH = { undici: "global", "node-fetch": "node", "node-post": undefined } as const;
type Side = keyof typeof PEER_FETCH;

interface Row extends LoadResult {
  readonly side: Side;
  readonly round: number;
  readonly cpuMicrosPerWrite: number;
}

const plan = interleaveArgs(process.argv.slice(2), Object.keys(PEER_FETCH) as Side[], {
  connections: "1,16,64,256",
  rounds: "2",
  sides: "undici,node-fetch,node-post",
});
const { levels, seconds, warmupSeconds, rounds, sides: SIDES } = plan;
// The ratios are to undici; a run needs a warm-up (fresh connections are discarded).
if (SIDES[0] !== "undici" || !(warmupSeconds > 0)) {
  throw new Error("--sides: undici first; --warmup: positive");
}

async function start(side: Side): Promise<RunningCluster> {
  // startKeel spawns the nodes with this process's environment.
  const choice = PEER_FETCH[side];
  if (choice === undefined) delete process.env.KEEL_PEER_FETCH;
  else process.env.KEEL_PEER_FETCH = choice;
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
  const usage = new CpuWindow(nodes.map((n) => n.pid));
  const result = await load(cluster.target, valueOfBytes(VALUE_BYTES), {
    connections,
    seconds,
    warmupSeconds,
    onProgress: (phase, elapsed, done) =>
      progress.update(
        `round ${round} ${side} @ ${connections}: ${phase} ${elapsed.toFixed(1)} s, ` +
          `${fmt(elapsed > 0 ? done / elapsed : 0)} writes/s`,
      ),
    onWindow: usage.onWindow,
  });
  cluster.check();
  const cpuSeconds = nodes.reduce(
    (sum, _, i) => sum + (usage.cpuPercent(i) / 100) * result.seconds,
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
  for (const { round, connections, side } of interleaved(plan)) {
    rows.push(
      await measure(clusters.get(side) as RunningCluster, side, connections, round, progress),
    );
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
      side,
      writesPerSecond: median(mine.map((r) => r.requestsPerSecond)),
      p50: median(mine.map((r) => r.latencyMs.p50)),
      p99: median(mine.map((r) => r.latencyMs.p99)),
      cpuMicrosPerWrite: median(mine.map((r) => r.cpuMicrosPerWrite)),
      errors: mine.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0),
    };
  };
  return { connections, sides: SIDES.map(of) };
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
console.log("\nMedians per level, and each side over undici:");
printTable(
  ["conn", "side", "writes/s · p50/p99 ms · cpu µs/write", "w/s ×", "p50 ×", "cpu/write ×"],
  summary.flatMap(({ connections, sides }) => {
    const base = sides[0] as (typeof sides)[number];
    return sides.map((m) => [
      String(connections),
      m.side,
      `${fmt(m.writesPerSecond)} · ${fmt(m.p50, 2)}/${fmt(m.p99, 1)} · ${fmt(m.cpuMicrosPerWrite)}`,
      fmt(m.writesPerSecond / base.writesPerSecond, 2),
      fmt(m.p50 / base.p50, 2),
      fmt(m.cpuMicrosPerWrite / base.cpuMicrosPerWrite, 2),
    ]);
  }),
);
await writeReport(plan.out ?? new URL("./results/transport.json", import.meta.url), {
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
