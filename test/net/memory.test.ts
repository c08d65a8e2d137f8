/**
 * The in-memory network: delivery, partitions and blocks, deterministic random faults, per-link
 * order, timeouts and teardown. Every wait is on a promise; timeouts are the network's own.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Message, NodeId } from "../../src/core/types.ts";
import { MemoryNetwork, type MemoryNetworkOptions, NetworkError } from "../../src/net/memory.ts";
import type {
  RequestMessage,
  ResponseMessage,
  RpcHandler,
  SnapshotChunk,
  SnapshotChunkResponse,
} from "../../src/net/network.ts";

const address = (id: NodeId) => `mem://${id}`;

function heartbeat(from: NodeId, to: NodeId, seq = 0): RequestMessage {
  return { type: "heartbeat", term: 1, from, to, leaderCommit: seq, round: 0 };
}

/** The answer the test nodes give: a heartbeat response carrying `term`. */
function answerTo(message: RequestMessage, term = message.term): ResponseMessage {
  return { type: "heartbeatResponse", term, from: message.to, to: message.from, round: 0 };
}

function appendEntries(from: NodeId, to: NodeId, seq: number): RequestMessage {
  return {
    type: "appendEntries",
    term: 1,
    from,
    to,
    prevLogIndex: seq,
    prevLogTerm: 1,
    entries: [],
    leaderCommit: 0,
  };
}

/** The sequence number a test message carries. */
function seqOf(message: Message): number {
  if (message.type === "heartbeat") return message.leaderCommit;
  if (message.type === "appendEntries") return message.prevLogIndex;
  return -1;
}

/** A node that records what it receives and answers every request (heartbeat-style). */
class Node implements RpcHandler {
  readonly received: RequestMessage[] = [];
  answer: (message: RequestMessage) => Promise<ResponseMessage | null> = async (message) =>
    answerTo(message);

  constructor(readonly id: NodeId) {}

  handle(message: RequestMessage): Promise<ResponseMessage | null> {
    this.received.push(message);
    return this.answer(message);
  }

  readonly chunks: SnapshotChunk[] = [];

  /** Acknowledges every byte up to the chunk's end. */
  async handleSnapshotChunk(chunk: SnapshotChunk): Promise<SnapshotChunkResponse> {
    this.chunks.push(chunk);
    const { term, from } = chunk.snapshot;
    return {
      term,
      from: this.id,
      to: from,
      offset: chunk.offset + chunk.data.length,
      answer: null,
    };
  }
}

function chunkAt(from: NodeId, to: NodeId, offset: number, length: number): SnapshotChunk {
  const snapshot = {
    type: "installSnapshot",
    term: 1,
    from,
    to,
    lastIncludedIndex: 10,
    lastIncludedTerm: 1,
    membership: { voters: [from, to], learners: [], addresses: {} },
  } as const;
  return { snapshot, offset, data: new Uint8Array(length), done: false };
}

function cluster(ids: readonly NodeId[], options: MemoryNetworkOptions = {}) {
  const network = new MemoryNetwork(options);
  const nodes = new Map<NodeId, Node>();
  for (const id of ids) {
    const node = new Node(id);
    nodes.set(id, node);
    network.register(address(id), node);
  }
  const node = (id: NodeId) => nodes.get(id) as Node;
  const send = (from: NodeId, to: NodeId, message = heartbeat(from, to), timeoutMs = 1000) =>
    network.endpoint(from).send(to, address(to), message, timeoutMs);
  return { network, node, send };
}

const isKind = (kind: NetworkError["kind"]) => (error: unknown) =>
  error instanceof NetworkError && error.kind === kind;

