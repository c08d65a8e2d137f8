import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import type { Server } from "../../adapters/server.ts";
import { Raft } from "../../src/driver/raft.ts";
import { encodeAppendEntries } from "../../src/http/codec.ts";
import { raftRoutes } from "../../src/http/routes.ts";
import { encodeSnapshotChunk, INSTALL_SNAPSHOT_PATH } from "../../src/http/snapshot-codec.ts";
import { MemoryNetwork } from "../../src/net/memory.ts";
import { MemoryLogStore } from "../../src/storage/memory.ts";
import { MemorySnapshotStore } from "../../src/storage/memory-snapshot.ts";
import { RecordingStateMachine, testConfig, waitMs } from "../driver/harness.ts";
import { loadAdapter, runtime } from "../helpers/runtime.ts";
import {
  appendEntries,
  type Body,
  chunkAnswerTo,
  endlessBody,
  errorOf,
  post,
  RecordingHandler,
  SECRET,
  serveMounts,
  snapshotChunk,
  threeNodes,
} from "./helpers.ts";

const OCTET = "application/octet-stream";
const encoder = new TextEncoder();

/** Offsets in a frame from "n1" to "n2": header fields, ids, then the membership. */
const FLAGS = 33;
const MEMBERSHIP_LENGTH = 34;
const FROM_LENGTH = 38;
const FROM = 39;
const TO_LENGTH = 41;
const TO = 42;
const MEMBERSHIP = 44;

function bytesOf(length: number, seed: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (i * 13 + seed) & 0xff;
  return data;
}

/** A valid frame to `to`, with 100 bytes of data. */
function frame(to = "n2", overrides: Parameters<typeof snapshotChunk>[4] = {}): Uint8Array {
  return encodeSnapshotChunk(snapshotChunk(to, 0, bytesOf(100, 1), false, overrides));
}

function edit(f: Uint8Array, change: (view: DataView, f: Uint8Array) => void): Uint8Array {
  change(new DataView(f.buffer, f.byteOffset, f.byteLength), f);
  return f;
}

function setU64(f: Uint8Array, at: number, high: number, low: number): Uint8Array {
  return edit(f, (view) => {
    view.setUint32(at, high);
    view.setUint32(at + 4, low);
  });
}

/** A frame whose membership JSON is `json` (the length field follows). */
function withMembership(json: string): Uint8Array {
  const f = frame();
  const length = new DataView(f.buffer).getUint32(MEMBERSHIP_LENGTH);
  const replacement = encoder.encode(json);
  const out = new Uint8Array(f.length - length + replacement.length);
  out.set(f.subarray(0, MEMBERSHIP));
  out.set(replacement, MEMBERSHIP);
  out.set(f.subarray(MEMBERSHIP + length), MEMBERSHIP + replacement.length);
  new DataView(out.buffer).setUint32(MEMBERSHIP_LENGTH, replacement.length);
  return out;
}

interface BadCase {
  readonly name: string;
  readonly body: () => Body;
  readonly contentType?: string;
  readonly error: RegExp;
}

