/**
 * The HTTP floor: how many of bench/cluster.ts's writes per second each runtime's HTTP server
 * answers with nothing behind it (bench/floor-server.ts: the key, the body, a JSON answer; no
 * Raft, no storage), under the same load (autocannon, `PUT /kv/{key}`, 64-byte values, one
 * request in flight per connection). It is the ceiling a Keel leader on that runtime works
 * under: the leader does all of this per client write, and Raft besides. Sides run interleaved:
 *
 *   node-http  a bare node:http handler on Node
 *   node       a Hono app on adapters/node.ts (@hono/node-server), as the example service
 *   bun, deno  the same Hono app on adapters/bun.ts (Bun.serve), adapters/deno.ts (Deno.serve)
 *
 * Each row also gives the server's and the load generator's CPU per request and the share of
 * the machine left idle.
 *
 *   npm run bench:floor -- [--connections 1,256] [--seconds 5] [--warmup 1] [--rounds 1]
 *                          [--sides node-http,node,bun,deno] [--out bench/results/floor.json]
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { RuntimeName } from "../examples/kv/runtime.ts";
import { nodeCommand } from "./clusters.ts";
import { interleaveArgs, interleaved } from "./interleave.ts";
import { type LoadResult, load, valueOfBytes, type WriteTarget } from "./load.ts";
import { CpuWindow } from "./procstat.ts";
import { Progress } from "./progress.ts";
import { fmt, printTable, runtime, writeReport } from "./report.ts";

const VALUE_BYTES = 64;
const START_TIMEOUT_MS = 30_000;
const SIDES = {
  "node-http": { runtime: "node", server: "node-http" },
  node: { runtime: "node", server: "hono" },
  bun: { runtime: "bun", server: "hono" },
  deno: { runtime: "deno", server: "hono" },
} as const satisfies Record<string, { runtime: RuntimeName; server: string }>;
type Side = keyof typeof SIDES;

export interface FloorRow extends LoadResult {
  readonly side: Side;
  readonly round: number;
  /** The server's CPU (all its threads) per request, µs. */
  readonly serverMicrosPerRequest: number;
  /** The load generator's CPU per request, µs. */
  readonly loadMicrosPerRequest: number;
  /** Share of the machine's CPU time (all cores) left idle in the window, percent. */
  readonly idlePercent: number;
}

const plan = interleaveArgs(process.argv.slice(2), Object.keys(SIDES) as Side[], {
  connections: "1,256",
  rounds: "1",
  sides: Object.keys(SIDES).join(","),
});
const { levels, seconds, warmupSeconds, rounds, sides } = plan;

interface Server {
  readonly process: ChildProcess;
  readonly target: WriteTarget;
}

/** Starts `side`'s server and resolves once it prints where it listens. */
function startServer(side: Side): Promise<Server> {
  const script = fileURLToPath(new URL("./floor-server.ts", import.meta.url));
  const { command, args } = nodeCommand(SIDES[side].runtime, script);
  const child = spawn(command, [...args, SIDES[side].server], {
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => fail(new Error("did not start in time")), START_TIMEOUT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${side} server: ${error.message}\n${err.slice(-2000)}`));
    };
    child.once("error", fail);
    child.once("exit", (code) => fail(new Error(`exited with ${code}`)));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk;
    });
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match === null) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({
        process: child,
        target: {
          name: side,
          url: match[1] as string,
          method: "PUT",
          headers: { "content-type": "text/plain" },
          request: (key, value) => ({ path: `/kv/${key}`, body: value }),
        },
      });
    });
  });
}

async function measure(
  server: Server,
  side: Side,
  connections: number,
  round: number,
  progress: Progress,
): Promise<FloorRow> {
  const usage = new CpuWindow([server.process.pid as number, process.pid]);
  const result = await load(server.target, valueOfBytes(VALUE_BYTES), {
    connections,
    seconds,
    warmupSeconds,
    onProgress: (phase, elapsed, done) =>
      progress.update(
        `round ${round} ${side} @ ${connections}: ${phase} ${elapsed.toFixed(1)} s, ` +
          `${fmt(elapsed > 0 ? done / elapsed : 0)} requests/s`,
      ),
    onWindow: usage.onWindow,
  });
  const perRequest = (i: number) =>
    result.requests > 0
      ? (usage.cpuPercent(i) / 100) * ((result.seconds * 1e6) / result.requests)
      : Number.NaN;
  return {
    ...result,
    side,
    round,
    serverMicrosPerRequest: perRequest(0),
    loadMicrosPerRequest: perRequest(1),
    idlePercent: usage.idlePercent,
  };
}

const progress = new Progress();
const servers = new Map<Side, Server>();
const rows: FloorRow[] = [];
const rt = runtime();
console.log(
  `HTTP floor on ${rt.name} ${rt.version}: ${sides.join(", ")} at ${levels.join(", ")} ` +
    `connections, ${warmupSeconds} s warm-up + ${seconds} s per run, ${rounds} round(s), interleaved`,
);
try {
  for (const side of sides) {
    progress.update(`starting ${side}`);
    servers.set(side, await startServer(side));
  }
  for (const { round, connections, side } of interleaved(plan)) {
    rows.push(await measure(servers.get(side) as Server, side, connections, round, progress));
  }
} finally {
  for (const server of servers.values()) server.process.kill("SIGTERM");
  progress.clear();
}

printTable(
  [
    "conn",
    "side",
    "round",
    "requests/s",
    "p50 ms",
    "p99 ms",
    "server µs/req",
    "load gen µs/req",
    "idle %",
    "errors",
  ],
  rows.map((r) => [
    String(r.connections),
    r.side,
    String(r.round),
    fmt(r.requestsPerSecond),
    fmt(r.latencyMs.p50, 2),
    fmt(r.latencyMs.p99, 2),
    fmt(r.serverMicrosPerRequest),
    fmt(r.loadMicrosPerRequest),
    fmt(r.idlePercent),
    String(r.non2xx + r.errors + r.timeouts),
  ]),
);
await writeReport(plan.out ?? new URL("./results/floor.json", import.meta.url), {
  benchmark: "floor",
  date: new Date().toISOString(),
  runtime: rt,
  valueBytes: VALUE_BYTES,
  warmupSeconds,
  seconds,
  rounds,
  rows,
});
