/**
 * `npm start`: a 3-node cluster of the example key-value service on this machine. Each node is
 * its own process running main.ts on the runtime that runs this script, on 127.0.0.1:7001–7003,
 * with its data in ./data/n1 … ./data/n3. It waits for a leader, prints the endpoints, the
 * leader and example requests, and stops all three nodes on Ctrl-C (SIGINT) or SIGTERM. Run it
 * again and the nodes resume from ./data.
 *
 *   npm start                     (Node, through tsx)
 *   bun examples/kv/start.ts
 *   deno run -A examples/kv/start.ts
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtime, scriptCommand } from "./runtime.ts";

const HOST = "127.0.0.1";
const NODES = [
  { id: "n1", port: 7001 },
  { id: "n2", port: 7002 },
  { id: "n3", port: 7003 },
] as const;
const DATA = resolve("data");
/** How long to wait for a leader before giving up. */
const LEADER_WAIT_MS = 30_000;
/** How long a node may take to stop gracefully before it is killed. */
const STOP_WAIT_MS = 10_000;

const main = fileURLToPath(new URL("./main.ts", import.meta.url));
const urlOf = (port: number) => `http://${HOST}:${port}`;
const cluster = NODES.map((n) => `${n.id}=${urlOf(n.port)}`).join(",");

interface Child {
  readonly id: string;
  readonly process: ChildProcess;
  readonly exited: Promise<number | string | null>;
}

let stopping = false;
const children: Child[] = NODES.map(({ id, port }) => {
  const { command, args } = scriptCommand(main);
  // `--cluster` on every start: it forms the cluster on empty data and is ignored otherwise.
  const child = spawn(
    command,
    [...args, "--id", id, "--listen", `${HOST}:${port}`, "--data", join(DATA, id)].concat([
      "--cluster",
      cluster,
    ]),
    {
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  ).on("error", (error) => say(`${id}: could not start ${command}: ${error.message}`));
  prefixLines(child.stdout, id);
  prefixLines(child.stderr, id);
  const exited = new Promise<number | string | null>((done) =>
    child.once("close", (code, signal) => done(code ?? signal)),
  );
  void exited.then((how) => {
    // Exit code 0: it got the Ctrl-C itself (the terminal signals the whole process group).
    if (how === 0) void stopAll(0);
    else if (!stopping) {
      say(`${id} exited unexpectedly (${how}); stopping the others`);
      void stopAll(1);
    }
  });
  return { id, process: child, exited };
});

process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

say(`starting ${NODES.length} nodes on ${runtime}, data in ${DATA}`);
const leader = await waitForLeader();
if (leader !== null && !stopping) {
  const base = urlOf(NODES.find((n) => n.id === leader)?.port ?? NODES[0].port);
  const any = urlOf(NODES[0].port);
  const lines = [
    "",
    "Keel example: a replicated key-value store",
    ...NODES.map((n) => `  ${n.id}  ${urlOf(n.port)}${n.id === leader ? "  (leader)" : ""}`),
    "",
    "Try (followers redirect writes and reads to the leader: use curl -L):",
    `  curl -L -X PUT ${any}/kv/greeting -d 'hello'`,
    `  curl -L ${any}/kv/greeting`,
    `  curl '${any}/kv/greeting?consistency=stale'`,
    `  curl -L -X POST ${any}/kv/greeting/cas -d '{"expected":"hello","value":"hi"}'`,
    `  curl -L -X DELETE ${any}/kv/greeting`,
    `  curl ${base}/status`,
    "",
    `Dashboard (live view of the whole cluster): open ${any}/ in a browser`,
    "",
    "Ctrl-C stops all three nodes; run it again to resume from the same data.",
    "",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** Polls every node's /status until one is the leader and a majority agree; null if stopped. */
async function waitForLeader(): Promise<string | null> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  while (!stopping) {
    const statuses = await Promise.all(NODES.map((n) => status(urlOf(n.port))));
    const leaders = statuses.filter((s) => s?.role === "leader").map((s) => s?.id);
    for (const id of leaders) {
      const agree = statuses.filter((s) => s?.leader === id).length;
      if (id !== undefined && agree > NODES.length / 2) return id;
    }
    if (Date.now() > deadline) {
      say(`no leader after ${LEADER_WAIT_MS} ms; stopping`);
      await stopAll(1);
      return null;
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  return null;
}

async function status(base: string): Promise<{ id: string; role: string; leader: string } | null> {
  try {
    const response = await fetch(`${base}/status`, { signal: AbortSignal.timeout(1000) });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return (await response.json()) as { id: string; role: string; leader: string };
  } catch {
    return null;
  }
}

/** SIGTERM to every node still running, SIGKILL after STOP_WAIT_MS; then exits with `code`. */
async function stopAll(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  say("stopping the nodes");
  await Promise.all(
    children.map(async (c) => {
      if (c.process.exitCode !== null || c.process.signalCode !== null) return;
      c.process.kill("SIGTERM");
      const timer = setTimeout(() => c.process.kill("SIGKILL"), STOP_WAIT_MS);
      const how = await c.exited;
      clearTimeout(timer);
      // (Deno reports the SIGTERM it sent even when the node handled it and exited with 0.)
      if (how !== 0 && how !== "SIGTERM") say(`${c.id} exited with ${how}`);
    }),
  );
  say("all nodes stopped");
  process.exit(code);
}

function prefixLines(stream: NodeJS.ReadableStream | null, id: string): void {
  if (stream === null) return;
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) process.stdout.write(`[${id}] ${line}\n`);
  });
}

function say(message: string): void {
  process.stdout.write(`[start] ${message}\n`);
}
