/**
 * A cluster of the example key-value service (examples/kv/main.ts) as real processes on the
 * runtime running the tests, driven through HTTP only. Ports are picked free up front (the
 * `--cluster` list must name them before the nodes start); every wait polls a condition.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { scriptCommand } from "../helpers/runtime.ts";

/** Bound of every wait on a condition: generous, for a small and busy machine. */
export const WAIT_MS = 15_000;
const POLL_MS = 50;

const root = fileURLToPath(new URL("../../", import.meta.url));
const main = join(root, "examples", "kv", "main.ts");

export interface Status {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly lastApplied: number;
  readonly lastLogIndex: number;
  readonly snapshotIndex: number;
  readonly firstLogIndex: number;
  readonly membership: { readonly voters: string[]; readonly learners: string[] };
}

export interface KvNode {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly data: string;
  /** The running process, or null while stopped. */
  child: ChildProcess | null;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Everything the node wrote on stderr, across restarts: printed when a test fails. */
  log: string;
}

/**
 * A port that was free a moment ago, for a node started later. Drawn from below the kernel's
 * ephemeral range (32768–60999 on Linux), which port 0 and outgoing connections use: a port
 * taken with `listen(0)` and released could be handed to the next `listen(0)` (the chaos
 * harness's link proxies) or to a client's connection before the node binds it (EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  throw new Error("freePort: no free port found in 20000–31999");
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The /status of the node at `url`, or null if it does not answer 200 within `timeoutMs`. */
export async function fetchStatus(url: string, timeoutMs: number): Promise<Status | null> {
  try {
    const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(timeoutMs) });
    if (response.status !== 200) {
      await response.body?.cancel();
      return null;
    }
    return (await response.json()) as Status;
  } catch {
    return null;
  }
}

export class KvCluster {
  readonly nodes: KvNode[];
  readonly cluster: string;

  private constructor(
    nodes: KvNode[],
    readonly dir: string,
    /** Passed to every node as `--secret` when set. */
    readonly secret: string | undefined,
    /** More command-line arguments for every node. */
    readonly args: readonly string[] = [],
  ) {
    this.nodes = nodes;
    this.cluster = nodes.map((n) => `${n.id}=${n.url}`).join(",");
  }

  /** Picks a free port for each of `ids`; nothing starts yet. */
  static async create(
    dir: string,
    ids: readonly string[],
    options: { secret?: string; args?: readonly string[] } = {},
  ): Promise<KvCluster> {
    const nodes: KvNode[] = [];
    for (const id of ids) nodes.push(await newNode(dir, id));
    return new KvCluster(nodes, dir, options.secret, options.args);
  }

  /** A node outside `--cluster` (to be added through the admin API); it does not start yet. */
  async addNode(id: string): Promise<KvNode> {
    const node = await newNode(this.dir, id);
    this.nodes.push(node);
    return node;
  }

  node(id: string): KvNode {
    const node = this.nodes.find((n) => n.id === id);
    assert.ok(node, `no node ${id}`);
    return node;
  }

  /** Starts `node`'s process with the CLI (with `--cluster` unless `cluster` is false). */
  start(node: KvNode, options: { cluster?: boolean } = {}): void {
    assert.equal(node.child, null, `${node.id} is already running`);
    const { command, args } = scriptCommand(main);
    const cli = ["--id", node.id, "--listen", `127.0.0.1:${node.port}`, "--data", node.data];
    if (options.cluster !== false) cli.push("--cluster", this.cluster);
    if (this.secret !== undefined) cli.push("--secret", this.secret);
    cli.push(...this.args);
    const child = spawn(command, [...args, ...cli], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    node.child = child;
    node.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        if (node.child === child) node.child = null;
        resolve({ code, signal });
      });
      child.once("error", (error) => {
        node.log += `spawn ${command} failed: ${error.message}\n`;
        if (node.child === child) node.child = null;
        resolve({ code: null, signal: null });
      });
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      node.log += chunk;
    });
  }

  /** Sends `signal` and resolves with how the process exited. */
  async stop(
    node: KvNode,
    signal: "SIGTERM" | "SIGKILL" = "SIGTERM",
  ): Promise<{ code: number | null; signal: string | null }> {
    const child = node.child;
    assert.ok(child, `${node.id} is not running`);
    child.kill(signal);
    return within(node.exited, WAIT_MS, `${node.id} to exit`);
  }

  /** Kills whatever still runs (cleanup; a graceful stop is tested on its own). */
  async kill(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (n.child === null) return;
        n.child.kill("SIGKILL");
        await n.exited;
      }),
    );
  }

  /** `node`'s /status, or null while it does not answer. */
  status(node: KvNode): Promise<Status | null> {
    return fetchStatus(node.url, 2000);
  }

  /** Polls `probe` until it returns a value other than undefined; fails after WAIT_MS. */
  async until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) {
        const statuses = await Promise.all(this.nodes.map((n) => this.status(n)));
        assert.fail(`${what}: not within ${WAIT_MS} ms; /status: ${JSON.stringify(statuses)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /**
   * The leader every running node agrees on, once it has applied an entry of its own term (so
   * its commit index is current) and every running node has applied as far as it committed.
   */
  settled(): Promise<KvNode> {
    return this.until("a leader every running node agrees on", async () => {
      const running = this.nodes.filter((n) => n.child !== null);
      const statuses = await Promise.all(running.map((n) => this.status(n)));
      if (statuses.some((s) => s === null)) return undefined;
      const all = statuses as Status[];
      const leader = all.find((s) => s.role === "leader");
      if (leader === undefined) return undefined;
      const agreed = all.every(
        (s) =>
          s.leader === leader.id && s.term === leader.term && s.lastApplied >= leader.commitIndex,
      );
      return agreed && leader.commitIndex > 0 ? this.node(leader.id) : undefined;
    });
  }

  /** Dumps every node's stderr (for a failing test). */
  dump(): void {
    for (const n of this.nodes) console.error(`--- stderr of ${n.id} ---\n${n.log}`);
  }
}

async function newNode(dir: string, id: string): Promise<KvNode> {
  const port = await freePort();
  return {
    id,
    port,
    url: `http://127.0.0.1:${port}`,
    data: join(dir, id),
    child: null,
    exited: Promise.resolve({ code: null, signal: null }),
    log: "",
  };
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waiting for ${what}: timed out`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