/** Malformed chunks for the node n2: each is a 400 naming the problem. */
const badChunks: BadCase[] = [
  {
    name: "JSON content type",
    body: frame,
    contentType: "application/json",
    error: /expected Content-Type application\/octet-stream, got application\/json/,
  },
  {
    name: "no content type",
    body: frame,
    contentType: "",
    error: /expected Content-Type application\/octet-stream, got none/,
  },
  {
    name: "empty body",
    body: () => new Uint8Array(0),
    error: /empty body: expected a snapshot chunk frame/,
  },
  {
    name: "an AppendEntries frame",
    body: () => encodeAppendEntries(appendEntries("n2", 1, 1)),
    error: /unknown frame version 0xa1/,
  },
  { name: "JSON", body: () => '{"term":1}', error: /unknown frame version 0x7b/ },
  {
    name: "truncated header",
    body: () => frame().subarray(0, 30),
    error: /truncated header: 30 of 39\+ bytes/,
  },
  {
    name: "unknown flags",
    body: () =>
      edit(frame(), (_, f) => {
        f[FLAGS] = 0x03;
      }),
    error: /unknown flags 0x03/,
  },
  {
    name: "from overrunning the body",
    body: () => frame().subarray(0, FROM + 1),
    error: /from overruns the body/,
  },
  {
    name: "to overrunning the body",
    body: () => frame().subarray(0, TO + 1),
    error: /to overruns the body/,
  },
  {
    name: "empty from",
    body: () => edit(frame(), (view) => view.setUint8(FROM_LENGTH, 0)),
    error: /from: empty id/,
  },
  {
    name: "empty to",
    body: () => edit(frame(), (view) => view.setUint8(TO_LENGTH, 0)),
    error: /to: empty id/,
  },
  {
    name: "invalid UTF-8 in to",
    body: () =>
      edit(frame(), (_, f) => {
        f[TO] = 0xff;
      }),
    error: /to: invalid UTF-8/,
  },
  {
    name: "membership length overrunning the body",
    body: () => frame().subarray(0, MEMBERSHIP + 10),
    error: /membership length \d+ overruns the body \(10 bytes left\)/,
  },
  {
    name: "membership length over the limit",
    body: () => edit(frame(), (view) => view.setUint32(MEMBERSHIP_LENGTH, 0xffffffff)),
    error: /membership length 4294967295 is over 1048576 bytes/,
  },
  { name: "membership not JSON", body: () => withMembership("{voters"), error: /malformed JSON/ },
  {
    name: "membership not UTF-8",
    body: () =>
      edit(frame(), (_, f) => {
        f[MEMBERSHIP + 1] = 0xff;
      }),
    error: /invalid UTF-8/,
  },
  {
    name: "membership of the wrong shape",
    body: () => withMembership('{"voters":"n1","learners":[],"addresses":{}}'),
    error: /snapshotChunk\.snapshot\.membership\.voters: expected an array/,
  },
  {
    name: "membership with an unknown field",
    body: () => withMembership('{"voters":[],"learners":[],"addresses":{},"x":1}'),
    error: /membership\.x: unknown field/,
  },
  {
    name: "membership missing a field",
    body: () => withMembership('{"voters":[],"learners":[]}'),
    error: /membership\.addresses: missing/,
  },
  {
    name: "membership that is an array",
    body: () => withMembership("[]"),
    error: /membership: expected an object/,
  },
  {
    name: "term above 2^53 - 1",
    body: () => setU64(frame(), 1, 0xffffffff, 0),
    error: /snapshotChunk\.snapshot\.term: expected an integer in \[0, 2\^53 - 1\]/,
  },
  {
    name: "lastIncludedIndex 0",
    body: () => setU64(frame(), 9, 0, 0),
    error: /lastIncludedIndex: expected a positive integer/,
  },
  {
    name: "lastIncludedTerm 0",
    body: () => setU64(frame(), 17, 0, 0),
    error: /lastIncludedTerm: expected a positive integer/,
  },
  {
    name: "lastIncludedTerm above term",
    body: () => setU64(frame(), 17, 0, 4),
    error: /lastIncludedTerm 4 is above term 3/,
  },
  {
    name: "offset above 2^53 - 1",
    body: () => setU64(frame(), 25, 0x200000, 0),
    error: /snapshotChunk\.offset: expected an integer in \[0, 2\^53 - 1\]/,
  },
  {
    name: "chunk ending above 2^53 - 1",
    body: () => setU64(frame(), 25, 0x1fffff, 0xffffffff),
    error: /offset \+ data length is above 2\^53 - 1/,
  },
  {
    name: "addressed to another node",
    body: () => frame("n3"),
    error: /message for n3 sent to n2/,
  },
];

