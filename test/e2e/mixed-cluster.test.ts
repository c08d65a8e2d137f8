/**
 * A mixed cluster: one node on Node, one on Bun, one on Deno, each a separate process running
 * test/e2e/node-process.ts on its own SQLite file. They form one cluster over HTTP (the wire
 * format is the same everywhere), agree on a leader, and replicate 50 writes to every node in
 * the same order.
 *
 * It spawns the same three processes whichever runtime runs the suite, so it runs only under the
 * Node test runner (the suite runs on all three runtimes; three runs would add nothing but time).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type RuntimeName, runtime } from "../helpers/runtime.ts";

const SECRET = "e2e mixed cluster secret";
const RUNTIMES: readonly RuntimeName[] = ["node", "bun", "deno"];
/** Bound of every wait: process start-up, agreement on a leader, replication, exit. */
const WAIT_MS = 20_000;
/** Interval between two polls of /control/state. */
const POLL_MS = 50;

const root = fileURLToPath(new URL("../../", import.meta.url));
const script = join(root, "test", "e2e", "node-process.ts");

interface NodeState {
  readonly id: string;
  readonly runtime: RuntimeName;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly lastApplied: number;
  readonly applied: readonly string[];
}

interface NodeProcess {
  readonly runtime: RuntimeName;
  readonly child: ChildProcess;
  /** Settles when the process exited, or could not be spawned (code and signal null). */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  stderr: string;
  base: string;
}

/** The command that runs node-process.ts on `target`; paths resolved from the repository root. */
function commandFor(target: RuntimeName): { command: string; args: string[] } {
  switch (target) {
    case "node":
      // Under Node, the very binary running the tests; otherwise `node` on PATH.
      return {
        command: runtime === "node" ? process.execPath : "node",
        args: ["--import", "tsx", script],
      };
    case "bun":
      return { command: join(root, "node_modules", ".bin", "bun"), args: [script] };
    case "deno":
      return { command: join(root, "node_modules", ".bin", "deno"), args: ["run", "-A", script] };
  }
}

const skip =
  runtime === "node"
    ? false
    : `spawns the same Node, Bun and Deno processes from any runtime: it runs once, under the Node test runner (this is ${runtime})`;

const processes: NodeProcess[] = [];
let dir = "";

after(async () => {
  await Promise.all(processes.map(terminate));
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

it("a cluster of one Node, one Bun and one Deno process elects a leader and replicates 50 writes", {
  skip,
  timeout: 60_000,
}, async () => {
  dir = await mkdtemp(join(tmpdir(), "keel-e2e-mixed-"));
  try {
    for (const target of RUNTIMES) processes.push(start(target));
    await Promise.all(processes.map(ready));
    const members = Object.fromEntries(processes.map((p) => [p.runtime, `${p.base}/raft`]));
    await Promise.all(
      processes.map(async (p) => {
        const response = await control(p, "/control/initialize", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(members),
        });
        assert.equal(response.status, 200, `${p.runtime} initialized: ${await response.text()}`);
      }),
    );

    let leader = await agreedLeader();
    const commands = Array.from({ length: 50 }, (_, i) => `m${i}`);
    // 25 at once, then 25 one after another, each through the node that leads at the time.
    const concurrent = await Promise.all(commands.slice(0, 25).map((c) => write(leader, c)));
    const sequential: Written[] = [];
    for (const command of commands.slice(25)) {
      const written = await write(leader, command);
      sequential.push(written);
      leader = written.node;
    }
    // The log's order: by index (concurrent requests reach the leader in any order).
    const expected = [...concurrent, ...sequential]
      .sort((a, b) => a.index - b.index)
      .map((w) => w.command);
    assert.deepEqual(expected.slice(25), commands.slice(25), "sequential writes in order");

    const states = await poll(
      (all) => all.every((s) => s.applied.length >= expected.length),
      `every node applied ${expected.length} commands`,
    );
    for (const state of states) {
      assert.deepEqual(state.applied, expected, `${state.runtime} applied every write in order`);
    }
    assert.deepEqual(states.map((s) => s.runtime).sort(), [...RUNTIMES].sort());

    // One node leaves through the control API, the others on SIGTERM: all exit cleanly.
    const [first, ...others] = processes as [NodeProcess, ...NodeProcess[]];
    const answer = await control(first, "/control/shutdown", { method: "POST" });
    assert.equal(answer.status, 200);
    await answer.body?.cancel();
    for (const p of others) p.child.kill("SIGTERM");
    for (const p of processes) {
      const exit = await within(p.exited, `${p.runtime} to exit`);
      assert.deepEqual(exit, { code: 0, signal: null }, `${p.runtime} exited cleanly`);
    }
  } catch (error) {
    for (const p of processes) {
      console.error(`--- stderr of the ${p.runtime} node ---\n${p.stderr}`);
    }
    throw error;
  }
});

/** Spawns the node process of `target` on port 0 in the test's directory. */
function start(target: RuntimeName): NodeProcess {
  const { command, args } = commandFor(target);
  const child = spawn(
    command,
    [...args, "--id", target, "--port", "0", "--data", dir, "--secret", SECRET],
    {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const started: NodeProcess = {
    runtime: target,
    child,
    exited: new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.once("error", (error) => {
        started.stderr += `spawn ${command} failed: ${error.message}\n`;
        resolve({ code: null, signal: null });
      });
    }),
    stderr: "",
    base: "",
  };
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    started.stderr += chunk;
  });
  return started;
}

