// A 3-node Keel cluster in one file: each node serves its Raft RPCs over HTTP on 127.0.0.1, keeps
// its log in memory and applies commands to a counter. Run it with `npx tsx`, `bun` or `deno run -A`.
// In your project, import from "keel" (npm) or "jsr:@keel/keel", and the adapter of your runtime
// from "keel/node", "keel/bun" or "keel/deno".
import { Hono } from "hono";
import type { Server } from "../../../adapters/server.ts";
import {
  type Entry,
  FetchNetwork,
  MemoryLogStore,
  Raft,
  raftRoutes,
  type StateMachine,
} from "../../../mod.ts";

// Pick the adapter of the runtime running this file (a real program imports its own directly).
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const { serve } = (await import(`../../../adapters/${runtime}.ts`)) as {
  serve: (app: Hono, options?: { port?: number }) => Promise<Server>;
};

/** The application: a counter. A command is a number to add; the answer is the new total. */
class Counter implements StateMachine {
  total = 0;
  apply(entries: readonly Entry[]): Uint8Array[] {
    return entries.map((entry) => {
      // Blank and membership entries are Raft's own: answer them with nothing.
      if (entry.kind !== "command") return new Uint8Array();
      this.total += Number(new TextDecoder().decode(entry.data));
      return new TextEncoder().encode(String(this.total));
    });
  }
  lastApplied(): number {
    return 0; // nothing survives a restart: the log is replayed into a fresh counter
  }
}

// Generous election timeouts (the default is 300-600 ms): the nodes share one process, and a
// busy machine must not make a leader look dead.
const config = { electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000 };
const ids = ["n1", "n2", "n3"];
const nodes = await Promise.all(
  ids.map(async (id) => {
    const counter = new Counter();
    const network = new FetchNetwork();
    const raft = new Raft({
      id,
      config,
      logStore: new MemoryLogStore(),
      stateMachine: counter,
      network,
    });
    const app = new Hono();
    app.route("/raft", raftRoutes(raft)); // a member's address is where these routes are mounted
    const server = await serve(app, { port: 0 });
    return { id, raft, counter, network, server, address: `http://127.0.0.1:${server.port}/raft` };
  }),
);

// Every founding member gets the same membership: id → address.
const members = Object.fromEntries(nodes.map((node) => [node.id, node.address]));
for (const node of nodes) await node.raft.start();
await Promise.all(nodes.map((node) => node.raft.initialize(members)));

// Wait for an election, without sleeping: metrics tell when n1 knows a leader, and when that
// leader knows it leads.
const { leaderId } = await nodes[0].raft.metrics.waitFor((m) => m.leaderId !== null, {
  timeoutMs: 10_000,
});
const leader = nodes.find((node) => node.id === leaderId);
if (!leader) throw new Error(`unknown leader ${leaderId}`);
await leader.raft.metrics.waitFor((m) => m.role === "leader", { timeoutMs: 10_000 });
console.log(`leader: ${leaderId}`);

// Writes go to the leader; each resolves once committed and applied, with the log index and the
// state machine's answer.
for (const amount of [1, 2, 3]) {
  const { index, response } = await leader.raft.write(new TextEncoder().encode(String(amount)));
  console.log(`add ${amount}: total ${new TextDecoder().decode(response)} at index ${index}`);
}

// A linearizable read: confirm leadership (ReadIndex), then read the local state machine.
const total = await leader.raft.read(() => leader.counter.total);
console.log(`read on the leader: ${total}`);

// Followers apply the same entries in the same order.
const commit = leader.raft.metrics.current.commitIndex;
for (const node of nodes) {
  await node.raft.metrics.waitFor((m) => m.lastApplied >= commit, { timeoutMs: 10_000 });
  console.log(`${node.id}: total ${node.counter.total}`);
}

for (const node of nodes) {
  await node.raft.shutdown();
  node.network.close(); // aborts requests in flight; the process can exit at once
  await node.server.close();
}
