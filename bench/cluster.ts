/**
 * End-to-end write throughput of the example service (examples/kv/main.ts) as real processes on
 * 127.0.0.1 with SQLite (synchronous=FULL), driven by autocannon: `PUT /kv/{key}` on the leader
 * with 64-byte values, one request in flight per connection. Variants of Keel, and etcd beside it
 * when `etcd` is on PATH, run INTERLEAVED: for each connection count every cluster takes its turn
 * (keel, etcd, then the variants), so a noisy machine disturbs them alike and ratios hold.
 *
 *   npm run bench:cluster -- [--full | --smoke] [--connections 1,16,64,256]
 *                            [--variants keel,etcd,pipeline-off,small-batches,nodes-5,nodes-7]
 *                            [--seconds S] [--warmup S] [--prewarm S] [--out FILE] [--no-chart]
 *   npm run bench:etcd       (keel and etcd only)
 *
 * Writes bench/results/cluster.json and bench/results/cluster.svg (copied to
 * docs/bench-cluster.svg by a default or --full run of the default variants).
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import { runtime as ownRuntime, type RuntimeName } from "../examples/kv/runtime.ts";
import { type ChartSeries, throughputChart } from "./chart.ts";
import {
  ETCD_INSTALL_HINT,
  etcdVersion,
  type KeelTuning,
  type RunningCluster,
  startEtcd,
  startKeel,
} from "./clusters.ts";
import { type LoadResult, load, valueOfBytes } from "./load.ts";
import { CpuWindow } from "./procstat.ts";
import { Progress } from "./progress.ts";
import { fmt, printTable, runtime, writeReport } from "./report.ts";

const VALUE_BYTES = 64;
/** Connections of the load each cluster gets right after it starts (see `prewarmSeconds`). */
const PREWARM_CONNECTIONS = 16;

interface Variant {
  readonly name: string;
  readonly system: "keel" | "etcd";
  readonly nodes: number;
  readonly tuning?: KeelTuning;
  /** The nodes' runtime when not the default one (`--runtime`, else the benchmark's own). */
  readonly runtime?: RuntimeName;
  /** What comparing it with the `keel` row shows, in one line. */
  readonly shows: string;
}

const VARIANTS: readonly Variant[] = [
  {
    name: "keel",
    system: "keel",
    nodes: 3,
    shows: "Keel as shipped: 3 nodes, pipelining on (maxInflight 64), default batch limits",
  },
  {
    name: "etcd",
    system: "etcd",
    nodes: 3,
    shows: "etcd 3.4 on the same machine and load, through its v3 JSON gateway",
  },
  {
    name: "bun",
    system: "keel",
    nodes: 3,
    runtime: "bun",
    shows: "what the runtime costs: the same service on Bun (Bun.serve, bun:sqlite, Bun's fetch)",
  },
  {
    name: "deno",
    system: "keel",
    nodes: 3,
    runtime: "deno",
    shows: "the same on Deno (Deno.serve, node:sqlite, Deno's fetch)",
  },
  {
    name: "pipeline-off",
    system: "keel",
    nodes: 3,
    tuning: { maxInflight: 1 },
    shows: "what pipelining buys: one AppendEntries in flight per follower (maxInflight 1)",
  },
  {
    name: "small-batches",
    system: "keel",
    nodes: 3,
    tuning: { maxBatchEntries: 16, maxBatchBytes: 4096 },
    shows: "what batching buys: AppendEntries of at most 16 entries / 4 KiB",
  },
  {
    name: "nodes-5",
    system: "keel",
    nodes: 5,
    shows: "the cost of a bigger cluster: 5 processes sharing the cores, 4 followers to feed",
  },
  {
    name: "nodes-7",
    system: "keel",
    nodes: 7,
    shows: "the same with 7 nodes (6 followers)",
  },
];

type Mode = "smoke" | "quick" | "full";

/** The variants compared at every level with their clusters up together (and charted). */
const MAIN = ["keel", "etcd", "bun"];

interface Plan {
  readonly mode: Mode;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Load each cluster gets once, right after it starts, before any run is measured. */
  readonly prewarmSeconds: number;
  /** Connection counts, and for each variant the counts it runs at. */
  readonly connections: readonly number[];
  readonly runs: Map<string, readonly number[]>;
  readonly out: string | URL;
  /** The runtime of Keel's nodes (variants that name their own aside). */
  readonly runtime: RuntimeName;
  readonly chart: boolean;
  /** Copy the chart to docs/ (a default run of keel beside etcd at every level). */
  readonly docs: boolean;
}

