import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hono } from "hono";
import { INSTALL_SNAPSHOT_PATH } from "../../src/http/snapshot-codec.ts";
import { WireError } from "../../src/http/wire-error.ts";
import type { RequestMessage, SnapshotChunkResponse } from "../../src/net/network.ts";
import { type PeerFetch, peerFetches } from "../helpers/peer-fetch.ts";
import { runtime } from "../helpers/runtime.ts";
import {
  appendEntries,
  chunkAnswerTo,
  jsonRequests,
  RecordingHandler,
  snapshotChunk,
} from "../http/helpers.ts";
import { fetchSuite, macrotask, rejection } from "./helpers.ts";

/** `length` bytes that differ from one offset to the next, so a misplaced byte shows. */
function bytesAt(offset: number, length: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = ((offset + i) * 2654435761) >>> 24;
  return data;
}

/** The suite, on the global fetch or another (see test/helpers/peer-fetch.ts). */
function snapshotChunkSuite(transport: PeerFetch): void {
  const { serve, peer, network, held } = fetchSuite(transport);

  /** A server answering chunks with `answer`'s result, for answers raftRoutes would not give. */
  async function fake(answer: (c: { json: (v: unknown) => Response }) => Response) {
    const app = new Hono();
    app.post(`/bad${INSTALL_SNAPSHOT_PATH}`, async (c) => {
      await c.req.arrayBuffer();
      return answer(c as unknown as { json: (v: unknown) => Response });
    });
    return `${await serve(app)}/bad`;
  }

  it("streams a snapshot chunk by chunk: every byte arrives in place, answers validated", async () => {
    const handler = new RecordingHandler("n2");
    const address = await peer(handler);
    const net = network();
    const size = 3 * 1024 * 1024 + 17;
    const chunkBytes = 1024 * 1024;
    const answers: SnapshotChunkResponse[] = [];
    for (let offset = 0; offset < size; offset += chunkBytes) {
      const length = Math.min(chunkBytes, size - offset);
      const chunk = snapshotChunk("n2", offset, bytesAt(offset, length), offset + length === size);
      const answer = await net.sendSnapshotChunk("n2", address, chunk, 5000);
      assert.deepEqual(answer, chunkAnswerTo(chunk));
      answers.push(answer);
    }
    assert.deepEqual(
      answers.map((a) => a.offset),
      [chunkBytes, 2 * chunkBytes, 3 * chunkBytes, size],
    );
    assert.equal(answers.at(-1)?.answer?.matchIndex, 100);
    assert.ok(answers.slice(0, -1).every((a) => a.answer === null));
    const received = new Uint8Array(size);
    for (const chunk of handler.chunks) received.set(chunk.data, chunk.offset);
    assert.deepEqual(received, bytesAt(0, size));
    assert.deepEqual(
      handler.chunks[0]?.snapshot,
      snapshotChunk("n2", 0, new Uint8Array(0), false).snapshot,
    );
  });

  it("chunks neither wait behind AppendEntries nor hold up heartbeats, and are never merged", async () => {
    const handler = new RecordingHandler("n2");
    const holdAppend = held();
    const holdChunk = held();
    handler.gate = (request) =>
      request.type === "appendEntries" ? holdAppend.promise : Promise.resolve();
    handler.chunkGate = (chunk) => (chunk.offset === 0 ? holdChunk.promise : Promise.resolve());
    const address = await peer(handler);
    const net = network();
    // An AppendEntries in flight and one queued behind it.
    const appends = [
      net.send("n2", address, appendEntries("n2", 1, 1), 5000),
      net.send("n2", address, appendEntries("n2", 2, 1), 5000),
    ];
    while (handler.calls.length < 1) await macrotask();
    // A chunk goes out at once, beside them.
    const first = net.sendSnapshotChunk(
      "n2",
      address,
      snapshotChunk("n2", 0, bytesAt(0, 10), false),
      5000,
    );
    while (handler.chunks.length < 1) await macrotask();
    // With both held, a heartbeat and another stream's chunk still get through.
    const heartbeat = await net.send("n2", address, jsonRequests("n2")[0] as RequestMessage, 5000);
    assert.equal(heartbeat?.type, "heartbeatResponse");
    const other = await net.sendSnapshotChunk(
      "n2",
      address,
      snapshotChunk("n2", 10, bytesAt(10, 5), true),
      5000,
    );
    assert.equal(other.offset, 15);
    assert.equal(handler.calls.filter((m) => m.type === "appendEntries").length, 1);
    holdChunk.resolve();
    assert.equal((await first).offset, 10);
    holdAppend.resolve();
    await Promise.all(appends);
    // Two chunks, each its own request, untouched by the AppendEntries merging.
    assert.deepEqual(
      handler.chunks.map((c) => [c.offset, c.data.length]),
      [
        [0, 10],
        [10, 5],
      ],
    );
  });

  it("a chunk with no answer within its timeout rejects with kind timeout", async () => {
    const handler = new RecordingHandler("n2");
    const hold = held();
    handler.chunkGate = () => hold.promise;
    const address = await peer(handler);
    const error = await rejection(
      network().sendSnapshotChunk("n2", address, snapshotChunk("n2", 0, bytesAt(0, 10), false), 80),
    );
    assert.equal(error.kind, "timeout");
    assert.match(error.message, /snapshot chunk at 0 to n2: no answer within 80 ms/);
    hold.resolve();
  });

  describe("bad answers reject", () => {
    const chunk = snapshotChunk("n2", 0, bytesAt(0, 10), true);
    const good = chunkAnswerTo(chunk);
    const cases: [string, (c: { json: (v: unknown) => Response }) => Response, RegExp][] = [
      ["a negative offset", (c) => c.json({ ...good, offset: -1 }), /offset: expected an integer/],
      ["a missing field", (c) => c.json({ ...good, term: undefined }), /term: missing/],
      ["an unknown field", (c) => c.json({ ...good, more: 1 }), /more: unknown field/],
      ["not JSON", () => new Response("ok", { status: 200 }), /malformed JSON/],
      ["no body", () => new Response(null, { status: 200 }), /empty body/],
      ["a 204", () => new Response(null, { status: 204 }), /HTTP 204/],
      ["from another node", (c) => c.json({ ...good, from: "n9" }), /answer from n9 to n1/],
      ["to another node", (c) => c.json({ ...good, to: "n9" }), /answer from n2 to n9/],
      [
        "an install answer from another node",
        (c) => c.json({ ...good, answer: { ...good.answer, from: "n9" } }),
        /answer: from n9 to n1/,
      ],
      [
        "an install answer of another type",
        (c) => c.json({ ...good, answer: { ...good.answer, type: "appendEntriesResponse" } }),
        /answer\.type: expected "installSnapshotResponse"/,
      ],
      [
        "a huge answer",
        () => new Response(`{"pad":"${"x".repeat(2 * 1024 * 1024)}"}`, { status: 200 }),
        /over 1048576 bytes/,
      ],
    ];
    for (const [name, answer, pattern] of cases) {
      it(name, async () => {
        const address = await fake(answer);
        const error = await rejection(network().sendSnapshotChunk("n2", address, chunk, 5000));
        assert.ok(error.kind === "protocol" || error.kind === "status", error.message);
        assert.match(error.message, pattern);
      });
    }

    it("statuses: 401 with a wrong secret, 400 for another node, 503 for a stopped one", async () => {
      const handler = new RecordingHandler("n2");
      const address = await peer(handler);
      const wrong = network({ secret: "nope" });
      const unauthorized = await rejection(wrong.sendSnapshotChunk("n2", address, chunk, 5000));
      assert.equal(unauthorized.kind, "status");
      assert.equal((unauthorized as { status?: number }).status, 401);
      const other = snapshotChunk("n3", 0, bytesAt(0, 1), false);
      const misaddressed = await rejection(network().sendSnapshotChunk("n3", address, other, 5000));
      assert.match(misaddressed.message, /HTTP 400: message for n3 sent to n2/);
      handler.down = new Error("the node has shut down");
      const down = await rejection(network().sendSnapshotChunk("n2", address, chunk, 5000));
      assert.match(
        down.message,
        /snapshot chunk at 0 to n2 at .*: HTTP 503: node unavailable: the node has shut down/,
      );
      assert.equal(handler.chunks.length, 1, "only the well-addressed, authorized chunk arrived");
    });
  });

  it("shares the peer's backoff: a failed chunk makes the next sends fail fast", async () => {
    const handler = new RecordingHandler("n2");
    handler.down = new Error("stopped");
    const address = await peer(handler);
    const net = network({ backoffInitialMs: 60_000, backoffMaxMs: 60_000 });
    const chunk = snapshotChunk("n2", 0, bytesAt(0, 10), false);
    assert.equal(
      (await rejection(net.sendSnapshotChunk("n2", address, chunk, 2000))).kind,
      "status",
    );
    for (const send of [
      () => net.sendSnapshotChunk("n2", address, chunk, 2000),
      () => net.send("n2", address, jsonRequests("n2")[0] as RequestMessage, 2000),
    ]) {
      const error = await rejection(send());
      assert.equal(error.kind, "backoff");
      assert.match(error.message, /n2 at .* is failing \(1 failed attempts\)/);
    }
    assert.equal(handler.chunks.length, 1, "failing fast does not touch the network");
  });

  it("bad arguments, an unencodable chunk and a closed network", async () => {
    const handler = new RecordingHandler("n2");
    const address = await peer(handler);
    const net = network();
    const chunk = snapshotChunk("n2", 0, bytesAt(0, 10), false);
    await assert.rejects(net.sendSnapshotChunk("n2", address, chunk, 0), RangeError);
    await assert.rejects(
      net.sendSnapshotChunk("n2", address, { ...chunk, offset: -1 }, 1000),
      WireError,
    );
    // The caller's bug is not the peer's failure: the next chunk goes through.
    assert.equal((await net.sendSnapshotChunk("n2", address, chunk, 1000)).offset, 10);
    const hold = held();
    handler.chunkGate = () => hold.promise;
    const inFlight = rejection(
      net.sendSnapshotChunk("n2", address, { ...chunk, offset: 10 }, 5000),
    );
    while (handler.chunks.length < 2) await macrotask();
    net.close();
    assert.equal((await inFlight).kind, "closed");
    assert.equal(
      (await rejection(net.sendSnapshotChunk("n2", address, chunk, 1000))).kind,
      "closed",
    );
    hold.resolve();
  });
}

for (const transport of await peerFetches()) {
  describe(`FetchNetwork.sendSnapshotChunk on ${runtime}${transport.label}`, () =>
    snapshotChunkSuite(transport));
}
