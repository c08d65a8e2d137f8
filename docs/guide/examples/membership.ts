// Cluster formation and membership changes: one node forms the cluster, a second joins as a
// learner and a third directly as a voter (joint consensus), leadership moves, and the leader
// removes itself. In memory, so the whole story runs in one process.
import {
  type Entry,
  MemoryLogStore,
  MemoryNetwork,
  Raft,
  type StateMachine,
} from "../../../mod.ts";

const network = new MemoryNetwork();
// Generous election timeouts (the default is 300-600 ms): the nodes share one process, and a
// busy machine must not make a leader look dead.
const config = { electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000 };
const ignore: StateMachine = {
  apply: (entries: readonly Entry[]) => entries.map(() => new Uint8Array()),
  lastApplied: () => 0,
};
const nodes = new Map<string, Raft>();
async function startNode(id: string): Promise<Raft> {
  const raft = new Raft({
    id,
    config,
    logStore: new MemoryLogStore(),
    stateMachine: ignore,
    network: network.endpoint(id),
  });
  network.register(`mem://${id}`, raft);
  nodes.set(id, raft);
  await raft.start(); // an empty node waits, uninitialized, until a leader adds it
  return raft;
}
const waitMs = { timeoutMs: 10_000 };
const show = (raft: Raft) => {
  const { voters, learners, outgoing } = raft.metrics.current.membership;
  return `voters [${voters}]${outgoing ? ` (joint with [${outgoing}])` : ""}, learners [${learners}]`;
};

// 1. Initialize: a single voter elects itself at once.
const n1 = await startNode("n1");
await n1.initialize({ n1: "mem://n1" });
await n1.metrics.waitFor((m) => m.role === "leader", waitMs);
console.log(`n1 leads: ${show(n1)}`);

// 2. A learner receives the log but does not vote. `blocking` waits until it caught up.
await startNode("n2");
await n1.addLearner("n2", "mem://n2", { blocking: true });
console.log(`learner added: ${show(n1)}`);

// 3. Voters change through joint consensus (C_old,new, then C_new). A newcomer given with its
//    address is added as a learner first, and promoted once it has the log.
await startNode("n3");
const change = await n1.changeMembership({ n1: "mem://n1", n2: "mem://n2", n3: "mem://n3" });
console.log(`voters changed at index ${change.index}: ${show(n1)}`);

// 4. Leadership transfer to a chosen voter.
const newLeader = await n1.transferLeadership("n2");
const n2 = nodes.get(newLeader) as Raft;
await n2.metrics.waitFor((m) => m.role === "leader", waitMs);
console.log(`leadership moved to ${newLeader}`);

// 5. The leader removes itself: it commits C_new, then hands over to a remaining voter.
await n2.changeMembership(["n1", "n3"]);
const { leaderId } = await (nodes.get("n3") as Raft).metrics.waitFor(
  (m) => m.leaderId !== null && m.leaderId !== "n2",
  waitMs,
);
const successor = nodes.get(leaderId as string) as Raft;
await successor.metrics.waitFor((m) => m.role === "leader", waitMs);
await n2.metrics.waitFor((m) => m.role !== "leader", waitMs);
console.log(`n2 removed itself, ${successor.id} leads: ${show(successor)}`);
const { index } = await successor.write(new TextEncoder().encode("still writable"));
console.log(`write committed at index ${index}`);

for (const raft of nodes.values()) await raft.shutdown();
network.close(); // clears its timers, so the process can exit at once
