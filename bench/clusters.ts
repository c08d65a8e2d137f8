/**
 * The clusters the cluster benchmark drives, as real processes on 127.0.0.1 with their data in a
 * temporary directory: Keel's example service (examples/kv/main.ts on the runtime running the
 * benchmark) and etcd (the `etcd` binary on PATH). Each waits for a leader every node agrees on
 * and says which node to drive.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type RuntimeName, runtime, scriptCommand } from "../examples/kv/runtime.ts";
import type { WriteTarget } from "./load.ts";
import { peakRssMiB } from "./procstat.ts";

const HOST = "127.0.0.1";
/** Bound of every wait for a cluster to form or stop. */
const WAIT_MS = 30_000;
const POLL_MS = 50;

export interface ClusterNode {
  readonly id: string;
  readonly pid: number;
  readonly url: string;
}

export interface RunningCluster {
  readonly system: "keel" | "etcd";
  readonly nodes: readonly ClusterNode[];
  /** The node the load goes to (the leader, as of the last `settle`) and how to write to it. */
  readonly leader: ClusterNode;
  readonly target: WriteTarget;
  /** Waits for a leader every node agrees on; true when it is not the one before. */
  settle(): Promise<boolean>;
  /** Peak resident memory of each node so far, MiB, by node id. */
  peakRssMiB(): Record<string, number>;
  /** Fails if a node exited; its stderr tail in the message. */
  check(): void;
  /** The last few KiB each node wrote on stderr, by node id. */
  logs(): Record<string, string>;
  stop(): Promise<void>;
}

/** Replication limits passed to every Keel node (`--max-inflight` …); unset: the defaults. */
export interface KeelTuning {
  readonly maxInflight?: number;
  readonly maxBatchEntries?: number;
  readonly maxBatchBytes?: number;
}

const root = fileURLToPath(new URL("../", import.meta.url));

/** A port that was free a moment ago: bind port 0, read it, close. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface Child {
  readonly id: string;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  /** The last lines of its stderr, for an error message. */
  tail: string;
}

function start(id: string, command: string, args: readonly string[]): Child {
  const proc = spawn(command, args, {
    cwd: root,
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const child: Child = {
    id,
    process: proc,
    exited: new Promise((resolve) => {
      proc.once("exit", () => resolve());
      proc.once("error", (error) => {
        child.tail += `spawn ${command} failed: ${error.message}\n`;
        resolve();
      });
    }),
    tail: "",
  };
  proc.stderr?.setEncoding("utf8");
  proc.stderr?.on("data", (chunk: string) => {
    child.tail = (child.tail + chunk).slice(-4000);
  });
  return child;
}

function running(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null;
}

async function stopAll(children: readonly Child[], dir: string): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (!running(c)) return;
      c.process.kill("SIGTERM");
      const timer = setTimeout(() => c.process.kill("SIGKILL"), 10_000);
      await c.exited;
      clearTimeout(timer);
    }),
  );
  await rm(dir, { recursive: true, force: true });
}

function checkAll(system: string, children: readonly Child[]): void {
  for (const c of children) {
    if (!running(c)) {
      const how = c.process.exitCode ?? c.process.signalCode;
      throw new Error(`${system} ${c.id} exited (${how}); its stderr ends with:\n${c.tail}`);
    }
  }
}

