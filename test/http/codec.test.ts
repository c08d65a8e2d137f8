import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AppendEntriesRequest, Entry, Membership } from "../../src/core/types.ts";
import {
  APPEND_ENTRIES_FRAME_VERSION,
  decodeAppendEntries,
  decodeJsonRequest,
  decodeJsonResponse,
  encodeAppendEntries,
  encodeJson,
} from "../../src/http/codec.ts";
import { WireError } from "../../src/http/wire-error.ts";
import type { RequestMessage, ResponseMessage } from "../../src/net/network.ts";

const encoder = new TextEncoder();

const membership: Membership = {
  voters: ["n1", "n2", "n3"],
  outgoing: ["n1", "n2"],
  learners: ["l1"],
  addresses: {
    n1: "http://127.0.0.1:7001/raft",
    n2: "http://127.0.0.1:7002/raft",
    n3: "http://127.0.0.1:7003/raft",
    l1: "http://127.0.0.1:7004/raft",
  },
};

function appendEntries(entries: Entry[], overrides: Partial<AppendEntriesRequest> = {}) {
  const prevLogIndex = entries.length > 0 ? (entries[0] as Entry).index - 1 : 41;
  return {
    type: "appendEntries",
    term: 7,
    from: "n1",
    to: "n2",
    prevLogIndex,
    prevLogTerm: 5,
    leaderCommit: 40,
    entries,
    ...overrides,
  } as AppendEntriesRequest;
}

/** Every kind of entry, terms rising from prevLogTerm 5 to the message's term 7. */
function mixedEntries(): Entry[] {
  const { outgoing: _, ...simple } = membership;
  return [
    { index: 42, term: 5, kind: "command", data: encoder.encode("set x 1") },
    { index: 43, term: 6, kind: "blank" },
    { index: 44, term: 6, kind: "membership", membership },
    { index: 45, term: 7, kind: "command", data: new Uint8Array(0) },
    { index: 46, term: 7, kind: "membership", membership: simple },
    { index: 47, term: 7, kind: "command", data: new Uint8Array([0, 255, 128, 1]) },
  ];
}

