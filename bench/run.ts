/**
 * The whole benchmark suite: `core`, `inproc`, `catchup`, `floor` (each runtime's HTTP server
 * alone) and `cluster` (with etcd beside Keel when `etcd` is on PATH), each in its own process on
 * the runtime running this script, then a summary of the figures the project's goals name, read
 * back from their JSON in bench/results/.
 *
 *   npm run bench                 quick mode, about two minutes
 *   npm run bench -- --full       the full suite (every variant at every level, longer runs)
 *   npm run bench -- --smoke      tiny durations, well under a minute: checks the suite works
 *   npm run bench -- --only core,inproc
 *
 * Each part also runs alone: npm run bench:core | bench:inproc | bench:catchup | bench:floor |
 * bench:cluster | bench:etcd.
 */
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { scriptCommand } from "../examples/kv/runtime.ts";
import { fmt, printTable, runtime } from "./report.ts";

type Mode = "smoke" | "quick" | "full";
type Part = "core" | "inproc" | "catchup" | "floor" | "cluster";
const PARTS: readonly Part[] = ["core", "inproc", "catchup", "floor", "cluster"];

/** Each part's arguments in each mode. */
const ARGS: Record<Part, Record<Mode, string[]>> = {
  core: {
    smoke: ["--seconds", "0.05", "--warmup", "0.05"],
    quick: ["--quick"],
    full: [],
  },
  inproc: {
    smoke: ["--seconds", "0.2", "--warmup", "0.1", "--writers", "1,16"],
    quick: ["--quick"],
    full: [],
  },
  catchup: {
    smoke: ["--entries", "5000", "--rounds", "1"],
    quick: ["--rounds", "1"],
    full: ["--rounds", "3"],
  },
  floor: {
    smoke: ["--connections", "256", "--seconds", "0.3", "--warmup", "0.1"],
    quick: ["--connections", "256", "--seconds", "3"],
    full: ["--rounds", "2"],
  },
  cluster: { smoke: ["--smoke"], quick: [], full: ["--full"] },
};

const results = (name: string) => new URL(`./results/${name}.json`, import.meta.url);

/** The parts that run Keel in their own process, rather than driving other processes. */
const IN_PROCESS: readonly Part[] = ["core", "inproc", "catchup"];

/**
 * How to run `part` on this runtime. On Node the in-process parts run as an esbuild bundle, plain
 * JavaScript as users run the compiled package: under tsx, esbuild's `keepNames` adds a
 * `__name` call for every named closure created, hot paths included (about a tenth of the CPU
 * per write in `inproc`). Bun and Deno run the TypeScript as it is.
 */
async function partCommand(part: Part): Promise<{ command: string; args: string[] }> {
  const script = fileURLToPath(new URL(`./${part}.ts`, import.meta.url));
  if (runtime().name !== "node" || !IN_PROCESS.includes(part)) return scriptCommand(script);
  const { build } = await import("esbuild");
  const outfile = fileURLToPath(results(part).href.replace(/\.json$/, ".mjs"));
  await build({
    entryPoints: [script],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "warning",
  });
  // The bundle lives in results/: its JSON goes where the script's own would.
  return { command: process.execPath, args: [outfile, "--out", fileURLToPath(results(part))] };
}

async function runPart(part: Part, mode: Mode): Promise<void> {
  const { command, args } = await partCommand(part);
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args, ...ARGS[part][mode]], {
      stdio: "inherit",
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`bench ${part} failed (${code ?? signal})`));
    });
  });
}

async function readJson<T>(name: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(results(name), "utf8")) as T;
  } catch {
    return null;
  }
}

interface CoreReport {
  results: { batchSize: number; entriesPerSecond: number }[];
}
interface InprocReport {
  results: { writers: number; writesPerSecond: number; latencyMs: { p50: number; p99: number } }[];
}
interface FloorReport {
  rows: { side: string; connections: number; requestsPerSecond: number }[];
}
interface CatchupReport {
  latencyMs: number;
  rows: { maxInflight: number; entriesPerSecond: number }[];
}
interface ClusterRow {
  variant: string;
  phase: string;
  connections: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; p999: number };
}
interface ClusterReport {
  etcd: string | null;
  rows: ClusterRow[];
}

interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean | null;
}

