import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import type { Server } from "../../adapters/server.ts";
import type { AppendEntriesRequest } from "../../src/core/types.ts";
import { Raft } from "../../src/driver/raft.ts";
import {
  encodeAppendEntries,
  encodeJson,
  PRE_VOTE_PATH,
  RPC_PATHS,
  rpcPath,
} from "../../src/http/codec.ts";
import { raftRoutes } from "../../src/http/routes.ts";
import { MemoryNetwork } from "../../src/net/memory.ts";
import type { RequestMessage } from "../../src/net/network.ts";
import { MemoryLogStore } from "../../src/storage/memory.ts";
import { bytes, RecordingStateMachine, testConfig, waitMs } from "../driver/harness.ts";
import { loadAdapter, runtime } from "../helpers/runtime.ts";
import {
  type Answer,
  answerTo,
  appendEntries,
  type Body,
  endlessBody,
  errorOf,
  jsonRequests,
  post,
  RecordingHandler,
  SECRET,
  serveMounts,
} from "./helpers.ts";

const OCTET = "application/octet-stream";
const JSON_TYPE = "application/json";
const encoder = new TextEncoder();

type JsonRequest = Exclude<RequestMessage, AppendEntriesRequest>;

function json(message: unknown): string {
  return JSON.stringify(message);
}

function u64At(frame: Uint8Array, at: number, high: number, low: number): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(at, high);
  view.setUint32(at + 4, low);
  return frame;
}

/** Offset of the first entry of a frame from "n1" to "n2". */
const FIRST_ENTRY = 38 + 2 + 1 + 2;

interface BadCase {
  readonly name: string;
  readonly body: () => Body;
  readonly contentType: string | null;
  readonly status: number;
  readonly error: RegExp;
}

/** Bad AppendEntries bodies for a node with id `to`. */
function badAppendEntries(to: string): BadCase[] {
  const frame = () => encodeAppendEntries(appendEntries(to, 1, 3));
  const other = to === "n2" ? "n3" : "n2";
  const bad = (name: string, body: () => Body, error: RegExp, contentType = OCTET) => ({
    name,
    body,
    contentType,
    status: 400,
    error,
  });
  return [
    bad(
      "JSON content type",
      () => frame(),
      /expected Content-Type application\/octet-stream/,
      JSON_TYPE,
    ),
    bad("no content type", () => frame(), /expected Content-Type/, "text/plain"),
    bad("empty body", () => new Uint8Array(0), /empty body/),
    bad(
      "malformed frame (JSON in it)",
      () => encodeJson(jsonRequests(to)[0] as JsonRequest),
      /unknown frame version 0x7b/,
    ),
    bad("garbage", () => new Uint8Array([0xa1, 1, 2, 3]), /truncated header/),
    bad(
      "truncated body",
      () => frame().subarray(0, frame().length - 5),
      /overruns the body|truncated/,
    ),
    bad(
      "truncated entry header",
      () => frame().subarray(0, FIRST_ENTRY + 7),
      /truncated entry|overruns/,
    ),
    bad(
      "entry length overrunning the body",
      () => {
        const f = frame();
        new DataView(f.buffer).setUint32(FIRST_ENTRY + 17, 0x7fffffff);
        return f;
      },
      /entries\.0: length 2147483647 overruns the body/,
    ),
    bad(
      "count overrunning the body",
      () => {
        const f = frame();
        new DataView(f.buffer).setUint32(33, 1_000_000);
        return f;
      },
      /count 1000000 overruns the body/,
    ),
    bad(
      "unknown entry kind",
      () => {
        const f = frame();
        f[FIRST_ENTRY + 16] = 7;
        return f;
      },
      /unknown kind 7/,
    ),
    bad("non-contiguous indices", () => u64At(frame(), FIRST_ENTRY, 0, 5), /contiguous/),
    bad(
      "index above 2^53 - 1",
      () => u64At(frame(), 9, 0xffffffff, 0),
      /prevLogIndex: above 2\^53 - 1/,
    ),
    bad(
      "trailing bytes",
      () => {
        const f = frame();
        const longer = new Uint8Array(f.length + 1);
        longer.set(f);
        return longer;
      },
      /1 trailing bytes/,
    ),
    bad(
      "addressed to another node",
      () => encodeAppendEntries(appendEntries(other, 1, 1)),
      new RegExp(`message for ${other} sent to ${to}`),
    ),
  ];
}