/** Structural comparison that treats every Uint8Array by its bytes. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function roundTrip(message: AppendEntriesRequest): AppendEntriesRequest {
  const decoded = decodeAppendEntries(encodeAppendEntries(message));
  assert.deepEqual(plain(decoded), plain(message));
  return decoded;
}

/** mulberry32: a seeded PRNG, so a failing fuzz case replays. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function setU64(frame: Uint8Array, at: number, high: number, low: number): void {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(at, high);
  view.setUint32(at + 4, low);
}

function wireError(pattern: RegExp) {
  return (error: unknown) => error instanceof WireError && pattern.test(error.message);
}

describe("AppendEntries frame: round trips", () => {
  it("every entry kind, in one frame", () => {
    const decoded = roundTrip(appendEntries(mixedEntries()));
    assert.equal(decoded.entries.length, 6);
    assert.equal((decoded.entries[1] as Entry).kind, "blank");
    assert.ok(!("data" in (decoded.entries[1] as Entry)));
  });

  it("no entries (a probe)", () => {
    roundTrip(appendEntries([]));
    roundTrip(appendEntries([], { prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, term: 1 }));
  });

  it("a large batch: 10,000 entries and a 1 MiB payload", () => {
    const entries: Entry[] = [];
    for (let i = 0; i < 10_000; i++) {
      entries.push({ index: 1 + i, term: 3, kind: "command", data: encoder.encode(`cmd ${i}`) });
    }
    const big = new Uint8Array(1024 * 1024).map((_, i) => i * 7);
    entries.push({ index: 10_001, term: 3, kind: "command", data: big });
    roundTrip(appendEntries(entries, { prevLogIndex: 0, prevLogTerm: 0, term: 3 }));
  });

  it("numbers up to 2^53 - 1 and non-ASCII ids", () => {
    const max = Number.MAX_SAFE_INTEGER;
    roundTrip(
      appendEntries([{ index: max, term: max, kind: "blank" }], {
        term: max,
        prevLogIndex: max - 1,
        prevLogTerm: max,
        leaderCommit: max,
        from: "nœud-α",
        to: "узел-2",
      }),
    );
    roundTrip(appendEntries([], { from: "x".repeat(255), to: "é".repeat(127) }));
  });

  it("payloads are views into the frame, not copies", () => {
    const frame = encodeAppendEntries(appendEntries(mixedEntries()));
    const entry = decodeAppendEntries(frame).entries[0] as Extract<Entry, { kind: "command" }>;
    assert.equal(entry.data.buffer, frame.buffer);
  });

  it("decodes a frame that is itself a view into a larger buffer", () => {
    const frame = encodeAppendEntries(appendEntries(mixedEntries()));
    const padded = new Uint8Array(frame.length + 20);
    padded.set(frame, 10);
    roundTrip(decodeAppendEntries(padded.subarray(10, 10 + frame.length)));
  });

  it("starts with the version byte", () => {
    assert.equal(encodeAppendEntries(appendEntries([]))[0], APPEND_ENTRIES_FRAME_VERSION);
  });
});

describe("AppendEntries frame: encoding refuses what cannot be sent", () => {
  for (const [name, overrides] of [
    ["a negative term", { term: -1 }],
    ["a non-integer prevLogIndex", { prevLogIndex: 1.5 }],
    ["a leaderCommit above 2^53 - 1", { leaderCommit: 2 ** 53 }],
    ["NaN", { prevLogTerm: Number.NaN }],
    ["an empty from", { from: "" }],
    ["a 256-byte to", { to: "x".repeat(256) }],
  ] as const) {
    it(name, () => {
      assert.throws(() => encodeAppendEntries(appendEntries([], overrides)), WireError);
    });
  }
});

describe("AppendEntries frame: decoding refuses malformed frames", () => {
  const valid = () => encodeAppendEntries(appendEntries(mixedEntries()));
  /** Offset of the first entry in a frame from "n1" to "n2". */
  const firstEntry = 38 + 2 + 1 + 2;

  it("an empty body", () => {
    assert.throws(() => decodeAppendEntries(new Uint8Array(0)), wireError(/empty body/));
  });

  it("an unknown version byte", () => {
    const frame = valid();
    frame[0] = 0x7b; // "{": JSON sent to the binary route
    assert.throws(() => decodeAppendEntries(frame), wireError(/unknown frame version 0x7b/));
  });

  it("a truncated header", () => {
    assert.throws(
      () => decodeAppendEntries(valid().subarray(0, 20)),
      wireError(/truncated header/),
    );
    assert.throws(
      () => decodeAppendEntries(valid().subarray(0, 39)),
      wireError(/truncated header/),
    );
  });

  it("a truncated entry", () => {
    const frame = valid().subarray(0, firstEntry + 10);
    assert.throws(() => decodeAppendEntries(frame), wireError(/truncated entry|overruns/));
  });

  it("a count that overruns the body", () => {
    const frame = valid();
    new DataView(frame.buffer).setUint32(33, 0xffffffff);
    assert.throws(() => decodeAppendEntries(frame), wireError(/count 4294967295 overruns/));
  });

  it("an entry length that overruns the body", () => {
    const frame = valid();
    new DataView(frame.buffer).setUint32(firstEntry + 17, 1_000_000);
    assert.throws(
      () => decodeAppendEntries(frame),
      wireError(/entries\.0: length 1000000 overruns the body/),
    );
  });

  it("an unknown entry kind", () => {
    const frame = valid();
    frame[firstEntry + 16] = 9;
    assert.throws(() => decodeAppendEntries(frame), wireError(/entries\.0: unknown kind 9/));
  });

  it("a blank entry with a payload", () => {
    const frame = encodeAppendEntries(
      appendEntries([{ index: 42, term: 6, kind: "command", data: new Uint8Array(3) }]),
    );
    frame[firstEntry + 16] = 1;
    assert.throws(() => decodeAppendEntries(frame), wireError(/blank entry with 3 bytes/));
  });

  it("non-contiguous indices", () => {
    const frame = valid();
    setU64(frame, firstEntry, 0, 43); // the first entry claims index 43 after prevLogIndex 41
    assert.throws(() => decodeAppendEntries(frame), wireError(/contiguous/));
  });

  it("entry terms out of order or above the message's term", () => {
    const above = valid();
    setU64(above, firstEntry + 8, 0, 8);
    assert.throws(() => decodeAppendEntries(above), wireError(/entries\.0: term 8 is outside/));
    const below = valid();
    setU64(below, firstEntry + 8, 0, 4);
    assert.throws(() => decodeAppendEntries(below), wireError(/entries\.0: term 4 is outside/));
  });

  it("a prevLogTerm above the term", () => {
    const frame = valid();
    setU64(frame, 17, 0, 8);
    assert.throws(() => decodeAppendEntries(frame), wireError(/prevLogTerm 8 is above term 7/));
  });

  it("numbers above 2^53 - 1", () => {
    const frame = valid();
    setU64(frame, 1, 0x200000, 0);
    assert.throws(() => decodeAppendEntries(frame), wireError(/term: above 2\^53 - 1/));
    const entry = valid();
    setU64(entry, firstEntry, 0xffffffff, 0xffffffff);
    assert.throws(() => decodeAppendEntries(entry), wireError(/entries\.0\.index: above/));
  });

  it("trailing bytes", () => {
    const frame = valid();
    const longer = new Uint8Array(frame.length + 3);
    longer.set(frame);
    assert.throws(() => decodeAppendEntries(longer), wireError(/3 trailing bytes/));
  });

  it("an empty or invalid UTF-8 id", () => {
    const empty = valid();
    empty[37] = 0;
    assert.throws(() => decodeAppendEntries(empty), wireError(/from: empty id/));
    const invalid = valid();
    invalid[38] = 0xff;
    assert.throws(() => decodeAppendEntries(invalid), wireError(/from: invalid UTF-8/));
  });

  it("a membership entry that is not JSON, or not a membership", () => {
    const entry = (bytes: Uint8Array) => {
      const frame = encodeAppendEntries(
        appendEntries([{ index: 42, term: 6, kind: "command", data: bytes }]),
      );
      frame[firstEntry + 16] = 2;
      return frame;
    };
    assert.throws(
      () => decodeAppendEntries(entry(encoder.encode("{voters"))),
      wireError(/entries\.0: membership is not valid UTF-8 JSON/),
    );
    assert.throws(
      () => decodeAppendEntries(entry(new Uint8Array([0x22, 0xff, 0x22]))),
      wireError(/not valid UTF-8 JSON/),
    );
    assert.throws(
      () =>
        decodeAppendEntries(entry(encoder.encode('{"voters":[1],"learners":[],"addresses":{}}'))),
      wireError(/entries\.0: membership\.voters\.0: expected a string/),
    );
    assert.throws(
      () =>
        decodeAppendEntries(
          entry(encoder.encode('{"voters":[],"learners":[],"addresses":{},"extra":1}')),
        ),
      wireError(/membership/),
    );
  });
});

