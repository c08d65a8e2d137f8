// Operations: metrics to watch, structured logs, and what a failing disk does to a node (it
// stops; the cluster carries on). Three nodes in memory; one follower's disk fails.
import {
  consoleLogger,
  type Entry,
  FatalError,
  type Logger,
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
// Logs are one object per event, with the node, its role and its term. consoleLogger("info")
// prints JSON lines; here warnings and errors are printed and the rest counted.
const printed = consoleLogger("warn");
const counts = new Map<string, number>();
const logger: Logger = {
  log(level, message, fields) {
    counts.set(message, (counts.get(message) ?? 0) + 1);
    printed.log(level, message, fields);
  },
};
const nodes = ["n1", "n2", "n3"].map((id) => {
  const store = new MemoryLogStore();
  const raft = new Raft({
    id,
    config,
    logger,
    logStore: store,
    stateMachine: ignore,
    network: network.endpoint(id),
  });
  network.register(`mem://${id}`, raft);
  return { id, raft, store };
});
for (const { raft } of nodes) await raft.start();
const members = Object.fromEntries(nodes.map(({ id }) => [id, `mem://${id}`]));
await Promise.all(nodes.map(({ raft }) => raft.initialize(members)));
// n1 learns who won the election; then that node knows it leads. No sleeping, no polling.
const { leaderId } = await nodes[0].raft.metrics.waitFor((m) => m.leaderId !== null, {
  timeoutMs: 10_000,
});
const leader = nodes.find((node) => node.id === leaderId) ?? nodes[0];
await leader.raft.metrics.waitFor((m) => m.role === "leader", { timeoutMs: 10_000 });
const follower = nodes.find((n) => n !== leader) ?? nodes[0];

// Metrics: the current value, and a listener called on every change (export them to your
// monitoring from here). Alert on: no leader, terms rising (elections), a follower's lag
// growing, commitIndex not moving under load, and `stopped`.
for (const { raft } of nodes) {
  const unsubscribe = raft.metrics.subscribe((m) => {
    if (!m.stopped || m.error === null) return; // a shutdown is not an alert
    console.log(`ALERT ${m.id} stopped: ${m.error?.message}`);
    unsubscribe();
  });
}
for (let i = 0; i < 20; i++) await leader.raft.write(new TextEncoder().encode(`w${i}`));
const m = leader.raft.metrics.current;
console.log(`leader ${m.id}: term ${m.term}, commit ${m.commitIndex}`);
for (const [peer, r] of Object.entries(m.replication))
  console.log(`  ${peer}: match ${r.matchIndex}, lag ${r.lag}`);

// A disk failure stops the node at once: it sends nothing more, pending requests reject with
// the FatalError, and `closed` resolves with it. The other two still form a majority.
follower.store.failAfterWrites(0);
await leader.raft.write(new TextEncoder().encode("after the failure"));
const error = await follower.raft.closed;
console.log(
  `${follower.id} stopped: ${error instanceof FatalError}, stopped=${follower.raft.metrics.current.stopped}`,
);
const { index } = await leader.raft.write(new TextEncoder().encode("still committing"));
console.log(`the cluster still commits: index ${index}`);
console.log(`log lines: ${[...counts].map(([message, n]) => `${message} ×${n}`).join(", ")}`);

for (const { raft } of nodes) await raft.shutdown();
network.close(); // clears its timers, so the process can exit at once