/** A vote posted to the pre-vote route, or the other way round. */
function wrongRoute(request: JsonRequest | undefined, preVote: boolean): BadCase {
  return {
    name: preVote ? "a vote on the pre-vote route" : "a pre-vote on the vote route",
    body: () => encodeJson(request as JsonRequest),
    contentType: JSON_TYPE,
    status: 400,
    error: new RegExp(`preVote must be ${preVote}`),
  };
}

/** Bad bodies for the JSON route of `request` (addressed to the node). */
function badJson(request: JsonRequest, to: string): BadCase[] {
  const valid = JSON.parse(encodeJson(request)) as Record<string, unknown>;
  const other = to === "n2" ? "n3" : "n2";
  const bad = (name: string, body: () => Body, error: RegExp, contentType = JSON_TYPE) => ({
    name,
    body,
    contentType,
    status: 400,
    error,
  });
  const { term: _, ...noTerm } = valid;
  const otherType = request.type === "heartbeat" ? "timeoutNow" : "heartbeat";
  return [
    bad(
      "octet-stream content type",
      () => json(valid),
      /expected Content-Type application\/json/,
      OCTET,
    ),
    bad("empty body", () => "", /empty body/),
    bad("malformed JSON", () => "{not json", /malformed JSON/),
    bad("truncated body", () => json(valid).slice(0, 20), /malformed JSON/),
    bad("invalid UTF-8", () => new Uint8Array([0x7b, 0xff, 0x7d]), /UTF-8/),
    bad("not an object", () => "[1,2]", /expected an object/),
    bad("wrong type: string term", () => json({ ...valid, term: "2" }), /term: expected a number/),
    bad("wrong type: numeric id", () => json({ ...valid, from: 1 }), /from: expected a string/),
    bad(
      "negative index",
      () => json({ ...valid, term: -1 }),
      /term: expected a non-negative integer/,
    ),
    bad(
      "non-integer index",
      () => json({ ...valid, term: 1.5 }),
      /term: expected a non-negative integer/,
    ),
    bad("missing field", () => json(noTerm), /term: missing/),
    bad("unknown field", () => json({ ...valid, sneaky: 1 }), /sneaky: unknown field/),
    bad("another message's type", () => json({ ...valid, type: otherType }), /type: expected/),
    bad("empty id", () => json({ ...valid, from: "" }), /from: must not be empty/),
    bad(
      "addressed to another node",
      () => json({ ...valid, to: other }),
      new RegExp(`message for ${other} sent to ${to}`),
    ),
  ];
}

function badCases(to: string): [string, BadCase[]][] {
  const [heartbeat, vote, preVote, timeoutNow] = jsonRequests(to) as JsonRequest[];
  return [
    [RPC_PATHS.appendEntries, badAppendEntries(to)],
    [RPC_PATHS.heartbeat, badJson(heartbeat as JsonRequest, to)],
    [RPC_PATHS.requestVote, [...badJson(vote as JsonRequest, to), wrongRoute(preVote, false)]],
    [PRE_VOTE_PATH, [...badJson(preVote as JsonRequest, to), wrongRoute(vote, true)]],
    [RPC_PATHS.timeoutNow, badJson(timeoutNow as JsonRequest, to)],
  ];
}

/** The body and content type of a valid request. */
function encoded(request: RequestMessage): [Body, string] {
  return request.type === "appendEntries"
    ? [encodeAppendEntries(request), OCTET]
    : [encodeJson(request), JSON_TYPE];
}

function allRequests(to: string): RequestMessage[] {
  return [appendEntries(to, 1, 2), appendEntries(to, 1, 0), ...jsonRequests(to)];
}

