/**
 * One node of the example key-value service, on whichever runtime runs it:
 *
 *   npx tsx examples/kv/main.ts --id n1 --listen 127.0.0.1:7001 --data ./data/n1 \
 *       --cluster n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003 \
 *       [--secret S]
 *   bun examples/kv/main.ts …
 *   deno run -A examples/kv/main.ts …
 *
 * The log lives in `DATA/raft.db` (SQLite, synchronous FULL, on the runtime's own SQLite). Cluster
 * URLs are the members' base URLs; the Raft RPCs are mounted at `<url>/raft`.
 *
 * - On an empty data directory, `--cluster` forms that cluster (like etcd's initial cluster): the
 *   founding members may all start at once.
 * - An existing data directory wins: `--cluster` is then ignored.
 * - Without `--cluster` an empty node waits, uninitialized, to be added to a cluster.
 *
 * It prints `listening on http://HOST:PORT` on stdout once it serves; log lines go to stderr.
 * SIGTERM or SIGINT stops it gracefully (exit code 0); a failure exits with code 1.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import type { NodeId } from "../../src/core/types.ts";
import type { Logger } from "../../src/driver/logger.ts";
import { Raft, type RaftOptionsConfig } from "../../src/driver/raft.ts";
import { FetchNetwork, type FetchNetworkOptions } from "../../src/net/fetch.ts";
import type { FetchFunction, PostFunction } from "../../src/net/post.ts";
import { kvApp, RAFT_PATH } from "./api.ts";
import { type PeerRoutes, parsePeerRoutes, RoutedNetwork } from "./routed-network.ts";
import { exitOnFailure, loadAdapter, runtime } from "./runtime.ts";
import { KvStateMachine } from "./state-machine.ts";

const USAGE = `usage: main.ts --id ID --listen HOST:PORT --data DIR [--cluster ID=URL,...] [--secret S]
  --cluster  the founding members and their base URLs, e.g.
             n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003
             (used on an empty data directory only)
  --secret   cluster secret guarding /raft and /admin (the same on every node)
  --max-inflight N, --max-batch-entries N, --max-batch-bytes N
             replication limits (defaults: the library's; used by bench/cluster.ts)
  --snapshot-threshold N, --snapshot-trailing-entries N
             snapshot every N applied entries (0: only on POST /admin/snapshot), and
             log entries kept behind a snapshot (defaults: the library's)`;

/** Timings with room for three processes and their fsyncs on a small, busy machine. */
const config: RaftOptionsConfig = {
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  heartbeatIntervalMs: 50,
  rpcTimeoutMs: 1000,
  readTimeoutMs: 5000,
};

interface Options {
  readonly id: NodeId;
  readonly hostname: string;
  readonly port: number;
  readonly data: string;
  readonly cluster: Readonly<Record<NodeId, string>> | null;
  readonly secret: string | undefined;
  /** Hidden `--peer-route ID=URL,…`: peers reached through URL (the chaos harness's proxies). */
  readonly peerRoutes: PeerRoutes;
  /** Replication limits given on the command line (the benchmark's variants). */
  readonly tuning: RaftOptionsConfig;
}

const options = parseOptions(process.argv.slice(2));
const { id } = options;

const logger: Logger = {
  log(level, message, fields) {
    if (level === "debug") return;
    process.stderr.write(`${id} ${level} ${message} ${JSON.stringify(fields)}\n`);
  },
};

process.on("unhandledRejection", (reason) => fail("unhandled rejection", reason));
process.on("uncaughtException", (error) => fail("uncaught exception", error));

const { serve, openSqliteLogStore } = await loadAdapter();
await mkdir(options.data, { recursive: true });
const store = await openSqliteLogStore(join(options.data, "raft.db"), { synchronous: "full" });
const machine = new KvStateMachine();
const peerClient = await loadPeerClient();
const network = new RoutedNetwork(
  new FetchNetwork({ secret: options.secret, logger, ...peerClient?.options }),
  options.peerRoutes,
);
const raft = new Raft({
  id,
  config: { ...config, ...options.tuning },
  logStore: store,
  // Snapshots live in the same SQLite file as the log.
  snapshotStore: store.snapshots,
  stateMachine: machine,
  network,
  logger,
});

// Loaded (and the log replayed into the state machine) before the first request can reach it.
await raft.start();
const loaded = raft.metrics.current;
const empty =
  loaded.term === 0 && loaded.lastLogIndex === 0 && loaded.membership.voters.length === 0;
if (!empty) {
  if (options.cluster !== null) log("existing data directory: --cluster is ignored");
} else if (options.cluster !== null) {
  const members = Object.fromEntries(
    Object.entries(options.cluster).map(([member, url]) => [member, `${url}${RAFT_PATH}`]),
  );
  await raft.initialize(members);
  log(`forming a new cluster of ${Object.keys(members).join(", ")}`);
} else {
  log("no data and no --cluster: waiting, uninitialized, to be added to a cluster");
}

const app = kvApp(raft, machine, { secret: options.secret });
const server = await serve(app, { hostname: options.hostname, port: options.port });
// A node that stops by itself (its store or state machine failed) takes the process down.
void raft.closed.then((error) => {
  if (error !== null) fail("the node stopped", error);
});
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.stdout.write(`listening on http://${options.hostname}:${server.port}\n`);