describe(`POST ${INSTALL_SNAPSHOT_PATH} on ${runtime}`, () => {
  const handler = new RecordingHandler("n2");
  let server: Server;
  let base: string;

  before(async () => {
    ({ server, base } = await serveMounts(handler, { maxSnapshotChunkBytes: 1000 }));
  });

  after(async () => {
    await server.close();
  });

  const url = (mount: string) => `${base}/${mount}${INSTALL_SNAPSHOT_PATH}`;

  it("a valid chunk reaches the handler, whose answer comes back as JSON", async () => {
    const lastChunk = snapshotChunk("n2", 5000, bytesOf(2000, 4), true);
    const chunks = [snapshotChunk("n2", 0, bytesOf(5000, 3), false), lastChunk];
    for (const chunk of chunks) {
      const answer = await post(url("open"), encodeSnapshotChunk(chunk), OCTET);
      assert.equal(answer.status, 200, errorOf(answer));
      assert.deepEqual(answer.body, chunkAnswerTo(chunk));
    }
    assert.equal(handler.chunks.length, 2);
    for (let i = 0; i < chunks.length; i++) {
      const [sent, received] = [chunks[i], handler.chunks[i]];
      assert.deepEqual(received?.snapshot, sent?.snapshot);
      assert.equal(received?.offset, sent?.offset);
      assert.equal(received?.done, sent?.done);
      assert.deepEqual(received?.data, sent?.data);
    }
    const last = (await post(url("open"), encodeSnapshotChunk(lastChunk), OCTET)).body as {
      answer: { type: string; matchIndex: number };
    };
    assert.equal(last.answer.type, "installSnapshotResponse");
    assert.equal(last.answer.matchIndex, 100);
    assert.equal(handler.calls.length, 0, "chunks do not go through handle()");
    handler.chunks.length = 0;
  });

  describe("malformed chunks: 400 naming the problem, and the handler untouched", () => {
    for (const c of badChunks) {
      it(c.name, async () => {
        const answer = await post(url("open"), c.body(), c.contentType ?? OCTET);
        assert.equal(answer.status, 400, errorOf(answer));
        assert.match(errorOf(answer), c.error);
        assert.ok(errorOf(answer).length < 200, "a short message");
        assert.equal(handler.chunks.length, 0, "nothing reached the handler");
      });
    }
  });

  describe("size: 413 over maxSnapshotChunkBytes, without buffering the body", () => {
    it("data over the limit (the header does not count)", async () => {
      const at = encodeSnapshotChunk(snapshotChunk("n2", 0, bytesOf(1000, 0), false));
      assert.equal((await post(url("small"), at, OCTET)).status, 200);
      const over = encodeSnapshotChunk(snapshotChunk("n2", 0, bytesOf(1001, 0), false));
      const answer = await post(url("small"), over, OCTET);
      assert.equal(answer.status, 413);
      assert.match(errorOf(answer), /snapshot chunk of 1001 bytes is over the limit of 1000/);
      assert.equal(handler.chunks.length, 1);
      handler.chunks.length = 0;
    });

    it("a Content-Length over the limit and the largest header", async () => {
      const answer = await post(url("small"), new Uint8Array(2 * 1024 * 1024), OCTET);
      assert.equal(answer.status, 413);
      assert.match(errorOf(answer), /body of 2097152 bytes is over the limit of \d+/);
      assert.equal(handler.chunks.length, 0);
    });

    it("a streamed body (no Content-Length) is cut off at the limit", async () => {
      const { stream, sent } = endlessBody(4096, 0xb1, 256 * 1024 * 1024);
      const answer = await post(url("small"), stream, OCTET);
      assert.equal(answer.status, 413);
      assert.match(errorOf(answer), /body is over the limit of \d+ bytes/);
      assert.ok(sent() < 256 * 1024 * 1024, "the server stopped reading early");
      assert.equal(handler.chunks.length, 0);
    });
  });

  describe("authentication", () => {
    const chunk = () => encodeSnapshotChunk(snapshotChunk("n2", 0, bytesOf(10, 0), true));
    for (const [name, headers] of [
      ["no Authorization header", {}],
      ["a wrong secret", { Authorization: "Bearer nope" }],
      ["another scheme", { Authorization: `Basic ${SECRET}` }],
    ] as [string, Record<string, string>][]) {
      it(`${name}: 401, and nothing reaches the handler`, async () => {
        const answer = await post(url("secure"), chunk(), OCTET, headers);
        assert.equal(answer.status, 401);
        assert.match(errorOf(answer), /missing or wrong cluster secret/);
        assert.equal(handler.chunks.length, 0);
      });
    }

    it("is checked before the body: a malformed chunk without the secret is a 401", async () => {
      assert.equal((await post(url("secure"), "{bad", OCTET)).status, 401);
      assert.equal(handler.chunks.length, 0);
    });

    it("the right secret: 200", async () => {
      const answer = await post(url("secure"), chunk(), OCTET, {
        Authorization: `Bearer ${SECRET}`,
      });
      assert.equal(answer.status, 200);
      assert.equal(handler.chunks.length, 1);
      handler.chunks.length = 0;
    });

    it("a non-positive chunk limit is refused when the routes are built", () => {
      for (const limit of [0, -1, 1.5]) {
        assert.throws(() => raftRoutes(handler, { maxSnapshotChunkBytes: limit }), RangeError);
      }
    });
  });

  describe("a node that is not running: 503", () => {
    it("a handler that refuses (the node stopped)", async () => {
      const down = new RecordingHandler("n2");
      down.down = new Error("the node has stopped: disk full");
      const app = new Hono();
      app.route("/raft", raftRoutes(down));
      const answer = await app.request(`/raft${INSTALL_SNAPSHOT_PATH}`, {
        method: "POST",
        headers: { "Content-Type": OCTET },
        body: frame() as Uint8Array<ArrayBuffer>,
      });
      assert.equal(answer.status, 503);
      assert.match(
        ((await answer.json()) as { error: string }).error,
        /node unavailable: the node has stopped: disk full/,
      );
    });

    for (const [name, mount, pattern] of [
      ["not started", "unstarted", /node unavailable: the node has not been started/],
      ["shut down", "stopped", /node unavailable: the node has shut down/],
    ] as const) {
      it(`a Raft node ${name}`, async () => {
        const answer = await post(url(mount), frame(), OCTET);
        assert.equal(answer.status, 503);
        assert.match(errorOf(answer), pattern);
      });
    }
  });
});