describe(`raftRoutes on ${runtime}`, () => {
  const handler = new RecordingHandler("n2");
  let server: Server;
  let base: string;

  before(async () => {
    ({ server, base } = await serveMounts(handler, { maxBodyBytes: 1000 }));
  });

  after(async () => {
    await server.close();
  });

  it("answers every request type: 200 with the response, 204 for TimeoutNow", async () => {
    for (const request of allRequests("n2")) {
      const [body, contentType] = encoded(request);
      const answer = await post(`${base}/open${rpcPath(request)}`, body, contentType);
      const expected = answerTo(request);
      assert.equal(answer.status, expected === null ? 204 : 200, request.type);
      assert.deepEqual(answer.body, expected);
    }
    assert.equal(handler.calls.length, 6);
    const received = handler.calls[0] as AppendEntriesRequest;
    assert.deepEqual(
      received.entries.map((e) => e.kind === "command" && new TextDecoder().decode(e.data)),
      ["c1", "c2"],
    );
    handler.calls.length = 0;
  });

  for (const [path, cases] of badCases("n2")) {
    describe(`POST ${path}: bad input is a 400 naming the problem`, () => {
      for (const c of cases) {
        it(c.name, async () => {
          const answer = await post(`${base}/open${path}`, c.body(), c.contentType);
          assert.equal(answer.status, c.status, errorOf(answer));
          assert.match(errorOf(answer), c.error);
          assert.ok(errorOf(answer).length < 200, "a short message");
          assert.equal(handler.calls.length, 0, "nothing reached the handler");
        });
      }
    });
  }

  describe("body size", () => {
    it("a Content-Length over maxBodyBytes is a 413", async () => {
      const frame = encodeAppendEntries(appendEntries("n2", 1, 100));
      assert.ok(frame.length > 1000);
      const answer = await post(`${base}/small${RPC_PATHS.appendEntries}`, frame, OCTET);
      assert.equal(answer.status, 413);
      assert.match(errorOf(answer), /over the limit of 1000/);
      const big = json({ ...jsonRequests("n2")[0], pad: "x".repeat(2000) });
      assert.equal((await post(`${base}/small${RPC_PATHS.heartbeat}`, big, JSON_TYPE)).status, 413);
      assert.equal(handler.calls.length, 0);
    });

    it("a streamed body (no Content-Length) is cut off past maxBodyBytes: 413", async () => {
      const { stream, sent } = endlessBody(512, 0xa1, 64 * 1024 * 1024);
      const answer = await post(`${base}/small${RPC_PATHS.appendEntries}`, stream, OCTET);
      assert.equal(answer.status, 413);
      assert.ok(sent() < 64 * 1024 * 1024, "the server stopped reading early");
      assert.equal(handler.calls.length, 0);
    });

    it("a body at the limit is accepted", async () => {
      const heartbeat = jsonRequests("n2")[0] as JsonRequest;
      const answer = await post(
        `${base}/small${RPC_PATHS.heartbeat}`,
        encodeJson(heartbeat),
        JSON_TYPE,
      );
      assert.equal(answer.status, 200);
      assert.equal(handler.calls.length, 1);
      handler.calls.length = 0;
    });
  });

  describe("authentication", () => {
    const [body, contentType] = encoded(jsonRequests("n2")[0] as RequestMessage);
    const url = () => `${base}/secure${RPC_PATHS.heartbeat}`;
    const refused: [string, Record<string, string>][] = [
      ["no Authorization header", {}],
      ["a wrong secret", { Authorization: "Bearer correct horse battery stapler" }],
      [
        "a wrong secret of the same length",
        { Authorization: `Bearer ${"x".repeat(SECRET.length)}` },
      ],
      ["an empty token", { Authorization: "Bearer " }],
      ["another scheme", { Authorization: `Basic ${SECRET}` }],
      ["the bare secret", { Authorization: SECRET }],
    ];
    for (const [name, headers] of refused) {
      it(`${name}: 401, and nothing reaches the handler`, async () => {
        const answer = await post(url(), body, contentType, headers);
        assert.equal(answer.status, 401);
        assert.match(errorOf(answer), /missing or wrong cluster secret/);
        assert.equal(handler.calls.length, 0);
      });
    }

    it("is checked before the body: a bad body without the secret is a 401", async () => {
      for (const [path] of badCases("n2")) {
        const answer = await post(`${base}/secure${path}`, "{bad", JSON_TYPE);
        assert.equal(answer.status, 401);
      }
      assert.equal(handler.calls.length, 0);
    });

    it("the right secret: 200 on every route (the scheme is case-insensitive)", async () => {
      for (const request of allRequests("n2")) {
        const [b, type] = encoded(request);
        const answer = await post(`${base}/secure${rpcPath(request)}`, b, type, {
          Authorization: `Bearer ${SECRET}`,
        });
        assert.equal(answer.status, request.type === "timeoutNow" ? 204 : 200);
      }
      const answer = await post(url(), body, contentType, { Authorization: `bearer ${SECRET}` });
      assert.equal(answer.status, 200);
      assert.equal(handler.calls.length, 7);
      handler.calls.length = 0;
    });

    it("an empty secret is refused when the routes are built", () => {
      assert.throws(() => raftRoutes(handler, { secret: "" }), RangeError);
      assert.throws(() => raftRoutes(handler, { maxBodyBytes: 0 }), RangeError);
    });
  });

  describe("a node that is not running: 503", () => {
    for (const [name, path, pattern] of [
      ["not started", "/unstarted", /node unavailable: the node has not been started/],
      ["shut down", "/stopped", /node unavailable: the node has shut down/],
    ] as const) {
      it(name, async () => {
        for (const request of allRequests("n2")) {
          const [body, contentType] = encoded(request);
          const answer = await post(`${base}${path}${rpcPath(request)}`, body, contentType);
          assert.equal(answer.status, 503, request.type);
          assert.match(errorOf(answer), pattern);
        }
      });
    }
  });

  it("unknown routes and methods: 404", async () => {
    const answer = await post(`${base}/open/no-such-rpc`, "{}", JSON_TYPE);
    assert.equal(answer.status, 404);
    const get = await fetch(`${base}/open${RPC_PATHS.heartbeat}`);
    assert.equal(get.status, 404);
    await get.body?.cancel();
  });
});