let stopping: Promise<void> | null = null;

/** Stops the node, its transport, its server and its file, then exits with code 0. */
function stop(): Promise<void> {
  stopping ??= (async () => {
    try {
      await raft.shutdown();
      network.close();
      peerClient?.close();
      await server.close();
      await store.close();
    } catch (error) {
      fail("shutdown failed", error);
      return;
    }
    log("stopped");
    process.exit(0);
  })();
  return stopping;
}

/**
 * On Node, peers are reached through adapters/node.ts's node:http client, `createNodePost`: a
 * fetch, undici's or even one on node:http, costs more CPU per RPC (bench/README.md).
 * `KEEL_PEER_FETCH=global` uses the global fetch instead and `KEEL_PEER_FETCH=node` adapters/node.ts's
 * `createNodeFetch` (bench/transport.ts's comparison). Bun and Deno use their own fetch.
 */
async function loadPeerClient(): Promise<{
  options: Pick<FetchNetworkOptions, "fetch" | "post">;
  close(): void;
} | null> {
  const choice = process.env.KEEL_PEER_FETCH;
  if (runtime !== "node" || choice === "global") return null;
  // Computed, like loadAdapter's, so no other runtime loads the Node adapter.
  const specifier = `../../adapters/${runtime}.ts`;
  const adapter = (await import(specifier)) as {
    createNodeFetch(): FetchFunction & { close(): void };
    createNodePost(): PostFunction & { close(): void };
  };
  if (choice === "node") {
    const fetch = adapter.createNodeFetch();
    return { options: { fetch }, close: () => fetch.close() };
  }
  const post = adapter.createNodePost();
  return { options: { post }, close: () => post.close() };
}

function parseOptions(args: string[]): Options {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        id: { type: "string" },
        listen: { type: "string" },
        data: { type: "string" },
        cluster: { type: "string" },
        secret: { type: "string" },
        "peer-route": { type: "string" },
        "max-inflight": { type: "string" },
        "max-batch-entries": { type: "string" },
        "max-batch-bytes": { type: "string" },
        "snapshot-threshold": { type: "string" },
        "snapshot-trailing-entries": { type: "string" },
      },
      strict: true,
    }));
  } catch (error) {
    usage((error as Error).message);
  }
  const { id, listen, data, cluster, secret } = values;
  if (id === undefined || id === "") usage("--id is required");
  if (data === undefined || data === "") usage("--data is required");
  if (listen === undefined) usage("--listen is required");
  const match = /^(.+):(\d+)$/.exec(listen);
  const port = Number(match?.[2]);
  if (match === null || !(port >= 0 && port <= 65535)) usage(`--listen ${listen}: not HOST:PORT`);
  if (secret === "") usage("--secret must not be empty");
  return {
    id,
    hostname: match[1] as string,
    port,
    data,
    cluster: cluster === undefined ? null : parseCluster(id, cluster),
    secret,
    peerRoutes: peerRoutesOf(values["peer-route"]),
    tuning: parseTuning(values),
  };
}

/** The replication and snapshot settings among `values`: integers, each optional. */
function parseTuning(values: Record<string, string | undefined>): RaftOptionsConfig {
  const tuning: Record<string, number> = {};
  const flags = {
    "max-inflight": "maxInflight",
    "max-batch-entries": "maxBatchEntries",
    "max-batch-bytes": "maxBatchBytes",
    "snapshot-threshold": "snapshotThreshold",
    "snapshot-trailing-entries": "snapshotTrailingEntries",
  } as const;
  for (const [flag, key] of Object.entries(flags)) {
    const raw = values[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    const least = flag.startsWith("snapshot-") ? 0 : 1;
    if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(n) || n < least) {
      usage(`--${flag} ${raw}: expected an integer >= ${least}`);
    }
    tuning[key] = n;
  }
  return tuning;
}

function peerRoutesOf(list: string | undefined): PeerRoutes {
  if (list === undefined) return {};
  try {
    return parsePeerRoutes(list);
  } catch (error) {
    usage(`--peer-route: ${(error as Error).message}`);
  }
}

/** `n1=http://127.0.0.1:7001,n2=…` → { n1: "http://127.0.0.1:7001", … }, checked. */
function parseCluster(self: NodeId, list: string): Record<NodeId, string> {
  const members: Record<NodeId, string> = {};
  for (const item of list.split(",")) {
    const at = item.indexOf("=");
    const member = item.slice(0, at).trim();
    const url = item
      .slice(at + 1)
      .trim()
      .replace(/\/+$/, "");
    if (at <= 0 || url === "") usage(`--cluster: '${item}' is not ID=URL`);
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      usage(`--cluster: '${url}' is not an http(s) URL`);
    }
    if (member in members) usage(`--cluster: ${member} appears twice`);
    members[member] = url;
  }
  if (!(self in members)) usage(`--cluster does not include this node (${self})`);
  return members;
}

function usage(problem: string): never {
  process.stderr.write(`${problem}\n${USAGE}\n`);
  process.exit(2);
}

function log(message: string): void {
  process.stderr.write(`${id} ${message}\n`);
}

function fail(what: string, error: unknown): void {
  exitOnFailure(id, what, error);
}
