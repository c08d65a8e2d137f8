// A complete, minimal driver of the pure core: three nodes in one process, a virtual clock,
// a synchronous in-memory "disk" per node and instant message delivery. It elects a leader,
// replicates three commands and prints what every node applied. Deterministic: every run prints
// the same. No snapshots (snapshotThreshold 0), so the log is never compacted.

import type { Entry, HardState, Membership, NodeId, TimerName } from "../../../mod.ts";
import { createState, type Effect, type Input, type RaftState, step } from "../../../mod.ts";

interface Node {
  state: RaftState;
  // The "disk". Writes here are durable at once, which makes the ordering contract easy to keep.
  hardState: HardState;
  log: Entry[]; // log[i] holds index i + 1
  timers: Map<TimerName, { at: number; generation: number }>;
  applied: string[]; // the state machine: the commands, in order
}

let now = 0; // virtual milliseconds
const nodes = new Map<NodeId, Node>();
const queue: { id: NodeId; input: Input }[] = []; // inputs waiting to be stepped, in order
const deliver = (id: NodeId, input: Input) => queue.push({ id, input });

/** Steps one input, then carries out its effects in the order given. */
function run(id: NodeId, input: Input): void {
  const node = nodes.get(id);
  if (!node) return; // a message to an unknown node is lost, which Raft tolerates
  const { state, effects } = step(node.state, input);
  node.state = state;
  for (const effect of effects) execute(id, node, effect);
}

function execute(id: NodeId, node: Node, effect: Effect): void {
  switch (effect.type) {
    // Storage effects, in order. Our disk is synchronous: each is durable when it returns.
    case "saveHardState":
      node.hardState = effect.hardState;
      return;
    case "truncateLog":
      node.log.length = effect.fromIndex - 1;
      return;
    case "appendLog": {
      node.log.push(...effect.entries);
      const last = effect.entries.at(-1);
      if (last)
        deliver(id, { type: "persisted", index: last.index, term: last.term, epoch: effect.epoch });
      return;
    }
    // Every storage effect before this send is already durable, so `afterPersist` holds even
    // for votes and AppendEntries answers. A driver with an async disk must hold those back.
    case "send":
      deliver(effect.message.to, { type: "message", message: effect.message });
      return;
    case "apply": {
      for (const entry of effect.entries) {
        if (entry.kind === "command") node.applied.push(new TextDecoder().decode(entry.data));
      }
      const last = effect.entries.at(-1);
      if (last) deliver(id, { type: "applied", index: last.index });
      return;
    }
    case "armTimer":
      node.timers.set(effect.timer, { at: now + effect.afterMs, generation: effect.generation });
      return;
    case "cancelTimer":
      node.timers.delete(effect.timer);
      return;
    case "loadEntries": // a follower lags beyond the core's in-memory window: read the disk
      deliver(id, {
        type: "entriesLoaded",
        peer: effect.peer,
        entries: node.log.slice(effect.fromIndex - 1, effect.toIndex),
      });
      return;
    case "roleChanged":
      if (effect.role === "leader") console.log(`t=${now}ms ${id} leads term ${effect.term}`);
      return;
    case "proposalAccepted":
      console.log(`t=${now}ms proposal ${effect.requestId} appended at index ${effect.firstIndex}`);
      return;
    case "proposalRejected":
      throw new Error(`proposal ${effect.requestId} rejected: ${effect.reason}`);
    default:
      // Answers to requests this demo never makes (reads, admin) and snapshot work.
      throw new Error(`this driver does not handle ${effect.type}`);
  }
}

/** Steps queued inputs; when there are none, moves the clock to the next timer and fires it. */
function runUntil(done: () => boolean): void {
  while (!done()) {
    const next = queue.shift();
    if (next) {
      run(next.id, next.input);
      continue;
    }
    let first: { id: NodeId; timer: TimerName; at: number; generation: number } | undefined;
    for (const [id, node] of nodes) {
      for (const [timer, t] of node.timers)
        if (!first || t.at < first.at) first = { id, timer, ...t };
    }
    if (!first || first.at > 60_000) throw new Error("nothing left to do");
    now = first.at;
    nodes.get(first.id)?.timers.delete(first.timer);
    run(first.id, { type: "timeout", timer: first.timer, generation: first.generation });
  }
}

// Three new nodes, all given the same membership.
const ids = ["n1", "n2", "n3"];
const membership: Membership = {
  voters: ids,
  learners: [],
  addresses: Object.fromEntries(ids.map((id) => [id, id])),
};
for (const id of ids) {
  const state = createState({ id, config: { snapshotThreshold: 0 } });
  nodes.set(id, {
    state,
    hardState: { term: 0, votedFor: null },
    log: [],
    timers: new Map(),
    applied: [],
  });
  run(id, { type: "start" });
  run(id, { type: "initialize", membership });
}

const leader = () => ids.find((id) => nodes.get(id)?.state.role === "leader");
runUntil(() => leader() !== undefined);

const commands = ["x=1", "y=2", "z=3"].map((text) => new TextEncoder().encode(text));
run(leader() as NodeId, { type: "propose", requestId: 1, commands });
runUntil(() => ids.every((id) => nodes.get(id)?.applied.length === 3));

for (const [id, node] of nodes) {
  const { term, commitIndex } = node.state;
  console.log(
    `${id}: term ${term}, commit ${commitIndex}, log ${node.log.length}, applied ${node.applied.join(" ")}`,
  );
}