describe("MemoryNetwork delivery", () => {
  it("delivers a request to the handler at the address and returns its answer", async () => {
    const { network, node, send } = cluster(["a", "b"]);
    const response = await send("a", "b", heartbeat("a", "b", 7));
    assert.deepEqual(response, answerTo(heartbeat("a", "b")));
    assert.deepEqual(node("b").received, [heartbeat("a", "b", 7)]);
    assert.equal(network.counters("heartbeat").sent, 1);
    assert.equal(network.counters("heartbeat").delivered, 1);
    assert.equal(network.counters("heartbeatResponse").delivered, 1);
    assert.equal(network.pending, 0);
    network.close();
  });

  it("passes a null answer and a handler's error through", async () => {
    const { network, node, send } = cluster(["a", "b"]);
    node("b").answer = async () => null;
    assert.equal(await send("a", "b"), null);
    const boom = new Error("handler failed");
    node("b").answer = async () => {
      throw boom;
    };
    await assert.rejects(send("a", "b"), boom);
    node("b").answer = () => {
      throw boom; // a synchronous throw too
    };
    await assert.rejects(send("a", "b"), boom);
    network.close();
  });

  it("refuses a request to an address nobody registered, at once", async () => {
    const { network, send } = cluster(["a", "b"]);
    await assert.rejects(send("a", "c", heartbeat("a", "c"), 60_000), isKind("unreachable"));
    assert.equal(network.unregister(address("b")), true);
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 60_000), isKind("unreachable"));
    assert.equal(network.counters("heartbeat").blocked, 2);
    assert.equal(network.unregister(address("b")), false);
    network.close();
  });

  it("rejects a second registration of an address and a non-positive timeout", async () => {
    const { network, send } = cluster(["a", "b"]);
    assert.throws(() => network.register(address("b"), new Node("b")), /already registered/);
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 0), RangeError);
    await assert.rejects(send("a", "b", heartbeat("a", "b"), Number.POSITIVE_INFINITY), RangeError);
    assert.throws(() => network.setFaults({ dropRate: 1.5 }), RangeError);
    assert.throws(() => network.setFaults({ delayMs: [5, 1] }), RangeError);
    network.close();
  });

  it("delivers a copy when copyMessages is set", async () => {
    const { network, node, send } = cluster(["a", "b"], { copyMessages: true });
    const message = heartbeat("a", "b", 3);
    await send("a", "b", message);
    assert.notEqual(node("b").received[0], message);
    assert.deepEqual(node("b").received[0], message);
    network.close();
  });
});

describe("MemoryNetwork partitions", () => {
  it("partition: nodes talk only within their group until heal", async () => {
    const { network, node, send } = cluster(["a", "b", "c"]);
    network.partition([["a", "b"], ["c"]]);
    assert.ok(await send("a", "b"));
    assert.ok(await send("b", "a"));
    await assert.rejects(send("a", "c", heartbeat("a", "c"), 20), isKind("timeout"));
    await assert.rejects(send("c", "b", heartbeat("c", "b"), 20), isKind("timeout"));
    assert.equal(node("c").received.length, 0);
    assert.equal(network.counters("heartbeat").blocked, 2);
    assert.equal(network.counters("heartbeat").timedOut, 2);
    assert.equal(network.canReach("a", "c"), false);

    network.heal();
    assert.ok(await send("a", "c"));
    assert.ok(await send("c", "b"));
    network.close();
  });

  it("partition: a node named in no group is cut off; a node in two groups is refused", async () => {
    const { network, send } = cluster(["a", "b", "c"]);
    network.partition([["a", "b"]]);
    await assert.rejects(send("c", "a", heartbeat("c", "a"), 20), isKind("timeout"));
    assert.throws(() => network.partition([["a"], ["a", "b"]]), /two groups/);
    network.close();
  });

  it("isolate: a node is cut off both ways, the others still talk", async () => {
    const { network, node, send } = cluster(["a", "b", "c"]);
    network.isolate("b");
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 20), isKind("timeout"));
    await assert.rejects(send("b", "c", heartbeat("b", "c"), 20), isKind("timeout"));
    assert.ok(await send("a", "c"));
    assert.equal(node("b").received.length, 0);
    network.heal();
    assert.ok(await send("a", "b"));
    network.close();
  });

  it("block is one way: requests one way are lost, answers that way too", async () => {
    const { network, node, send } = cluster(["a", "b"]);
    network.block("a", "b");
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 20), isKind("timeout"));
    assert.equal(node("b").received.length, 0, "a's request never reached b");

    await assert.rejects(send("b", "a", heartbeat("b", "a"), 20), isKind("timeout"));
    assert.equal(node("a").received.length, 1, "b's request reached a, a's answer was lost");
    assert.equal(network.counters("heartbeatResponse").blocked, 1);

    network.unblock("a", "b");
    assert.ok(await send("a", "b"));
    assert.ok(await send("b", "a"));
    network.close();
  });

  it("a partition formed while a message is in flight loses it", async () => {
    const { network, node, send } = cluster(["a", "b"], { delayMs: [5, 5] });
    const pending = send("a", "b", heartbeat("a", "b"), 50);
    network.isolate("b");
    await assert.rejects(pending, isKind("timeout"));
    assert.equal(node("b").received.length, 0);
    network.close();
  });
});