const USAGE = `usage: bench/cluster.ts [--full | --smoke] [--connections 1,16,64,256]
  [--variants ${VARIANTS.map((v) => v.name).join(",")}]
  [--seconds S] [--warmup S] [--prewarm S] [--out FILE] [--no-chart] [--runtime node|bun|deno]
--runtime:       the runtime of Keel's nodes (default: the one running this script)
--prewarm:       load (16 connections) each cluster gets once after it starts (quick 3 s, full 5 s)
quick (default): 2.5 s + 0.5 s warm-up per run; keel, etcd, bun at every level, variants at 16, 256
--full:          10 s + 2 s per run, every variant at every level
--smoke:         0.5 s runs at 1 and 16 connections (CI: checks the suite still works)`;

function plan(argv: readonly string[]): Plan {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      full: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      connections: { type: "string" },
      variants: { type: "string" },
      seconds: { type: "string" },
      warmup: { type: "string" },
      prewarm: { type: "string" },
      out: { type: "string" },
      "no-chart": { type: "boolean", default: false },
      runtime: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const mode: Mode = values.smoke ? "smoke" : values.full ? "full" : "quick";
  const positive = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!(n > 0)) throw new Error(`--${name}: expected a positive number`);
    return n;
  };
  const seconds = positive("seconds", values.seconds, { smoke: 0.5, quick: 2.5, full: 10 }[mode]);
  const warmupSeconds = positive(
    "warmup",
    values.warmup,
    { smoke: 0.3, quick: 0.5, full: 2 }[mode],
  );
  const prewarmSeconds = positive(
    "prewarm",
    values.prewarm,
    { smoke: 0.3, quick: 3, full: 5 }[mode],
  );
  const allLevels = mode === "smoke" ? [1, 16] : [1, 16, 64, 256];
  const connections =
    values.connections === undefined
      ? allLevels
      : values.connections.split(",").map((s) => {
          const n = Number(s);
          if (!Number.isSafeInteger(n) || n < 1)
            throw new Error("--connections: positive integers");
          return n;
        });
  const defaults =
    mode === "full"
      ? VARIANTS.map((v) => v.name)
      : mode === "quick"
        ? ["keel", "etcd", "bun", "pipeline-off", "small-batches", "nodes-5"]
        : ["keel", "etcd", "pipeline-off"];
  const names = values.variants === undefined ? defaults : values.variants.split(",");
  for (const name of names) {
    if (!VARIANTS.some((v) => v.name === name)) {
      throw new Error(`--variants: unknown ${name} (known: ${VARIANTS.map((v) => v.name)})`);
    }
  }
  // Quick mode runs the variants at two levels only, unless the levels were given.
  const variantLevels =
    mode === "quick" && values.connections === undefined
      ? [16, 256]
      : mode === "smoke" && values.connections === undefined
        ? [16]
        : connections;
  const runs = new Map<string, readonly number[]>();
  for (const name of names) {
    const everyLevel = name === "keel" || name === "etcd" || name === "bun";
    runs.set(name, everyLevel ? connections : variantLevels);
  }
  return {
    mode,
    seconds,
    warmupSeconds,
    prewarmSeconds,
    connections,
    runs,
    out: values.out ?? new URL("./results/cluster.json", import.meta.url),
    runtime: nodesRuntime(values.runtime),
    chart: !values["no-chart"],
    docs:
      mode !== "smoke" &&
      values.connections === undefined &&
      values.seconds === undefined &&
      names.includes("keel") &&
      names.includes("etcd"),
  };
}

function nodesRuntime(name: string | undefined): RuntimeName {
  if (name === undefined) return ownRuntime;
  if (name === "node" || name === "bun" || name === "deno") return name;
  throw new Error(`--runtime: node, bun or deno, not ${name}`);
}

interface NodeUsage {
  readonly id: string;
  readonly leader: boolean;
  /** CPU over the measuring window, percent of one core. */
  readonly cpuPercent: number;
}

