/**
 * The chaos harness's cluster: nodes of the example key-value service (examples/kv/main.ts) as
 * real processes on 127.0.0.1, each with its SQLite data directory, and a {@link LinkProxy} on
 * every directed peer link (node i reaches node j through proxy i→j, via `--peer-route`).
 * Clients and the admin API talk to the nodes directly. Each node's stderr is appended to
 * `DIR/ID.log`, across restarts.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { RuntimeName } from "../helpers/runtime.ts";
import { fetchStatus, freePort, type Status } from "../kv/cluster.ts";
import { type LinkMode, LinkProxy } from "./proxy.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const main = join(root, "examples", "kv", "main.ts");

/** The command that runs the example service on `runtime` (the harness itself runs on Node). */
function nodeCommand(runtime: RuntimeName): { command: string; args: string[] } {
  switch (runtime) {
    case "node":
      return { command: process.execPath, args: ["--import", import.meta.resolve("tsx"), main] };
    case "bun":
      return { command: join(root, "node_modules", ".bin", "bun"), args: [main] };
    case "deno":
      return { command: join(root, "node_modules", ".bin", "deno"), args: ["run", "-A", main] };
  }
}

/** A node's answer to GET /status: the example service's, as test/kv reads it. */
export type { Status };

export interface ChaosNode {
  readonly id: string;
  readonly port: number;
  /** Its base URL, as the membership and the clients know it. */
  readonly url: string;
  readonly data: string;
  /** The running process, or null while it is down. */
  child: ChildProcess | null;
  /** Stopped with SIGSTOP and not yet continued. */
  paused: boolean;
  exited: Promise<void>;
  /** Exits the harness did not cause (a crash is a finding): code or signal, and when. */
  readonly crashes: string[];
}

export class ChaosCluster {
  readonly nodes: ChaosNode[];
  /** `from->to` → the proxy of that directed link. */
  readonly links = new Map<string, LinkProxy>();
  readonly #logs = new Map<string, WriteStream>();
  /** Processes the harness is killing on purpose: their exit is not a crash. */
  readonly #killing = new Set<ChildProcess>();

  private constructor(
    nodes: ChaosNode[],
    readonly dir: string,
    readonly secret: string,
    /** More command-line flags for every node (e.g. its snapshot policy). */
    readonly flags: readonly string[],
    /** The runtime the nodes run on. */
    readonly runtime: RuntimeName,
  ) {
    this.nodes = nodes;
  }

  /** Picks the nodes' ports and starts a proxy on every directed link; no node starts yet. */
  static async create(
    dir: string,
    ids: readonly string[],
    secret: string,
    flags: readonly string[] = [],
    runtime: RuntimeName = "node",
  ): Promise<ChaosCluster> {
    const nodes: ChaosNode[] = [];
    for (const id of ids) {
      const port = await freePort();
      nodes.push({
        id,
        port,
        url: `http://127.0.0.1:${port}`,
        data: join(dir, id),
        child: null,
        paused: false,
        exited: Promise.resolve(),
        crashes: [],
      });
    }
    const cluster = new ChaosCluster(nodes, dir, secret, flags, runtime);
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        const proxy = new LinkProxy(from.id, to.id, to.port);
        await proxy.listen();
        cluster.links.set(`${from.id}->${to.id}`, proxy);
      }
    }
    return cluster;
  }

  node(id: string): ChaosNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  link(from: string, to: string): LinkProxy {
    const proxy = this.links.get(`${from}->${to}`);
    if (proxy === undefined) throw new Error(`no link ${from}->${to}`);
    return proxy;
  }

  /** Starts `node` from its data directory (forming the cluster if that is empty). */
  start(node: ChaosNode): void {
    if (node.child !== null) throw new Error(`${node.id} is already running`);
    const { command, args } = nodeCommand(this.runtime);
    const cluster = this.nodes.map((n) => `${n.id}=${n.url}`).join(",");
    const routes = this.nodes
      .filter((n) => n !== node)
      .map((n) => `${n.id}=http://127.0.0.1:${this.link(node.id, n.id).port}`)
      .join(",");
    const cli = ["--id", node.id, "--listen", `127.0.0.1:${node.port}`, "--data", node.data];
    cli.push("--cluster", cluster, "--secret", this.secret, "--peer-route", routes, ...this.flags);
    const child = spawn(command, [...args, ...cli], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    node.child = child;
    node.paused = false;
    const log = this.#log(node.id);
    log.write(`--- ${new Date().toISOString()} start (pid ${child.pid})\n`);
    child.stderr?.on("data", (chunk: Buffer) => log.write(chunk));
    node.exited = new Promise((resolve) => {
      const exit = (what: string) => {
        if (node.child === child) {
          node.child = null;
          node.paused = false;
        }
        if (!this.#killing.delete(child)) node.crashes.push(`${new Date().toISOString()} ${what}`);
        log.write(`--- ${new Date().toISOString()} exit: ${what}\n`);
        resolve();
      };
      child.once("exit", (code, signal) => exit(signal ?? `code ${code}`));
      child.once("error", (error) => exit(`spawn failed: ${error.message}`));
    });
  }

  /** `kill -9`, and resolves once the process is gone. */
  async kill(node: ChaosNode): Promise<void> {
    const child = node.child;
    if (child === null) return;
    this.#killing.add(child);
    child.kill("SIGKILL");
    await node.exited;
  }

  pause(node: ChaosNode): void {
    if (node.child === null || node.paused) return;
    node.child.kill("SIGSTOP");
    node.paused = true;
  }

  resume(node: ChaosNode): void {
    if (node.child === null || !node.paused) return;
    node.child.kill("SIGCONT");
    node.paused = false;
  }

  setLink(from: string, to: string, mode: LinkMode): void {
    this.link(from, to).setMode(mode);
  }

  /** Every link passes again. */
  healNetwork(): void {
    for (const proxy of this.links.values()) proxy.setMode("pass");
  }

  /** `node`'s /status, or null while it does not answer within `timeoutMs`. */
  async status(node: ChaosNode, timeoutMs = 1000): Promise<Status | null> {
    if (node.child === null || node.paused) return null;
    return fetchStatus(node.url, timeoutMs);
  }

  /** Kills every process (continuing paused ones first does not matter to SIGKILL). */
  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n)));
  }

  /** The synchronous last resort on the harness's exit: no child outlives it. */
  killAllNow(): void {
    for (const node of this.nodes) {
      if (node.child === null) continue;
      this.#killing.add(node.child);
      node.child.kill("SIGKILL");
    }
  }

  /** Kills the nodes, closes the proxies and the log files. */
  async close(): Promise<void> {
    await this.killAll();
    await Promise.all([...this.links.values()].map((proxy) => proxy.close()));
    await Promise.all(
      [...this.#logs.values()].map((log) => new Promise<void>((resolve) => log.end(resolve))),
    );
    this.#logs.clear();
  }

  /** How many lines of the nodes' logs (after `close`) contain `text`. */
  async countLogLines(text: string): Promise<number> {
    let count = 0;
    for (const node of this.nodes) {
      const log = await readFile(join(this.dir, `${node.id}.log`), "utf8").catch(() => "");
      for (const line of log.split("\n")) if (line.includes(text)) count++;
    }
    return count;
  }

  #log(id: string): WriteStream {
    let log = this.#logs.get(id);
    if (log === undefined) {
      log = createWriteStream(join(this.dir, `${id}.log`), { flags: "a" });
      this.#logs.set(id, log);
    }
    return log;
  }
}