describe("MemoryNetwork random faults are deterministic", () => {
  /** Sends `count` heartbeats a → b; returns which reached b and which got an answer. */
  async function dropPattern(seed: number, count = 200) {
    const { network, node, send } = cluster(["a", "b"], { seed, dropRate: 0.3 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => send("a", "b", heartbeat("a", "b", i), 30)),
    );
    const answered = outcomes.flatMap((o, i) => (o.status === "fulfilled" ? [i] : []));
    for (const o of outcomes) {
      if (o.status === "rejected") assert.ok(isKind("timeout")(o.reason));
    }
    const delivered = node("b").received.map(seqOf);
    const counters = network.allCounters();
    network.close();
    return { delivered, answered, counters };
  }

  it("the same seed drops the same messages; another seed drops others", async () => {
    const first = await dropPattern(7);
    const again = await dropPattern(7);
    const other = await dropPattern(8);
    assert.deepEqual(again, first);
    assert.notDeepEqual(other.delivered, first.delivered);

    const hb = first.counters.heartbeat as { dropped: number; delivered: number; timedOut: number };
    assert.equal(hb.dropped + hb.delivered, 200);
    assert.ok(hb.dropped > 20 && hb.dropped < 100, `about 30% dropped, got ${hb.dropped}`);
    assert.ok(first.answered.length < first.delivered.length, "answers are dropped too");
    assert.equal(hb.timedOut, 200 - first.answered.length);
  });

  it("the drop pattern of a link does not depend on traffic on other links", async () => {
    const { network, node, send } = cluster(["a", "b", "c"], { seed: 7, dropRate: 0.3 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) =>
        Promise.all([
          send("a", "b", heartbeat("a", "b", i), 30),
          send("c", "b", heartbeat("c", "b", i), 30).catch(() => null),
        ]),
      ),
    );
    assert.equal(outcomes.length, 200);
    const fromA = node("b")
      .received.filter((m) => m.from === "a")
      .map(seqOf);
    network.close();
    assert.deepEqual(fromA, (await dropPattern(7)).delivered);
  });

  it("duplication delivers a request twice and answers once, with the first copy's answer", async () => {
    const { network, node, send } = cluster(["a", "b"], { duplicateRate: 1 });
    let calls = 0;
    node("b").answer = async (message) => answerTo(message, ++calls);
    const responses = [];
    for (let i = 0; i < 5; i++) responses.push(await send("a", "b", heartbeat("a", "b", i)));
    assert.deepEqual(
      responses.map((r) => r?.term),
      [1, 3, 5, 7, 9],
    );
    assert.deepEqual(node("b").received.map(seqOf), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    assert.equal(network.counters("heartbeat").duplicated, 5);
    assert.equal(network.counters("heartbeat").delivered, 10);
    assert.equal(network.pending, 0);
    network.close();
  });

  it("a filter drops chosen messages, requests or answers", async () => {
    const { network, node, send } = cluster(["a", "b"]);
    network.setFilter((_from, _to, message) => message.type !== "heartbeatResponse");
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 20), isKind("timeout"));
    assert.equal(node("b").received.length, 1, "the request arrived, its answer was dropped");
    assert.equal(network.counters("heartbeatResponse").dropped, 1);
    network.setFilter((from) => from !== "a");
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 20), isKind("timeout"));
    assert.equal(node("b").received.length, 1);
    network.setFilter(null);
    assert.ok(await send("a", "b"));
    network.close();
  });
});

describe("MemoryNetwork order", () => {
  async function pipeline(options: MemoryNetworkOptions, count: number): Promise<number[]> {
    const { network, node, send } = cluster(["a", "b"], options);
    await Promise.all(
      Array.from({ length: count }, (_, i) => send("a", "b", appendEntries("a", "b", i))),
    );
    network.close();
    return node("b").received.map(seqOf);
  }

  const inOrder = (count: number) => Array.from({ length: count }, (_, i) => i);

  it("pipelined requests to one peer arrive in order without faults", async () => {
    assert.deepEqual(await pipeline({}, 1000), inOrder(1000));
  });

  it("with random delays but no reordering, a link stays FIFO", async () => {
    assert.deepEqual(await pipeline({ delayMs: [0, 4], seed: 3 }, 100), inOrder(100));
  });

  it("with duplication, copies arrive right after their original", async () => {
    const received = await pipeline({ duplicateRate: 0.5, seed: 5 }, 100);
    assert.deepEqual([...new Set(received)], inOrder(100));
    assert.ok(received.length > 100);
  });

  it("reordering lets requests overtake each other; every one still arrives", async () => {
    const received = await pipeline({ delayMs: [0, 8], reorder: true, seed: 3 }, 50);
    assert.notDeepEqual(received, inOrder(50));
    assert.deepEqual(
      received.slice().sort((x, y) => x - y),
      inOrder(50),
    );
  });

  it("changing faults mid-stream keeps the order of requests still delayed", async () => {
    const { network, node, send } = cluster(["a", "b"], { delayMs: [3, 3] });
    const sends = [send("a", "b", appendEntries("a", "b", 0))];
    network.setFaults({ delayMs: [0, 0] });
    sends.push(send("a", "b", appendEntries("a", "b", 1)));
    await Promise.all(sends);
    assert.deepEqual(node("b").received.map(seqOf), [0, 1]);
    network.close();
  });
});