describe(`POST ${INSTALL_SNAPSHOT_PATH} on ${runtime} in front of a real Raft node`, () => {
  const machine = new RecordingStateMachine();
  const snapshots = new MemorySnapshotStore();
  const raft = new Raft({
    id: "n2",
    config: testConfig,
    logStore: new MemoryLogStore(),
    snapshotStore: snapshots,
    stateMachine: machine,
    network: new MemoryNetwork().endpoint("n2"),
  });
  let server: Server;
  let url = "";
  const auth = { Authorization: `Bearer ${SECRET}` };
  /** The leader's state: three commands, as RecordingStateMachine's snapshot lines. */
  const state = encoder.encode(['"a"', '"b"', '"c"'].map((line) => `${line}\n`).join(""));

  before(async () => {
    const { serve } = await loadAdapter();
    // Started, never initialized: a new node waiting for a leader.
    await raft.start();
    const app = new Hono();
    app.route("/raft", raftRoutes(raft, { secret: SECRET }));
    server = await serve(app, { hostname: "127.0.0.1", port: 0 });
    url = `http://127.0.0.1:${server.port}/raft${INSTALL_SNAPSHOT_PATH}`;
  });

  after(async () => {
    await server.close();
    await raft.shutdown();
  });

  function observable() {
    const m = raft.metrics.current;
    return {
      term: m.term,
      lastLogIndex: m.lastLogIndex,
      lastApplied: m.lastApplied,
      snapshotIndex: m.snapshotIndex,
      membership: m.membership,
      stopped: m.stopped,
      applied: [...machine.applied],
    };
  }

  it("malformed chunks, and chunks without the secret, change nothing", async () => {
    const before = observable();
    for (const c of badChunks) {
      const answer = await post(url, c.body(), c.contentType ?? OCTET, auth);
      assert.equal(answer.status, 400, `${c.name}: ${errorOf(answer)}`);
    }
    const valid = encodeSnapshotChunk(snapshotChunk("n2", 0, state, true));
    for (const headers of [{}, { Authorization: "Bearer wrong" }] as Record<string, string>[]) {
      assert.equal((await post(url, valid, OCTET, headers)).status, 401);
    }
    assert.deepEqual(observable(), before);
    assert.equal(await snapshots.current(), null, "no snapshot was installed");
  });

  it("a snapshot sent in chunks is written aside, then installed with the last one", async () => {
    const cut = 5;
    const first = snapshotChunk("n2", 0, state.subarray(0, cut), false);
    const last = snapshotChunk("n2", cut, state.subarray(cut), true);
    // Until the install the node's term is its own: the core sees the snapshot only at the end.
    const term = raft.metrics.current.term;
    assert.equal(term, 0);
    // The sender opens with an empty chunk to learn how much the follower holds.
    const opening = await post(
      url,
      encodeSnapshotChunk(snapshotChunk("n2", 0, new Uint8Array(0), false)),
      OCTET,
      auth,
    );
    assert.equal(opening.status, 200, errorOf(opening));
    assert.deepEqual(opening.body, { term, from: "n2", to: "n1", offset: 0, answer: null });
    const middle = await post(url, encodeSnapshotChunk(first), OCTET, auth);
    assert.deepEqual(middle.body, { term, from: "n2", to: "n1", offset: cut, answer: null });
    assert.deepEqual(machine.applied, [], "nothing is installed before the last chunk");
    // A chunk past what the follower holds is a gap: it answers where to resume.
    const gap = await post(
      url,
      encodeSnapshotChunk(snapshotChunk("n2", cut + 2, state.subarray(cut + 2), true)),
      OCTET,
      auth,
    );
    assert.equal((gap.body as { offset: number }).offset, cut);
    const final = await post(url, encodeSnapshotChunk(last), OCTET, auth);
    assert.equal(final.status, 200, errorOf(final));
    assert.deepEqual(final.body, {
      term: 3,
      from: "n2",
      to: "n1",
      offset: state.length,
      answer: {
        type: "installSnapshotResponse",
        term: 3,
        from: "n2",
        to: "n1",
        success: true,
        matchIndex: 100,
      },
    });
    await raft.metrics.waitFor((m) => m.lastApplied >= 100, { timeoutMs: waitMs });
    assert.deepEqual(machine.applied, ["a", "b", "c"]);
    assert.deepEqual(machine.restores, [100]);
    const m = raft.metrics.current;
    assert.equal(m.snapshotIndex, 100);
    assert.equal(m.term, 3);
    assert.deepEqual(m.membership.voters, threeNodes.voters);
    assert.equal((await snapshots.current())?.size, state.length);
  });

  it("a chunk from an older term is answered with the node's term and not written", async () => {
    const stale = snapshotChunk("n2", 0, state, true, { term: 2, lastIncludedIndex: 200 });
    const answer = await post(url, encodeSnapshotChunk(stale), OCTET, auth);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { term: 3, from: "n2", to: "n1", offset: 0, answer: null });
    assert.equal(raft.metrics.current.snapshotIndex, 100);
  });
});