describe("AppendEntries frame: fuzz", () => {
  /** Decoding must give a valid message or throw a WireError; nothing else. */
  function decodeOrWireError(frame: Uint8Array): AppendEntriesRequest | null {
    let message: AppendEntriesRequest;
    try {
      message = decodeAppendEntries(frame);
    } catch (error) {
      if (error instanceof WireError) return null;
      throw error;
    }
    // A decoded message is valid: it encodes again and decodes to the same message.
    assert.deepEqual(plain(decodeAppendEntries(encodeAppendEntries(message))), plain(message));
    return message;
  }

  it("every truncation of a valid frame throws a WireError", () => {
    const frame = encodeAppendEntries(appendEntries(mixedEntries()));
    for (let length = 0; length < frame.length; length++) {
      assert.throws(() => decodeAppendEntries(frame.subarray(0, length)), WireError, `${length}`);
    }
    assert.ok(decodeOrWireError(frame));
  });

  it("random byte flips either decode to a valid message or throw a WireError", () => {
    const random = prng(20240601);
    const original = encodeAppendEntries(appendEntries(mixedEntries()));
    let decoded = 0;
    for (let round = 0; round < 20_000; round++) {
      const frame = original.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(random() * frame.length);
        frame[at] = random() < 0.5 ? Math.floor(random() * 256) : (frame[at] as number) ^ 1;
      }
      const cut = random() < 0.1 ? Math.floor(random() * frame.length) : frame.length;
      if (decodeOrWireError(frame.subarray(0, cut))) decoded++;
    }
    // Flips inside payloads and ids keep a frame valid: both outcomes are exercised.
    assert.ok(decoded > 100 && decoded < 20_000, `${decoded} decoded`);
  });

  it("random bytes after a valid version byte throw a WireError (or decode)", () => {
    const random = prng(7);
    for (let round = 0; round < 5_000; round++) {
      const frame = new Uint8Array(Math.floor(random() * 200));
      for (let i = 0; i < frame.length; i++) frame[i] = Math.floor(random() * 256);
      if (frame.length > 0) frame[0] = APPEND_ENTRIES_FRAME_VERSION;
      decodeOrWireError(frame);
    }
  });
});