describe("MemoryNetwork timeouts and teardown", () => {
  it("a request nobody answers rejects after the caller's timeout", async () => {
    const { network, node, send } = cluster(["a", "b"]);
    node("b").answer = () => new Promise(() => {});
    const started = performance.now();
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 25), isKind("timeout"));
    assert.ok(performance.now() - started >= 20);
    assert.equal(network.counters("heartbeat").timedOut, 1);
    assert.equal(network.pending, 0);
    network.close();
  });

  it("an answer after the timeout is discarded", async () => {
    const { network, node, send } = cluster(["a", "b"]);
    let answerLate: () => void = () => {};
    node("b").answer = (message) =>
      new Promise((resolve) => {
        answerLate = () => resolve(answerTo(message));
      });
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 10), isKind("timeout"));
    answerLate();
    node("b").answer = new Node("b").answer;
    // The late answer was queued before this round trip, so it has been handled when it ends.
    assert.ok(await send("a", "b"));
    assert.equal(network.counters("heartbeatResponse").sent, 2);
    assert.equal(network.counters("heartbeatResponse").delivered, 1);
    network.close();
  });

  it("a response delay longer than the timeout times out", async () => {
    const { network, send } = cluster(["a", "b"], { delayMs: [30, 30] });
    await assert.rejects(send("a", "b", heartbeat("a", "b"), 40), isKind("timeout"));
    network.close();
  });

  it("close rejects every pending send and every later one", async () => {
    const { network, node, send } = cluster(["a", "b"], { delayMs: [50, 50] });
    node("b").answer = () => new Promise(() => {});
    const pending = [send("a", "b"), send("b", "a"), send("a", "b")];
    assert.equal(network.pending, 3);
    network.close();
    for (const p of pending) await assert.rejects(p, isKind("closed"));
    await assert.rejects(send("a", "b"), isKind("closed"));
    assert.equal(network.pending, 0);
    assert.equal(node("b").received.length, 0, "nothing is delivered after close");
  });
});

describe("MemoryNetwork snapshot chunks", () => {
  it("delivers a chunk to handleSnapshotChunk and returns its answer, counted apart", async () => {
    const { network, node } = cluster(["a", "b"]);
    const chunk = chunkAt("a", "b", 100, 50);
    const answer = await network.endpoint("a").sendSnapshotChunk("b", address("b"), chunk, 1000);
    assert.equal(answer.offset, 150);
    assert.equal(node("b").chunks.length, 1);
    assert.equal(network.counters("snapshotChunk").delivered, 1);
    assert.equal(network.counters("snapshotChunkResponse").delivered, 1);
  });

  it("a chunk filter drops chosen chunks: the call times out, the others get through", async () => {
    const { network, node } = cluster(["a", "b"]);
    network.setChunkFilter((_from, _to, chunk) => chunk.offset !== 100);
    const send = (offset: number) =>
      network.endpoint("a").sendSnapshotChunk("b", address("b"), chunkAt("a", "b", offset, 10), 20);
    await assert.rejects(send(100), isKind("timeout"));
    assert.equal((await send(110)).offset, 120);
    assert.deepEqual(
      node("b").chunks.map((c) => c.offset),
      [110],
    );
    assert.equal(network.counters("snapshotChunk").dropped, 1);
    network.close();
  });

  it("partitions apply to chunks", async () => {
    const { network, node } = cluster(["a", "b"]);
    network.isolate("b");
    const sent = network
      .endpoint("a")
      .sendSnapshotChunk("b", address("b"), chunkAt("a", "b", 0, 1), 20);
    await assert.rejects(sent, isKind("timeout"));
    assert.equal(node("b").chunks.length, 0);
    network.close();
  });
});