export interface ClusterRow extends LoadResult {
  readonly variant: string;
  /** "main", or the variant this row was measured beside (its own baseline turn). */
  readonly phase: string;
  readonly system: "keel" | "etcd";
  readonly nodes: number;
  /** Each node's CPU in the window (leader first). */
  readonly cpu: readonly NodeUsage[];
  /** CPU of the whole cluster per write, µs (all its processes). */
  readonly cpuMicrosPerWrite: number;
  /** CPU of the load generator (autocannon, in this process) in the window, percent of a core. */
  readonly loadCpuPercent: number;
  /** Share of the machine's CPU time (all cores) left idle in the window, percent. */
  readonly idlePercent: number;
  /** Peak resident memory of each node since it started, MiB (VmHWM). */
  readonly peakRssMiB: Readonly<Record<string, number>>;
  /** Another node became leader since the previous run or during this one. */
  readonly leaderChanged: boolean;
}

async function measure(
  cluster: RunningCluster,
  variant: Variant,
  connections: number,
  plan: Plan,
  progress: Progress,
  step: string,
): Promise<Omit<ClusterRow, "phase">> {
  cluster.check();
  // A leader elected since the last run (an election under load) takes the load from now on.
  const movedBefore = await cluster.settle();
  const label = `${step} ${variant.name} @ ${connections} conn`;
  const ordered = [cluster.leader, ...cluster.nodes.filter((n) => n !== cluster.leader)];
  // Every node, then the load generator (this process).
  const usage = new CpuWindow([...ordered.map((n) => n.pid), process.pid]);
  const result = await load(cluster.target, valueOfBytes(VALUE_BYTES), {
    connections,
    seconds: plan.seconds,
    warmupSeconds: plan.warmupSeconds,
    onProgress: (phase, elapsed, done) => {
      const total = phase === "warm-up" ? plan.warmupSeconds : plan.seconds;
      const rate = elapsed > 0 ? done / elapsed : 0;
      progress.update(`${label}: ${phase} ${elapsed.toFixed(1)}/${total} s, ${fmt(rate)} writes/s`);
    },
    onWindow: usage.onWindow,
  });
  cluster.check();
  const movedDuring = await cluster.settle();
  const cpu = ordered.map((n, i) => ({
    id: n.id,
    leader: n === cluster.leader,
    cpuPercent: usage.cpuPercent(i),
  }));
  const cpuSeconds = cpu.reduce((sum, u) => sum + (u.cpuPercent / 100) * result.seconds, 0);
  return {
    variant: variant.name,
    system: variant.system,
    nodes: variant.nodes,
    ...result,
    cpu,
    cpuMicrosPerWrite: result.requests > 0 ? (cpuSeconds * 1e6) / result.requests : Number.NaN,
    loadCpuPercent: usage.cpuPercent(ordered.length),
    idlePercent: usage.idlePercent,
    peakRssMiB: cluster.peakRssMiB(),
    leaderChanged: movedBefore || movedDuring,
  };
}