describe("JSON messages", () => {
  const requests: RequestMessage[] = [
    { type: "heartbeat", term: 3, from: "n1", to: "n2", leaderCommit: 9, round: 4 },
    {
      type: "requestVote",
      term: 4,
      from: "n3",
      to: "n1",
      preVote: true,
      lastLogIndex: 12,
      lastLogTerm: 3,
      transfer: false,
    },
    { type: "timeoutNow", term: 3, from: "n1", to: "n2" },
  ];
  const responses: ResponseMessage[] = [
    {
      type: "appendEntriesResponse",
      term: 3,
      from: "n2",
      to: "n1",
      success: false,
      matchIndex: 0,
      rejectedIndex: 8,
      conflictTerm: 2,
      conflictIndex: 5,
    },
    { type: "heartbeatResponse", term: 3, from: "n2", to: "n1", round: 4 },
    { type: "requestVoteResponse", term: 4, from: "n1", to: "n3", preVote: true, granted: true },
  ];

  it("every request and response round-trips", () => {
    for (const request of requests) {
      const type = request.type as Exclude<RequestMessage["type"], "appendEntries">;
      const body = encoder.encode(
        encodeJson(request as Exclude<RequestMessage, AppendEntriesRequest>),
      );
      assert.deepEqual(decodeJsonRequest(type, body), request);
    }
    for (const response of responses) {
      assert.deepEqual(
        decodeJsonResponse(response.type, encoder.encode(encodeJson(response))),
        response,
      );
    }
  });

  it("only the message's own fields are sent", () => {
    const withExtra = { ...requests[0], secret: "x" } as unknown as RequestMessage;
    const json = JSON.parse(encodeJson(withExtra as Exclude<RequestMessage, AppendEntriesRequest>));
    assert.deepEqual(Object.keys(json), ["type", "term", "from", "to", "leaderCommit", "round"]);
  });

  const heartbeat = { type: "heartbeat", term: 3, from: "n1", to: "n2", leaderCommit: 9, round: 4 };
  const bad: [string, unknown, RegExp][] = [
    [
      "a negative term",
      { ...heartbeat, term: -1 },
      /heartbeat\.term: expected a non-negative integer/,
    ],
    [
      "a non-integer index",
      { ...heartbeat, leaderCommit: 1.5 },
      /leaderCommit: expected a non-negative integer/,
    ],
    [
      "an unsafe integer",
      { ...heartbeat, round: 2 ** 53 },
      /round: expected a non-negative integer/,
    ],
    ["a string for a number", { ...heartbeat, term: "3" }, /term: expected a number/],
    ["a missing field", { ...heartbeat, round: undefined }, /heartbeat\.round: missing/],
    ["an unknown field", { ...heartbeat, extra: true }, /heartbeat\.extra: unknown field/],
    ["another message type", { ...heartbeat, type: "timeoutNow" }, /type: expected "heartbeat"/],
    ["an empty id", { ...heartbeat, from: "" }, /from: must not be empty/],
    ["an overlong id", { ...heartbeat, to: "x".repeat(256) }, /to: longer than 255 bytes/],
    ["a number for an id", { ...heartbeat, to: 2 }, /to: expected a string/],
    ["an array", [heartbeat], /heartbeat: expected an object/],
    ["null", null, /heartbeat: expected an object/],
  ];
  for (const [name, value, pattern] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => decodeJsonRequest("heartbeat", encoder.encode(JSON.stringify(value))),
        wireError(pattern),
      );
    });
  }

  it("refuses a vote whose flags are not booleans", () => {
    const vote = { ...requests[1], preVote: "true" };
    assert.throws(
      () => decodeJsonRequest("requestVote", encoder.encode(JSON.stringify(vote))),
      wireError(/requestVote\.preVote: expected a boolean/),
    );
  });

  it("refuses malformed JSON, invalid UTF-8 and an empty body", () => {
    assert.throws(
      () => decodeJsonRequest("heartbeat", encoder.encode('{"type":')),
      wireError(/malformed JSON/),
    );
    assert.throws(() => decodeJsonRequest("heartbeat", new Uint8Array([0xff])), wireError(/UTF-8/));
    assert.throws(() => decodeJsonRequest("heartbeat", new Uint8Array(0)), wireError(/empty body/));
  });

  it("refuses a response of the wrong type", () => {
    const body = encoder.encode(encodeJson(responses[1] as ResponseMessage));
    assert.throws(() => decodeJsonResponse("requestVoteResponse", body), wireError(/type/));
  });
});
