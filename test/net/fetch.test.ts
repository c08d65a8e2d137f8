import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hono } from "hono";
import type { AppendEntriesRequest } from "../../src/core/types.ts";
import { WireError } from "../../src/http/wire-error.ts";
import { FetchNetwork, type TransportLogger } from "../../src/net/fetch.ts";
import type { RequestMessage, ResponseMessage } from "../../src/net/network.ts";
import { type PeerFetch, peerFetches } from "../helpers/peer-fetch.ts";
import { runtime } from "../helpers/runtime.ts";
import { answerTo, appendEntries, jsonRequests, RecordingHandler } from "../http/helpers.ts";
import { fetchSuite, macrotask, rejection } from "./helpers.ts";

interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

class RecordingLogger implements TransportLogger {
  readonly lines: LogLine[] = [];
  log(level: string, message: string, fields: Record<string, unknown>): void {
    this.lines.push({ level, message, fields });
  }
}

function commands(message: RequestMessage): number[] {
  return (message as AppendEntriesRequest).entries.map((e) => e.index);
}

/** The suite, on the global fetch or another (see test/helpers/peer-fetch.ts). */
function fetchNetworkSuite(transport: PeerFetch): void {
  const { serve, peer, network, closedAddress, held } = fetchSuite(transport);

  it("round-trips every message type", async () => {
    const handler = new RecordingHandler("n2");
    const address = await peer(handler);
    const net = network();
    const requests: RequestMessage[] = [
      appendEntries("n2", 1, 3),
      appendEntries("n2", 4, 0),
      {
        ...appendEntries("n2", 4, 0),
        entries: [
          { index: 4, term: 2, kind: "blank" },
          {
            index: 5,
            term: 2,
            kind: "membership",
            membership: { voters: ["n1", "n2"], learners: [], addresses: { n1: "a", n2: "b" } },
          },
        ],
      },
      ...jsonRequests("n2"),
    ];
    for (const request of requests) {
      const response = await net.send("n2", address, request, 2000);
      assert.deepEqual(response, answerTo(request), request.type);
    }
    assert.equal(handler.calls.length, requests.length);
    assert.deepEqual(
      JSON.parse(JSON.stringify(handler.calls[2])),
      JSON.parse(JSON.stringify(requests[2])),
    );
  });

  it("a trailing slash in the address is fine", async () => {
    const handler = new RecordingHandler("n2");
    const address = await peer(handler);
    const response = await network().send(
      "n2",
      `${address}/`,
      jsonRequests("n2")[0] as RequestMessage,
      2000,
    );
    assert.equal(response?.type, "heartbeatResponse");
  });

  describe("errors", () => {
    it("a non-2xx answer rejects with its status and message", async () => {
      const handler = new RecordingHandler("n2");
      const address = await peer(handler);
      const heartbeat = jsonRequests("n2")[0] as RequestMessage;
      // Wrong secret: 401.
      const error = await rejection(
        new FetchNetwork({ secret: "nope", ...transport.options }).send(
          "n2",
          address,
          heartbeat,
          2000,
        ),
      );
      assert.equal(error.kind, "status");
      assert.equal((error as { status?: number }).status, 401);
      assert.match(error.message, /HTTP 401: missing or wrong cluster secret/);
      // Addressed to another node: 400.
      const other = await rejection(
        network().send("n3", address, { ...heartbeat, to: "n3" }, 2000),
      );
      assert.match(other.message, /HTTP 400: message for n3 sent to n2/);
      // A stopped node: 503.
      handler.down = new Error("the node has shut down");
      const down = await rejection(network().send("n2", address, heartbeat, 2000));
      assert.match(down.message, /HTTP 503: node unavailable: the node has shut down/);
      assert.equal(handler.calls.length, 1);
    });

    it("an invalid answer rejects as a protocol error", async () => {
      const app = new Hono();
      app.post("/bad/heartbeat", (c) => c.json({ type: "heartbeatResponse", term: -1 }));
      app.post("/bad/timeout-now", (c) => c.json({}));
      app.post("/bad/request-vote", (c) => c.text("not json"));
      app.post("/bad/append-entries", (c) =>
        c.json({ ...answerTo(appendEntries("n2", 1, 1)), from: "n9" }),
      );
      const address = `${await serve(app)}/bad`;
      const [heartbeat, vote, , timeoutNow] = jsonRequests("n2") as RequestMessage[];
      const cases: [RequestMessage, RegExp][] = [
        [heartbeat as RequestMessage, /heartbeatResponse\.term: expected a non-negative integer/],
        [timeoutNow as RequestMessage, /expected no answer \(204\), got 200/],
        [vote as RequestMessage, /malformed JSON/],
        [appendEntries("n2", 1, 1), /answer from n9 to n1/],
      ];
      for (const [request, pattern] of cases) {
        // Each failure starts a backoff streak: use a fresh network so each request goes out.
        const error = await rejection(network().send("n2", address, request, 2000));
        assert.equal(error.kind, "protocol", request.type);
        assert.match(error.message, pattern);
      }
    });

    it("a timeout rejects, for a request in flight and for one still queued", async () => {
      const handler = new RecordingHandler("n2");
      const hold = held();
      handler.gate = () => hold.promise;
      const address = await peer(handler);
      const net = network();
      const started = performance.now();
      const first = net.send("n2", address, appendEntries("n2", 1, 1), 150);
      const queued = net.send("n2", address, appendEntries("n2", 2, 1), 60);
      const queuedError = await rejection(queued);
      assert.equal(queuedError.kind, "timeout");
      assert.match(queuedError.message, /no answer within 60 ms/);
      const firstError = await rejection(first);
      assert.equal(firstError.kind, "timeout");
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 140 && elapsed < 5000, `${elapsed} ms`);
      assert.equal(handler.calls.length, 1, "the queued request never left");
      hold.resolve();
    });

    it("bad arguments and a closed network", async () => {
      const net = new FetchNetwork();
      const heartbeat = jsonRequests("n2")[0] as RequestMessage;
      await assert.rejects(net.send("n2", "http://127.0.0.1:1", heartbeat, 0), RangeError);
      assert.throws(() => new FetchNetwork({ secret: "" }), RangeError);
      assert.throws(() => new FetchNetwork({ backoffInitialMs: 10, backoffMaxMs: 5 }), RangeError);
      // A message that cannot be encoded is the caller's bug, not the peer's: no streak starts.
      const logger = new RecordingLogger();
      const handler = new RecordingHandler("n2");
      const address = await peer(handler);
      const strict = network({ logger });
      await assert.rejects(
        strict.send("n2", address, appendEntries("n2", 1, 1, { term: -1 }), 1000),
        WireError,
      );
      assert.ok(await strict.send("n2", address, jsonRequests("n2")[0] as RequestMessage, 1000));
      assert.deepEqual(logger.lines, []);
      net.close();
      assert.equal(
        (await rejection(net.send("n2", "http://127.0.0.1:1", heartbeat, 100))).kind,
        "closed",
      );
    });

    it("close() rejects requests in flight and queued", async () => {
      const handler = new RecordingHandler("n2");
      const hold = held();
      handler.gate = () => hold.promise;
      const address = await peer(handler);
      const logger = new RecordingLogger();
      const net = network({ logger });
      const inFlight = net.send("n2", address, appendEntries("n2", 1, 1), 5000);
      const queued = net.send("n2", address, appendEntries("n2", 2, 1), 5000);
      const heartbeat = net.send("n2", address, jsonRequests("n2")[0] as RequestMessage, 5000);
      while (handler.calls.length < 2) await macrotask();
      const errors = [inFlight, queued, heartbeat].map(rejection);
      net.close();
      for (const error of errors) assert.equal((await error).kind, "closed");
      assert.deepEqual(logger.lines, [], "closing is not a peer failure");
      hold.resolve();
    });
  });

  describe("per-peer order of AppendEntries", () => {
    it("one in flight; the queued ones that continue each other are merged, in order", async () => {
      const handler = new RecordingHandler("n2");
      const hold = held();
      handler.gate = (request) =>
        request.type === "appendEntries" && commands(request)[0] === 1
          ? hold.promise
          : Promise.resolve();
      const address = await peer(handler);
      const net = network();
      const first = net.send("n2", address, appendEntries("n2", 1, 1), 5000);
      while (handler.calls.length < 1) await macrotask();
      const queued: Promise<ResponseMessage | null>[] = [];
      for (let i = 2; i <= 10; i++)
        queued.push(net.send("n2", address, appendEntries("n2", i, 1), 5000));
      // A heartbeat does not wait behind AppendEntries.
      const heartbeat = await net.send(
        "n2",
        address,
        jsonRequests("n2")[0] as RequestMessage,
        5000,
      );
      assert.equal(heartbeat?.type, "heartbeatResponse");
      assert.equal(handler.calls.length, 2, "the queued AppendEntries have not left");
      hold.resolve();
      const firstAnswer = await first;
      assert.equal(firstAnswer?.type === "appendEntriesResponse" && firstAnswer.matchIndex, 1);
      const answers = await Promise.all(queued);
      // The merged request's answer goes to the first merged caller; the others get null.
      const [mergedAnswer, ...rest] = answers;
      assert.equal(mergedAnswer?.type === "appendEntriesResponse" && mergedAnswer.matchIndex, 10);
      assert.ok(rest.every((answer) => answer === null));
      const appends = handler.calls.filter((m) => m.type === "appendEntries");
      assert.deepEqual(appends.map(commands), [[1], [2, 3, 4, 5, 6, 7, 8, 9, 10]]);
      assert.equal((appends[1] as AppendEntriesRequest).prevLogIndex, 1);
    });

    it("AppendEntries that do not continue each other are sent one by one, in order", async () => {
      const handler = new RecordingHandler("n2");
      const hold = held();
      let holding = false;
      handler.gate = () => {
        if (holding) return Promise.resolve();
        holding = true;
        return hold.promise;
      };
      const address = await peer(handler);
      const net = network();
      const sends = [
        net.send("n2", address, appendEntries("n2", 1, 2), 5000),
        net.send("n2", address, appendEntries("n2", 3, 1), 5000), // continues: merged with the next?
        net.send("n2", address, appendEntries("n2", 7, 1), 5000), // a gap
        net.send("n2", address, appendEntries("n2", 8, 1, { term: 3 }), 5000), // a new term
        net.send("n2", address, appendEntries("n2", 9, 1, { term: 3 }), 5000),
      ];
      while (handler.calls.length < 1) await macrotask();
      hold.resolve();
      await Promise.all(sends);
      assert.deepEqual(handler.calls.map(commands), [[1, 2], [3], [7], [8, 9]]);
    });

    it("under many concurrent sends a follower sees every batch once, in order", async () => {
      const handler = new RecordingHandler("n2");
      let n = 0;
      handler.gate = async () => {
        for (let i = n++ % 4; i > 0; i--) await macrotask();
      };
      const address = await peer(handler);
      const net = network({ maxMergeBytes: 40 });
      const sends: Promise<ResponseMessage | null>[] = [];
      for (let i = 1; i <= 300; i++) {
        sends.push(net.send("n2", address, appendEntries("n2", i, 1), 10_000));
        if (i % 7 === 0) await macrotask();
      }
      const answers = await Promise.all(sends);
      const received = handler.calls.map(commands);
      assert.deepEqual(
        received.flat(),
        Array.from({ length: 300 }, (_, i) => i + 1),
      );
      for (const message of handler.calls) {
        const entries = (message as AppendEntriesRequest).entries;
        const bytes = entries.reduce(
          (sum, e) => sum + (e.kind === "command" ? e.data.length : 0),
          0,
        );
        assert.ok(entries.length === 1 || bytes <= 40, `a merged batch of ${bytes} bytes`);
      }
      assert.ok(handler.calls.length < 300, "some requests were merged");
      // One answer per request, each to the first caller merged into it.
      assert.equal(answers.filter((a) => a !== null).length, handler.calls.length);
      const last = answers.filter((a) => a !== null).at(-1);
      assert.equal(last?.type === "appendEntriesResponse" && last.matchIndex, 300);
    });
  });

  describe("backoff", () => {
    it("an unreachable peer fails fast after the first failure and is logged once", async () => {
      const address = await closedAddress();
      const logger = new RecordingLogger();
      const net = network({ logger, backoffInitialMs: 60_000, backoffMaxMs: 60_000 });
      const heartbeat = jsonRequests("n2")[0] as RequestMessage;
      const first = await rejection(net.send("n2", address, heartbeat, 2000));
      assert.equal(first.kind, "unreachable");
      for (let i = 0; i < 50; i++) {
        const request = i % 2 === 0 ? heartbeat : appendEntries("n2", 1, 1);
        const error = await rejection(net.send("n2", address, request, 2000));
        assert.equal(error.kind, "backoff");
        assert.match(
          error.message,
          /n2 at .* is failing \(1 failed attempts\); next attempt in \d+ ms/,
        );
      }
      assert.equal(logger.lines.length, 1);
      assert.equal(logger.lines[0]?.level, "warn");
      assert.equal(logger.lines[0]?.fields.peer, "n2");
      // Another peer is not affected.
      const handler = new RecordingHandler("n3");
      const other = await peer(handler);
      assert.ok(await net.send("n3", other, { ...heartbeat, to: "n3" } as RequestMessage, 2000));
    });

    it("a failing peer gets one probe per growing interval, then recovers", async () => {
      const handler = new RecordingHandler("n2");
      handler.down = new Error("stopped");
      const address = await peer(handler);
      const logger = new RecordingLogger();
      const net = network({ logger, backoffInitialMs: 20, backoffMaxMs: 80 });
      const heartbeat = jsonRequests("n2")[0] as RequestMessage;
      const kinds = new Map<string, number>();
      const started = performance.now();
      // Send as fast as failures come back for 500 ms.
      while (performance.now() - started < 500) {
        const error = await rejection(net.send("n2", address, heartbeat, 2000));
        kinds.set(error.kind ?? "?", (kinds.get(error.kind ?? "?") ?? 0) + 1);
      }
      const attempts = handler.calls.length;
      // 0, 20, 60, 140, 220, 300, 380, 460 ms: about 8 attempts, not one per send.
      assert.ok(attempts >= 3 && attempts <= 12, `${attempts} attempts`);
      assert.equal(kinds.get("status"), attempts);
      assert.ok((kinds.get("backoff") ?? 0) > 10 * attempts, JSON.stringify([...kinds]));
      assert.equal(logger.lines.length, 1, "one line per streak");
      // The peer comes back: a probe gets through within the longest interval.
      handler.down = null;
      let answer: ResponseMessage | null = null;
      while (answer === null) {
        try {
          answer = await net.send("n2", address, heartbeat, 2000);
        } catch (error) {
          assert.equal((error as { kind?: string }).kind, "backoff");
        }
      }
      assert.equal(answer.type, "heartbeatResponse");
      assert.ok(performance.now() - started < 5000);
      assert.deepEqual(
        logger.lines.map((l) => [l.level, l.message]),
        [
          ["warn", "peer unreachable: backing off"],
          ["info", "peer reachable again"],
        ],
      );
      assert.equal(logger.lines[1]?.fields.failedAttempts, attempts);
      // Healthy again: every send goes through.
      const before = handler.calls.length;
      for (let i = 0; i < 5; i++) await net.send("n2", address, heartbeat, 2000);
      assert.equal(handler.calls.length, before + 5);
    });
  });
}

for (const transport of await peerFetches()) {
  describe(`FetchNetwork on ${runtime}${transport.label}`, () => fetchNetworkSuite(transport));
}