/** Resolves once `p` printed `ready <port>` (and sets its base URL); rejects if it exits first. */
function ready(p: NodeProcess): Promise<void> {
  const stdout = p.child.stdout;
  assert.ok(stdout, "the child's stdout is piped");
  stdout.setEncoding("utf8");
  let pending = "";
  const listening = new Promise<void>((resolve, reject) => {
    stdout.on("data", (chunk: string) => {
      pending += chunk;
      const match = /^ready (\d+)$/m.exec(pending);
      if (match !== null) {
        p.base = `http://127.0.0.1:${match[1]}`;
        resolve();
      }
    });
    void p.exited.then(({ code, signal }) =>
      reject(
        new Error(
          `the ${p.runtime} node exited before it was ready (${code ?? signal ?? "not spawned"})`,
        ),
      ),
    );
  });
  return within(listening, `the ${p.runtime} node to listen`);
}

/** A control request to `p`, with the cluster secret. */
function control(p: NodeProcess, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${SECRET}`);
  return fetch(`${p.base}${path}`, { ...init, headers, signal: AbortSignal.timeout(WAIT_MS) });
}

async function stateOf(p: NodeProcess): Promise<NodeState> {
  const response = await control(p, "/control/state");
  assert.equal(response.status, 200, `state of ${p.runtime}`);
  return (await response.json()) as NodeState;
}

/**
 * Polls /control/state of every node until `condition` holds over the three answers, every
 * POLL_MS and for at most WAIT_MS; the error names `what` and the last states.
 */
async function poll(
  condition: (states: readonly NodeState[]) => boolean,
  what: string,
): Promise<NodeState[]> {
  const deadline = performance.now() + WAIT_MS;
  for (;;) {
    const states = await Promise.all(processes.map(stateOf));
    if (condition(states)) return states;
    if (performance.now() > deadline) {
      const summary = states.map(
        (s) =>
          `${s.runtime}: ${s.role} term ${s.term} leader ${s.leaderId} commit ${s.commitIndex} applied ${s.applied.length}`,
      );
      throw new Error(`${what}: not within ${WAIT_MS} ms (${summary.join("; ")})`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Waits until all three nodes name the same leader in the same term, and that one leads. */
async function agreedLeader(): Promise<NodeProcess> {
  const states = await poll((all) => {
    const leader = all.find((s) => s.role === "leader");
    return (
      leader !== undefined && all.every((s) => s.leaderId === leader.id && s.term === leader.term)
    );
  }, "agreement on a leader");
  const leaderId = states[0]?.leaderId;
  const leader = processes.find((p) => p.runtime === leaderId);
  assert.ok(leader, `the leader ${leaderId} is one of the processes`);
  return leader;
}

interface Written {
  readonly command: string;
  readonly index: number;
  /** The node that took the write: the leader at the time. */
  readonly node: NodeProcess;
}

/**
 * Writes `command` through `leader`; if leadership moved before the write was proposed (or its
 * entry was replaced, so it was not committed), waits for the new leader and writes there.
 */
async function write(leader: NodeProcess, command: string): Promise<Written> {
  let node = leader;
  for (let attempt = 1; ; attempt++) {
    const response = await control(node, "/control/write", { method: "POST", body: command });
    const body = (await response.json()) as { index?: number; response?: string; name?: string };
    if (response.status === 200) {
      assert.equal(body.response, `ok:${command}`);
      assert.ok(typeof body.index === "number", `the index of ${command}`);
      return { command, index: body.index, node };
    }
    const retryable =
      response.status === 421 ||
      (response.status === 503 &&
        (body.name === "NotLeaderError" || body.name === "LeadershipLostError"));
    assert.ok(
      retryable && attempt < 5,
      `write ${command} through ${node.runtime}: ${response.status} ${JSON.stringify(body)}`,
    );
    node = await agreedLeader();
  }
}

/** `promise`, or a rejection naming `what` after WAIT_MS. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${WAIT_MS} ms for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** SIGTERM, then SIGKILL if the process has not exited within a few seconds. */
async function terminate(p: NodeProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      p.child.kill("SIGKILL");
      resolve();
    }, 5000);
  });
  await Promise.race([p.exited, killed]);
  clearTimeout(timer);
  await p.exited;
}
