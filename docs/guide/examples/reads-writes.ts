// Reads and writes: following NotLeaderError to the leader, exactly-once writes with client
// sessions, linearizable reads with ReadIndex, and lease reads.
import {
  type ApplyResponse,
  type Entry,
  MemoryLogStore,
  MemoryNetwork,
  NotLeaderError,
  Raft,
  type StateMachine,
} from "../../../mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A counter with a session table: a retried request gets its first answer, not a second +1. */
class SessionCounter implements StateMachine {
  value = 0;
  // Session state is replicated state: every replica builds the same table from the log.
  readonly sessions = new Map<string, { seq: number; response: Uint8Array }>();
  apply(entries: readonly Entry[]): ApplyResponse[] {
    return entries.map((entry) => {
      if (entry.kind !== "command") return new Uint8Array();
      const { client, seq, add } = JSON.parse(decoder.decode(entry.data));
      const session = this.sessions.get(client);
      if (session && seq <= session.seq) return session.response; // a retry: thesis §6.3
      this.value += add;
      const response = encoder.encode(String(this.value));
      this.sessions.set(client, { seq, response }); // a real one also expires idle sessions
      return response;
    });
  }
  lastApplied(): number {
    return 0;
  }
}

const network = new MemoryNetwork();
// leaseReads is opt-in: see the chapter for the clock assumption it makes. Generous election
// timeouts (the default is 300-600 ms): the nodes share one process, and a busy machine must not
// make a leader look dead.
const config = { leaseReads: true, electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000 };
const nodes = ["n1", "n2", "n3"].map((id) => {
  const machine = new SessionCounter();
  const raft = new Raft({
    id,
    config,
    logStore: new MemoryLogStore(),
    stateMachine: machine,
    network: network.endpoint(id),
  });
  network.register(`mem://${id}`, raft);
  return { id, raft, machine };
});
for (const { raft } of nodes) await raft.start();
await Promise.all(
  nodes.map(({ raft }) =>
    raft.initialize(Object.fromEntries(nodes.map((n) => [n.id, `mem://${n.id}`]))),
  ),
);
await nodes[0].raft.metrics.waitFor((m) => m.leaderId !== null, { timeoutMs: 10_000 });
const byAddress = new Map(nodes.map((node) => [`mem://${node.id}`, node]));

/** A client: starts anywhere, follows NotLeaderError to the leader and remembers it. */
let target = nodes[0];
async function write(client: string, seq: number, add: number): Promise<string> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const { response } = await target.raft.write(
        encoder.encode(JSON.stringify({ client, seq, add })),
      );
      return `${decoder.decode(response)} (from ${target.id})`;
    } catch (error) {
      if (!(error instanceof NotLeaderError)) throw error;
      console.log(`${target.id}: not the leader, the leader is ${error.leaderId ?? "unknown"}`);
      const next = error.leaderAddr === null ? undefined : byAddress.get(error.leaderAddr);
      if (next) target = next;
      else await target.raft.metrics.waitFor((m) => m.leaderId !== null, { timeoutMs: 5000 });
    }
  }
  throw new Error("no leader found");
}

target = nodes.find((n) => n.raft.metrics.current.role !== "leader") ?? nodes[0];
console.log(`c1#1 add 5: ${await write("c1", 1, 5)}`);
console.log(`c1#2 add 3: ${await write("c1", 2, 3)}`);
// The answer to c1#2 was lost on the way back, say: the client retries with the same seq.
console.log(`c1#2 again: ${await write("c1", 2, 3)}`);

const leader = target;
const follower = nodes.find((n) => n !== leader) ?? nodes[0];
// ReadIndex (thesis §6.4): `read` confirms leadership with a quorum, waits until the state
// machine applied the commit index, then runs the function. With leaseReads, a leader whose
// lease holds skips the confirmation round.
console.log(`linearizable read: ${await leader.raft.read(() => leader.machine.value)}`);
// A follower cannot serve one: it answers NotLeaderError. Its own state is a stale read.
await follower.raft
  .read(() => follower.machine.value)
  .catch((error) => {
    console.log(
      `read on a follower: ${error instanceof NotLeaderError ? "NotLeaderError" : error}`,
    );
  });

for (const { raft } of nodes) await raft.shutdown();
network.close(); // clears its timers, so the process can exit at once