/** The goals of the benchmark issue, checked against what this run measured. */
function goals(
  core: CoreReport | null,
  inproc: InprocReport | null,
  catchup: CatchupReport | null,
  floor: FloorReport | null,
  cluster: ClusterReport | null,
): Goal[] {
  const out: Goal[] = [];
  const row = (variant: string, connections: number, phase = "main") =>
    cluster?.rows.find(
      (r) => r.variant === variant && r.connections === connections && r.phase === phase,
    );
  const k256 = row("keel", 256);
  const e256 = row("etcd", 256);
  if (k256 && e256) {
    const ratio = k256.requestsPerSecond / e256.requestsPerSecond;
    out.push({
      goal: "cluster @256: writes/s ≥ 2× etcd",
      measured: `${fmt(k256.requestsPerSecond)} vs ${fmt(e256.requestsPerSecond)} (${fmt(ratio, 2)}×)`,
      met: ratio >= 2,
    });
    // Not a goal: what Node's HTTP stack alone answers, the ceiling of a leader on Node.
    const floors = (floor?.rows ?? []).filter((r) => r.side === "node" && r.connections === 256);
    if (floors.length > 0) {
      const best = Math.max(...floors.map((r) => r.requestsPerSecond));
      out.push({
        goal: "(context) @256: a bare Hono server on Node",
        measured:
          `${fmt(best)} requests/s: Keel ${fmt((100 * k256.requestsPerSecond) / best)}% of it, ` +
          `2× etcd ${fmt((200 * e256.requestsPerSecond) / best)}%`,
        met: null,
      });
    }
    const b256 = row("bun", 256);
    if (b256) {
      const bun = b256.requestsPerSecond / e256.requestsPerSecond;
      out.push({
        goal: "cluster @256 on Bun: writes/s ≥ 2× etcd",
        measured: `${fmt(b256.requestsPerSecond)} vs ${fmt(e256.requestsPerSecond)} (${fmt(bun, 2)}×)`,
        met: bun >= 2,
      });
    }
    out.push({
      goal: "cluster @256: p99 ≤ etcd's",
      measured: `${fmt(k256.latencyMs.p99, 1)} vs ${fmt(e256.latencyMs.p99, 1)} ms`,
      met: k256.latencyMs.p99 <= e256.latencyMs.p99,
    });
  }
  const k1 = row("keel", 1);
  const e1 = row("etcd", 1);
  if (k1 && e1) {
    out.push({
      goal: "cluster @1: p50 ≤ etcd's",
      measured: `${fmt(k1.latencyMs.p50, 2)} vs ${fmt(e1.latencyMs.p50, 2)} ms`,
      met: k1.latencyMs.p50 <= e1.latencyMs.p50,
    });
  }
  // Pipelining pays where round trips are long against the work per batch: a follower catching
  // up over a link with latency. Over loopback HTTP the cluster ratios are shown beside it.
  const best = (n: number) =>
    Math.max(
      0,
      ...(catchup?.rows ?? []).filter((r) => r.maxInflight === n).map((r) => r.entriesPerSecond),
    );
  const clusterGains = (cluster?.rows ?? [])
    .filter((r) => r.variant === "pipeline-off")
    .map((off) => {
      const on = row("keel", off.connections, "pipeline-off");
      return on
        ? `@${off.connections} ${fmt(on.requestsPerSecond / off.requestsPerSecond, 2)}×`
        : "";
    })
    .filter((g) => g !== "");
  if (best(1) > 0 && best(64) > 0) {
    const gain = best(64) / best(1);
    out.push({
      goal: "pipelining on vs off: a clear gain",
      measured:
        `catch-up over ${catchup?.latencyMs} ms links ${fmt(gain, 2)}×` +
        (clusterGains.length > 0 ? `; cluster ${clusterGains.join(", ")}` : ""),
      met: gain > 1.5,
    });
  }
  const i256 = inproc?.results.find((r) => r.writers === 256);
  if (i256) {
    out.push({
      goal: "inproc @256 writers: ≥ 1,000,000 writes/s",
      measured: `${fmt(i256.writesPerSecond)} writes/s`,
      met: i256.writesPerSecond >= 1_000_000,
    });
  }
  if (core && core.results.length > 0) {
    const best = core.results.reduce((a, b) => (b.entriesPerSecond > a.entriesPerSecond ? b : a));
    out.push({
      goal: "core: several million entries/s",
      measured: `${fmt(best.entriesPerSecond)} at batch ${best.batchSize}`,
      met: best.entriesPerSecond >= 2_000_000,
    });
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      full: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: bench/run.ts [--full | --smoke] [--only core,inproc,catchup,floor,cluster]",
    );
    return;
  }
  const mode: Mode = values.smoke ? "smoke" : values.full ? "full" : "quick";
  const parts = values.only === undefined ? PARTS : (values.only.split(",") as Part[]);
  for (const part of parts) {
    if (!PARTS.includes(part)) throw new Error(`--only: unknown part ${part} (known: ${PARTS})`);
  }
  const rt = runtime();
  const started = performance.now();
  console.log(`Keel benchmark suite (${mode}) on ${rt.name} ${rt.version}: ${parts.join(", ")}\n`);
  for (const part of parts) {
    const at = performance.now();
    await runPart(part, mode);
    console.log(`(${part}: ${((performance.now() - at) / 1000).toFixed(0)} s)\n`);
  }

  // Figures from this run only: a part not run is not summarized from an older file.
  const core = parts.includes("core") ? await readJson<CoreReport>("core") : null;
  const inproc = parts.includes("inproc") ? await readJson<InprocReport>("inproc") : null;
  const catchup = parts.includes("catchup") ? await readJson<CatchupReport>("catchup") : null;
  const floor = parts.includes("floor") ? await readJson<FloorReport>("floor") : null;
  const cluster = parts.includes("cluster") ? await readJson<ClusterReport>("cluster") : null;
  // Smoke runs are too short to judge a goal by: they only show that every part works.
  const list = goals(core, inproc, catchup, floor, cluster).map((g) =>
    mode === "smoke" ? { ...g, met: null } : g,
  );
  console.log(`Summary (${mode}, ${((performance.now() - started) / 1000).toFixed(0)} s in all):`);
  printTable(
    ["goal", "measured", "met"],
    list.map((g) => [g.goal, g.measured, g.met === null ? "-" : g.met ? "yes" : "NO"]),
  );
  if (cluster !== null && cluster.etcd === null) {
    console.log("(etcd was not on PATH: no Keel/etcd ratios; see bench/README.md)");
  }
  const out = results("summary");
  await writeFile(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), mode, runtime: rt, goals: list }, null, 2)}\n`,
  );
  console.log(`wrote ${fileURLToPath(out)}`);
}

await main();
