/**
 * RoutedNetwork (examples/kv/routed-network.ts): a routed peer's messages and snapshot chunks go
 * to the route's origin with the member address's path kept; other peers' go to their address.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePeerRoutes, RoutedNetwork } from "../../examples/kv/routed-network.ts";
import type { RequestMessage, SnapshotChunk } from "../../src/net/network.ts";
import { runtime } from "../helpers/runtime.ts";

/** A transport that records where each call went. */
function recorder() {
  const calls: { kind: string; to: string; address: string }[] = [];
  let closed = 0;
  const inner = {
    send(to: string, address: string) {
      calls.push({ kind: "send", to, address });
      return Promise.resolve(null);
    },
    sendSnapshotChunk(to: string, address: string) {
      calls.push({ kind: "chunk", to, address });
      return Promise.resolve({ term: 1, from: to, to: "n1", offset: 0, answer: null });
    },
    close() {
      closed++;
    },
  };
  return { inner, calls, closed: () => closed };
}

const heartbeat: RequestMessage = {
  type: "heartbeat",
  term: 1,
  from: "n1",
  to: "n2",
  leaderCommit: 0,
  round: 1,
};
const chunk: SnapshotChunk = {
  snapshot: {
    type: "installSnapshot",
    term: 1,
    from: "n1",
    to: "n2",
    lastIncludedIndex: 5,
    lastIncludedTerm: 1,
    membership: { voters: ["n1", "n2"], learners: [], addresses: {} },
  },
  offset: 0,
  data: new Uint8Array(0),
  done: true,
};

describe(`RoutedNetwork, on ${runtime}`, () => {
  it("sends a routed peer's messages and chunks to the route, keeping the path", async () => {
    const { inner, calls } = recorder();
    const network = new RoutedNetwork(inner, { n2: "http://127.0.0.1:9012/" });
    await network.send("n2", "http://127.0.0.1:7002/raft", heartbeat, 1000);
    await network.sendSnapshotChunk("n2", "http://127.0.0.1:7002/raft", chunk, 1000);
    await network.send("n3", "http://127.0.0.1:7003/raft", heartbeat, 1000);
    assert.deepEqual(calls, [
      { kind: "send", to: "n2", address: "http://127.0.0.1:9012/raft" },
      { kind: "chunk", to: "n2", address: "http://127.0.0.1:9012/raft" },
      { kind: "send", to: "n3", address: "http://127.0.0.1:7003/raft" },
    ]);
  });

  it("without routes is the inner transport as is, and closes it", async () => {
    const { inner, calls, closed } = recorder();
    const network = new RoutedNetwork(inner);
    await network.send("n2", "http://127.0.0.1:7002/raft", heartbeat, 1000);
    assert.deepEqual(calls, [{ kind: "send", to: "n2", address: "http://127.0.0.1:7002/raft" }]);
    network.close();
    assert.equal(closed(), 1);
  });

  it("parses ID=URL lists and names what is wrong with a bad one", () => {
    assert.deepEqual(parsePeerRoutes("n2=http://127.0.0.1:9012, n3=http://127.0.0.1:9013"), {
      n2: "http://127.0.0.1:9012",
      n3: "http://127.0.0.1:9013",
    });
    assert.throws(() => parsePeerRoutes("n2"), /'n2' is not ID=URL/);
    assert.throws(() => parsePeerRoutes("n2=ftp://x"), /not an http\(s\) URL/);
    assert.throws(() => parsePeerRoutes("n2=http://a,n2=http://b"), /n2 appears twice/);
  });
});
