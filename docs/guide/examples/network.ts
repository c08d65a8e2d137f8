// Network: Keel's routes mounted in an existing Hono app, next to the application's own routes,
// with a cluster secret. Three nodes on 127.0.0.1, each with its own app and port.
import { Hono } from "hono";
import {
  type Entry,
  FetchNetwork,
  MemoryLogStore,
  Raft,
  raftRoutes,
  type StateMachine,
} from "../../../mod.ts";

// In your project: import { serve } from "keel/node" (or "keel/bun", "keel/deno").
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const { serve } = (await import(
  `../../../adapters/${runtime}.ts`
)) as typeof import("../../../adapters/node.ts");

// Every node gets the same secret (from your secret store or the environment in practice).
const secret = "correct horse battery staple";

const ignore: StateMachine = {
  apply: (entries: readonly Entry[]) => entries.map(() => new Uint8Array()),
  lastApplied: () => 0,
};

// Generous election timeouts (the default is 300-600 ms): the nodes share one process, and a
// busy machine must not make a leader look dead.
const config = { electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000 };

async function startNode(id: string) {
  const network = new FetchNetwork({ secret }); // sends `Authorization: Bearer <secret>`
  const raft = new Raft({
    id,
    config,
    logStore: new MemoryLogStore(),
    stateMachine: ignore,
    network,
  });
  const app = new Hono(); // your application
  app.get("/health", (c) => c.json({ id, role: raft.metrics.current.role }));
  app.route("/raft", raftRoutes(raft, { secret })); // refuses requests without the secret: 401
  const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${server.port}`;
  return { id, raft, network, server, base, address: `${base}/raft` };
}

const nodes = await Promise.all(["n1", "n2", "n3"].map(startNode));
const members = Object.fromEntries(nodes.map((n) => [n.id, n.address]));
for (const node of nodes) await node.raft.start();
await Promise.all(nodes.map((node) => node.raft.initialize(members)));
// n1 learns who won the election; then that node knows it leads. No sleeping, no polling.
const { leaderId } = await nodes[0].raft.metrics.waitFor((m) => m.leaderId !== null, {
  timeoutMs: 10_000,
});
const leader = nodes.find((node) => node.id === leaderId) ?? nodes[0];
await leader.raft.metrics.waitFor((m) => m.role === "leader", { timeoutMs: 10_000 });
const { index } = await leader.raft.write(new TextEncoder().encode("hello"));
console.log(`leader ${leader.id} committed index ${index} over HTTP`);

// The application's routes and Keel's share the server.
const health = await (await fetch(`${leader.base}/health`)).json();
console.log(`GET /health: ${JSON.stringify(health)}`);

// Without the secret a request never reaches the node.
const forged = await fetch(`${leader.address}/request-vote`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ type: "requestVote", term: 99, from: "intruder", to: leader.id }),
});
console.log(`a vote request without the secret: ${forged.status}`);
await forged.body?.cancel();
const after = leader.raft.metrics.current;
console.log(`the forged term 99 never reached it: ${after.term < 99}`);

for (const node of nodes) {
  await node.raft.shutdown();
  node.network.close(); // aborts requests in flight; the process can exit at once
  await node.server.close();
}
