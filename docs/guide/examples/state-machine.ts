// Your state machine: a replicated key-value map. Commands are JSON; `apply` answers each with
// bytes, or with an ApplyFailure when the command fails the same way on every replica.
// Three nodes run in one process on the in-memory network.
import {
  ApplyFailure,
  type ApplyResponse,
  type Entry,
  MemoryLogStore,
  MemoryNetwork,
  Raft,
  type StateMachine,
} from "../../../mod.ts";

type Command =
  | { op: "set"; key: string; value: string }
  | { op: "delete"; key: string }
  | { op: "cas"; key: string; expected: string | null; value: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class KvStateMachine implements StateMachine {
  readonly data = new Map<string, string>();
  #lastApplied = 0;

  apply(entries: readonly Entry[]): ApplyResponse[] {
    return entries.map((entry) => {
      this.#lastApplied = entry.index;
      if (entry.kind !== "command") return new Uint8Array(); // Raft's own entries
      // Everything below depends only on the command and the current map: no clock, no
      // randomness, no I/O, so every replica computes the same state and the same answers.
      const command = JSON.parse(decoder.decode(entry.data)) as Command;
      switch (command.op) {
        case "set":
          this.data.set(command.key, command.value);
          return encoder.encode("ok");
        case "delete":
          return encoder.encode(String(this.data.delete(command.key)));
        case "cas": {
          const current = this.data.get(command.key) ?? null;
          // A deterministic failure: every replica fails it, so only this write is rejected.
          if (current !== command.expected) return new ApplyFailure(`${command.key} is ${current}`);
          this.data.set(command.key, command.value);
          return encoder.encode("ok");
        }
      }
      // An unknown op (from a newer client, say) fails the same way on every replica: refuse
      // it rather than throw, since a throw stops the node.
      return new ApplyFailure(`unknown command ${JSON.stringify(command)}`);
    });
  }

  lastApplied(): number {
    // This map lives in memory: after a restart it is empty, so report 0 and let the driver
    // replay the log. A state machine that persists its state reports the last index it kept.
    return 0;
  }

  /** For the demo: the applied index, to compare replicas. */
  get appliedIndex(): number {
    return this.#lastApplied;
  }
}

const network = new MemoryNetwork();
// Generous election timeouts (the default is 300-600 ms): the nodes share one process, and a
// busy machine must not make a leader look dead.
const config = { electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000 };
const ids = ["a", "b", "c"];
const nodes = ids.map((id) => {
  const machine = new KvStateMachine();
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
const members = Object.fromEntries(ids.map((id) => [id, `mem://${id}`]));
for (const node of nodes) await node.raft.start();
await Promise.all(nodes.map((node) => node.raft.initialize(members)));
// n1 learns who won the election; then that node knows it leads. No sleeping, no polling.
const { leaderId } = await nodes[0].raft.metrics.waitFor((m) => m.leaderId !== null, {
  timeoutMs: 10_000,
});
const leader = nodes.find((node) => node.id === leaderId) ?? nodes[0];
await leader.raft.metrics.waitFor((m) => m.role === "leader", { timeoutMs: 10_000 });

async function run(command: Command): Promise<string> {
  try {
    const { response } = await leader.raft.write(encoder.encode(JSON.stringify(command)));
    return decoder.decode(response);
  } catch (error) {
    if (error instanceof ApplyFailure) return `refused: ${error.message}`;
    throw error;
  }
}

console.log(`set color=red: ${await run({ op: "set", key: "color", value: "red" })}`);
console.log(
  `cas red->blue: ${await run({ op: "cas", key: "color", expected: "red", value: "blue" })}`,
);
console.log(
  `cas red->green: ${await run({ op: "cas", key: "color", expected: "red", value: "green" })}`,
);
console.log(`delete color: ${await run({ op: "delete", key: "color" })}`);
console.log(`set size=XL: ${await run({ op: "set", key: "size", value: "XL" })}`);

// Every replica applied the same entries in the same order and holds the same map.
const commit = leader.raft.metrics.current.commitIndex;
for (const node of nodes) {
  await node.raft.metrics.waitFor((m) => m.lastApplied >= commit, { timeoutMs: 10_000 });
  const map = JSON.stringify(Object.fromEntries(node.machine.data));
  console.log(`${node.id}: applied ${node.machine.appliedIndex}, data ${map}`);
}
for (const node of nodes) await node.raft.shutdown();
network.close(); // clears its timers, so the process can exit at once