/** Failed requests, by kind when there are any, and whether the leader moved. */
function errorText(r: ClusterRow): string {
  const kinds = [
    ...Object.entries(r.statusClasses)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`),
    ...(r.errors > 0 ? [`${r.errors} conn`] : []),
    ...(r.timeouts > 0 ? [`${r.timeouts} timeout`] : []),
  ];
  const text = kinds.length === 0 ? "0" : kinds.join(", ");
  return r.leaderChanged ? `${text}, new leader` : text;
}

function ms(n: number): string {
  return Number.isNaN(n) ? "-" : fmt(n, n < 10 ? 2 : 1);
}

function printRows(rows: readonly ClusterRow[]): void {
  printTable(
    [
      "variant",
      "beside",
      "conn",
      "writes/s",
      "p50 ms",
      "p99 ms",
      "p99.9 ms",
      "errors",
      "cpu % (leader, followers)",
      "cpu µs/write",
      "load gen %",
      "idle %",
      "peak MiB",
    ],
    rows.map((r) => [
      r.variant,
      r.phase === "main" ? "" : r.phase,
      String(r.connections),
      fmt(r.requestsPerSecond),
      ms(r.latencyMs.p50),
      ms(r.latencyMs.p99),
      ms(r.latencyMs.p999),
      errorText(r),
      r.cpu.map((u) => fmt(u.cpuPercent)).join(" "),
      fmt(r.cpuMicrosPerWrite),
      fmt(r.loadCpuPercent),
      fmt(r.idlePercent),
      fmt(Math.max(...Object.values(r.peakRssMiB))),
    ]),
  );
}

/** Ratios of `variant` to `base` at each level both ran, from the same interleaved run. */
export function ratios(
  rows: readonly ClusterRow[],
  variant: string,
  base: string,
): { connections: number; throughput: number; p50: number; p99: number }[] {
  const out = [];
  for (const row of rows.filter((r) => r.variant === variant)) {
    const other = rows.find(
      (r) => r.variant === base && r.connections === row.connections && r.phase === row.phase,
    );
    if (other === undefined) continue;
    out.push({
      connections: row.connections,
      throughput: row.requestsPerSecond / other.requestsPerSecond,
      p50: row.latencyMs.p50 / other.latencyMs.p50,
      p99: row.latencyMs.p99 / other.latencyMs.p99,
    });
  }
  return out;
}

function printRatios(rows: readonly ClusterRow[], variant: string, base: string, title: string) {
  const list = ratios(rows, variant, base);
  if (list.length === 0) return;
  console.log(`\n${title}`);
  printTable(
    ["conn", `${variant}/${base} writes/s`, "p50 ratio", "p99 ratio"],
    list.map((r) => [
      String(r.connections),
      Number.isFinite(r.throughput) ? `${fmt(r.throughput, 2)}×` : "-",
      Number.isFinite(r.p50) ? fmt(r.p50, 2) : "-",
      Number.isFinite(r.p99) ? fmt(r.p99, 2) : "-",
    ]),
  );
}

function chartSeries(rows: readonly ClusterRow[], keelRuntime: RuntimeName): ChartSeries[] {
  const series: ChartSeries[] = [];
  const add = (variant: string, label: string, color: string) => {
    const points = rows
      .filter((r) => r.variant === variant && r.phase === "main")
      .map((r) => ({ x: r.connections, y: r.requestsPerSecond }));
    if (points.length > 0) series.push({ label, color, points });
  };
  const name = { node: "Node", bun: "Bun", deno: "Deno" };
  add("keel", `Keel on ${name[keelRuntime]}`, "#2563eb");
  if (keelRuntime !== "bun") add("bun", "Keel on Bun", "#16a34a");
  add("etcd", "etcd 3.4 (JSON gateway)", "#f97316");
  return series;
}

async function main(): Promise<void> {
  const p = plan(process.argv.slice(2));
  const rt = runtime();
  const etcd = p.runs.has("etcd") ? etcdVersion() : null;
  if (p.runs.has("etcd") && etcd === null) {
    console.log(`${ETCD_INSTALL_HINT}\nskipping etcd.`);
    p.runs.delete("etcd");
  }
  const variants = VARIANTS.filter((v) => p.runs.has(v.name));
  console.log(
    `cluster bench (${p.mode}) on ${rt.name} ${rt.version}${etcd ? `, etcd ${etcd}` : ""}: ` +
      `PUT of ${VALUE_BYTES}-byte values, each cluster warmed up ${p.prewarmSeconds} s once, ` +
      `${p.warmupSeconds} s warm-up + ${p.seconds} s per run, runs interleaved`,
  );
  for (const v of variants) console.log(`  ${v.name.padEnd(13)} ${v.shows}`);

  const progress = new Progress();
  const clusters = new Map<string, RunningCluster>();
  const rows: ClusterRow[] = [];
  const stopAll = () => Promise.all([...clusters.values()].map((c) => c.stop()));
  const onSignal = () => {
    progress.clear();
    void stopAll().then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const start = async (v: Variant) => {
    progress.update(`starting ${v.name} (${v.nodes} nodes)`);
    const cluster =
      v.system === "etcd"
        ? await startEtcd(v.nodes)
        : await startKeel(v.nodes, v.tuning, { runtime: v.runtime ?? p.runtime });
    clusters.set(v.name, cluster);
    // A fresh node on a JIT runtime runs its first thousands of requests slower while the hot
    // paths are compiled (a first one-connection run on Node measured half the writes/s of the
    // next ones): every cluster gets the same load first, etcd's included.
    await load(cluster.target, valueOfBytes(VALUE_BYTES), {
      connections: PREWARM_CONNECTIONS,
      seconds: p.prewarmSeconds,
      warmupSeconds: 0.1,
      onProgress: (_phase, elapsed) =>
        progress.update(`warming ${v.name} up: ${elapsed.toFixed(1)} of ${p.prewarmSeconds} s`),
    });
    return cluster;
  };
  const stop = async (v: Variant) => {
    await clusters.get(v.name)?.stop();
    clusters.delete(v.name);
  };
  // The main comparison runs with its clusters up together; every other variant then runs
  // alone beside `keel`, measured again in the same turns, so each ratio has its own baseline
  // and idle clusters (a few % of a core each) do not weigh on the others.
  const main = variants.filter((v) => MAIN.includes(v.name));
  const others = variants.filter((v) => !MAIN.includes(v.name));
  const keel = main.find((v) => v.name === "keel");
  const levels = (v: Variant) => p.runs.get(v.name) ?? [];
  const total =
    main.reduce((n, v) => n + levels(v).length, 0) +
    others.reduce((n, v) => n + levels(v).length * (keel ? 2 : 1), 0);
  let done = 0;
  const turn = async (v: Variant, connections: number, phase: string) => {
    const cluster = clusters.get(v.name) as RunningCluster;
    const step = `[${++done}/${total}]`;
    rows.push({ ...(await measure(cluster, v, connections, p, progress, step)), phase });
  };
  try {
    for (const v of main) await start(v);
    for (const connections of p.connections) {
      for (const v of main) if (levels(v).includes(connections)) await turn(v, connections, "main");
    }
    for (const v of main) if (v !== keel) await stop(v);
    for (const v of others) {
      await start(v);
      for (const connections of levels(v)) {
        if (keel) await turn(keel, connections, v.name);
        await turn(v, connections, v.name);
      }
      await stop(v);
    }
  } finally {
    progress.update("stopping the clusters");
    await stopAll();
    progress.clear();
  }

  printRows(rows);
  printRatios(rows, "keel", "etcd", "Keel / etcd (same run, interleaved):");
  printRatios(rows, "bun", "etcd", "Keel on Bun / etcd (same run):");
  printRatios(rows, "keel", "pipeline-off", "Pipelining on / off:");
  printRatios(rows, "keel", "small-batches", "Default batch limits / small:");
  for (const n of [5, 7]) printRatios(rows, `nodes-${n}`, "keel", `${n} nodes / 3 nodes:`);

  const report = {
    benchmark: "cluster",
    date: new Date().toISOString(),
    runtime: rt,
    etcd,
    mode: p.mode,
    valueBytes: VALUE_BYTES,
    warmupSeconds: p.warmupSeconds,
    prewarmSeconds: p.prewarmSeconds,
    seconds: p.seconds,
    variants: variants.map(({ name, system, nodes, tuning, shows }) => ({
      name,
      system,
      nodes,
      tuning: tuning ?? {},
      shows,
    })),
    rows,
    ratios: {
      keelToEtcd: ratios(rows, "keel", "etcd"),
      bunToEtcd: ratios(rows, "bun", "etcd"),
      pipeliningOnToOff: ratios(rows, "keel", "pipeline-off"),
      defaultToSmallBatches: ratios(rows, "keel", "small-batches"),
    },
  };
  await writeReport(p.out, report);
  if (p.chart) {
    const svg = throughputChart(
      `Writes/s, 3 nodes on one machine, ${VALUE_BYTES}-byte PUTs, fsync per commit`,
      chartSeries(rows, p.runtime),
      `${p.mode} run of ${new Date().toISOString().slice(0, 10)}, runs interleaved, ` +
        `${p.seconds} s each; ${cpus().length} cores shared by the nodes and the load generator`,
    );
    const svgUrl = new URL("./results/cluster.svg", import.meta.url);
    await mkdir(new URL(".", svgUrl), { recursive: true });
    await writeFile(svgUrl, svg);
    console.log(`wrote ${svgUrl.pathname}`);
    if (p.docs && etcd !== null) {
      const docs = new URL("../docs/bench-cluster.svg", import.meta.url);
      await copyFile(svgUrl, docs);
      console.log(`wrote ${docs.pathname}`);
    }
  }
}

await main();