describe(`raftRoutes on ${runtime} in front of a real Raft node`, () => {
  const id = "n1";
  let raft: Raft;
  let server: Server;
  let base: string;

  before(async () => {
    const { serve } = await loadAdapter();
    raft = new Raft({
      id,
      config: testConfig,
      logStore: new MemoryLogStore(),
      stateMachine: new RecordingStateMachine(),
      network: new MemoryNetwork().endpoint(id),
    });
    await raft.start();
    await raft.initialize({ [id]: "http://127.0.0.1:1/raft" });
    await raft.metrics.waitFor((m) => m.role === "leader" && m.commitIndex >= 2, {
      timeoutMs: waitMs,
    });
    await raft.write(bytes("before"));
    const app = new Hono();
    app.route("/raft", raftRoutes(raft, { secret: SECRET }));
    server = await serve(app, { port: 0 });
    base = `http://127.0.0.1:${server.port}/raft`;
  });

  after(async () => {
    await server.close();
    await raft.shutdown();
  });

  function observable() {
    const m = raft.metrics.current;
    return {
      role: m.role,
      term: m.term,
      leaderId: m.leaderId,
      votedFor: raft.state.votedFor,
      lastLogIndex: m.lastLogIndex,
      commitIndex: m.commitIndex,
      lastApplied: m.lastApplied,
      membership: m.membership,
      stopped: m.stopped,
      error: m.error,
    };
  }

  it("bad input, wrong or missing secrets and misaddressed messages leave its state unchanged", async () => {
    const before = observable();
    const auth = { Authorization: `Bearer ${SECRET}` };
    const answers: Answer[] = [];
    // Every malformed body, with the right secret.
    for (const [path, cases] of badCases(id)) {
      for (const c of cases) {
        const answer = await post(`${base}${path}`, c.body(), c.contentType, auth);
        assert.equal(answer.status, 400, `${path} ${c.name}: ${errorOf(answer)}`);
        answers.push(answer);
      }
    }
    // Well-formed messages from a newer term that would depose the leader if they got through.
    const disruptive: RequestMessage[] = [
      appendEntries(id, 1, 1, { term: 9, from: "n2", prevLogIndex: 0, prevLogTerm: 0 }),
      ...jsonRequests(id, 9).map((r) => ({ ...r, from: "n2" })),
    ];
    for (const request of disruptive) {
      const [body, contentType] = encoded(request);
      const url = `${base}${rpcPath(request)}`;
      for (const headers of [{}, { Authorization: "Bearer wrong" }] as Record<string, string>[]) {
        assert.equal((await post(url, body, contentType, headers)).status, 401, request.type);
      }
      const misaddressed = { ...request, to: "n7" } as RequestMessage;
      const [b, t] = encoded(misaddressed);
      const answer = await post(url, b, t, auth);
      assert.equal(answer.status, 400);
      assert.match(errorOf(answer), /message for n7 sent to n1/);
    }
    assert.deepEqual(observable(), before);
    // The node keeps serving.
    const { index } = await raft.write(bytes("after"));
    assert.equal(index, before.lastLogIndex + 1);
    assert.equal(raft.metrics.current.term, before.term);
  });

  it("a well-formed request with the secret does reach it", async () => {
    const vote = jsonRequests(id, raft.metrics.current.term)[1] as JsonRequest;
    const answer = await post(
      `${base}${RPC_PATHS.requestVote}`,
      encodeJson({ ...vote, from: "n2" }),
      JSON_TYPE,
      {
        Authorization: `Bearer ${SECRET}`,
      },
    );
    assert.equal(answer.status, 200);
    assert.equal((answer.body as { type: string }).type, "requestVoteResponse");
    assert.equal((answer.body as { granted: boolean }).granted, false);
    assert.ok(encoder.encode(JSON.stringify(answer.body)).length < 200);
  });
});