/** Polls `probe` until it returns a value; fails after WAIT_MS or when a node exits. */
async function until<T>(
  what: string,
  children: readonly Child[],
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + WAIT_MS;
  for (;;) {
    checkAll(what, children);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function json<T>(url: string, init?: RequestInit): Promise<T | undefined> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
  if (!response.ok) {
    await response.body?.cancel();
    return undefined;
  }
  return (await response.json()) as T;
}

/** A started cluster; it has no leader until `settle()` resolves. */
function cluster(
  system: "keel" | "etcd",
  children: readonly Child[],
  urls: readonly string[],
  dir: string,
  /** The index of the leader every node agrees on, or undefined for now. */
  findLeader: () => Promise<number | undefined>,
  targetFor: (leader: ClusterNode) => WriteTarget,
): RunningCluster {
  let stopped: Promise<void> | null = null;
  const peaks: Record<string, number> = {};
  const nodes = children.map((c, i) => ({
    id: c.id,
    pid: c.process.pid ?? 0,
    url: urls[i] as string,
  }));
  let leader: ClusterNode | null = null;
  let target: WriteTarget | null = null;
  return {
    system,
    nodes,
    get leader() {
      if (leader === null) throw new Error(`${system}: no leader yet`);
      return leader;
    },
    get target() {
      if (target === null) throw new Error(`${system}: no leader yet`);
      return target;
    },
    async settle() {
      const size = nodes.length;
      const index = await until(`a ${system} leader among ${size} nodes`, children, findLeader);
      const found = nodes[index] as ClusterNode;
      const changed = leader !== null && leader !== found;
      if (leader !== found) target = targetFor(found);
      leader = found;
      return changed;
    },
    peakRssMiB() {
      for (const n of nodes) {
        const peak = peakRssMiB(n.pid);
        // Keep the last reading of a node that has exited.
        if (!Number.isNaN(peak)) peaks[n.id] = peak;
      }
      return { ...peaks };
    },
    check: () => checkAll(system, children),
    logs: () => Object.fromEntries(children.map((c) => [c.id, c.tail])),
    stop() {
      stopped ??= stopAll(children, dir);
      return stopped;
    },
  };
}

/** Keel's example service on `size` nodes, SQLite with synchronous=FULL (its default). */
export async function startKeel(
  size: number,
  tuning: KeelTuning = {},
  options: {
    /** The runtime of the nodes; default: the one running the benchmark. */
    readonly runtime?: RuntimeName;
    /** Extra arguments for the runtime (e.g. `--cpu-prof-dir=DIR` on Node or Deno). */
    readonly runtimeArgs?: readonly string[];
  } = {},
): Promise<RunningCluster> {
  const dir = await mkdtemp(join(tmpdir(), "keel-bench-"));
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const ports: number[] = [];
  for (const _ of ids) ports.push(await freePort());
  const urls = ports.map((p) => `http://${HOST}:${p}`);
  const members = ids.map((id, i) => `${id}=${urls[i]}`).join(",");
  const flags: string[] = [];
  if (tuning.maxInflight !== undefined) flags.push("--max-inflight", String(tuning.maxInflight));
  if (tuning.maxBatchEntries !== undefined) {
    flags.push("--max-batch-entries", String(tuning.maxBatchEntries));
  }
  if (tuning.maxBatchBytes !== undefined) {
    flags.push("--max-batch-bytes", String(tuning.maxBatchBytes));
  }
  const main = join(root, "examples", "kv", "main.ts");
  const nodeRuntime = options.runtime ?? runtime;
  const { command, args } = nodeCommand(nodeRuntime, main);
  const extra = options.runtimeArgs ?? [];
  // Deno takes its flags after `run`; Node and Bun before the script.
  const commandArgs =
    nodeRuntime === "deno"
      ? [...args.slice(0, 1), ...extra, ...args.slice(1)]
      : [...extra, ...args];
  const children = ids.map((id, i) =>
    start(id, command, [
      ...commandArgs,
      ...["--id", id, "--listen", `${HOST}:${ports[i]}`, "--data", join(dir, id)],
      ...["--cluster", members, ...flags],
    ]),
  );
  try {
    interface Status {
      id: string;
      role: string;
      term: number;
      leader: string | null;
      commitIndex: number;
      lastApplied: number;
    }
    const findLeader = async () => {
      const all = await Promise.all(urls.map((u) => json<Status>(`${u}/status`)));
      const leader = all.find((s) => s?.role === "leader");
      if (leader === undefined) return undefined;
      const agreed = all.every(
        (s) =>
          s !== undefined &&
          s.leader === leader.id &&
          s.term === leader.term &&
          s.lastApplied >= leader.commitIndex,
      );
      return agreed && leader.commitIndex > 0 ? ids.indexOf(leader.id) : undefined;
    };
    const started = cluster("keel", children, urls, dir, findLeader, (leader) => ({
      name: "keel",
      url: leader.url,
      method: "PUT",
      headers: { "content-type": "text/plain" },
      request: (key, value) => ({ path: `/kv/${key}`, body: value }),
    }));
    await started.settle();
    return started;
  } catch (error) {
    await stopAll(children, dir);
    throw error;
  }
}

/** The command running `script` on `name`: this process's runtime, or the npm package's binary. */
export function nodeCommand(
  name: RuntimeName,
  script: string,
): { command: string; args: string[] } {
  if (name === runtime) return scriptCommand(script);
  const bin = (tool: string) =>
    fileURLToPath(new URL(`../node_modules/.bin/${tool}`, import.meta.url));
  switch (name) {
    case "node":
      return {
        command: "node",
        args: ["--import", fileURLToPath(import.meta.resolve("tsx")), script],
      };
    case "bun":
      return { command: bin("bun"), args: [script] };
    case "deno":
      return { command: bin("deno"), args: ["run", "-A", script] };
  }
}

/** The etcd binary's version line, or null when `etcd` is not on PATH. */
export function etcdVersion(): string | null {
  try {
    const result = spawnSync("etcd", ["--version"], { encoding: "utf8", timeout: 10_000 });
    if (result.status !== 0) return null;
    return /etcd Version: (\S+)/.exec(result.stdout)?.[1] ?? "unknown";
  } catch {
    return null;
  }
}

export const ETCD_INSTALL_HINT =
  "etcd is not on PATH: install Debian's etcd 3.4 with `sudo apt-get install -y etcd-server` " +
  "(the package starts a system service you may stop: `sudo systemctl disable --now etcd`)";

/**
 * etcd on `size` nodes with its default durability (fsync of the WAL before a commit), driven
 * through its v3 JSON gateway (`POST /v3/kv/put`, base64 key and value) on the leader.
 */
export async function startEtcd(size: number): Promise<RunningCluster> {
  const dir = await mkdtemp(join(tmpdir(), "etcd-bench-"));
  const ids = Array.from({ length: size }, (_, i) => `e${i + 1}`);
  const clientPorts: number[] = [];
  const peerPorts: number[] = [];
  for (const _ of ids) {
    clientPorts.push(await freePort());
    peerPorts.push(await freePort());
  }
  const urls = clientPorts.map((p) => `http://${HOST}:${p}`);
  const peers = peerPorts.map((p) => `http://${HOST}:${p}`);
  const initial = ids.map((id, i) => `${id}=${peers[i]}`).join(",");
  const children = ids.map((id, i) =>
    start(id, "etcd", [
      ...["--name", id, "--data-dir", join(dir, id)],
      ...["--listen-client-urls", urls[i] as string, "--advertise-client-urls", urls[i] as string],
      ...["--listen-peer-urls", peers[i] as string],
      ...["--initial-advertise-peer-urls", peers[i] as string],
      ...["--initial-cluster", initial, "--initial-cluster-state", "new"],
      ...["--initial-cluster-token", `bench-${process.pid}`],
      ...["--logger", "zap", "--log-level", "error"],
    ]),
  );
  try {
    interface EtcdStatus {
      header: { member_id: string };
      leader: string;
    }
    const findLeader = async () => {
      const all = await Promise.all(
        urls.map((u) =>
          json<EtcdStatus>(`${u}/v3/maintenance/status`, { method: "POST", body: "{}" }),
        ),
      );
      const leader = all[0]?.leader;
      if (leader === undefined || leader === "0") return undefined;
      if (!all.every((s) => s?.leader === leader)) return undefined;
      const index = all.findIndex((s) => s?.header.member_id === leader);
      return index >= 0 ? index : undefined;
    };
    const base64 = (s: string) => Buffer.from(s).toString("base64");
    const started = cluster("etcd", children, urls, dir, findLeader, (leader) => ({
      name: "etcd",
      url: leader.url,
      method: "POST",
      headers: { "content-type": "application/json" },
      request: (key, value) => ({
        path: "/v3/kv/put",
        body: `{"key":"${base64(key)}","value":"${base64(value)}"}`,
      }),
    }));
    await started.settle();
    return started;
  } catch (error) {
    await stopAll(children, dir);
    throw error;
  }
}
