import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeSnapshotChunk,
  decodeSnapshotChunkResponse,
  encodeSnapshotChunk,
  encodeSnapshotChunkResponse,
  MAX_SNAPSHOT_MEMBERSHIP_BYTES,
  SNAPSHOT_CHUNK_FRAME_VERSION,
} from "../../src/http/snapshot-codec.ts";
import { WireError } from "../../src/http/wire-error.ts";
import type { SnapshotChunkResponse } from "../../src/net/network.ts";
import { runtime } from "../helpers/runtime.ts";
import { chunkAnswerTo, snapshotChunk, threeNodes } from "./helpers.ts";

const encoder = new TextEncoder();

function bytesOf(length: number, seed: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (i * 31 + seed) & 0xff;
  return data;
}

describe(`snapshot chunk codec on ${runtime}`, () => {
  it("round-trips a chunk: header fields, data as a view, the done flag", () => {
    const data = bytesOf(70_000, 7);
    const chunk = snapshotChunk("n2", 123_456, data, false);
    const frame = encodeSnapshotChunk(chunk);
    assert.equal(frame[0], SNAPSHOT_CHUNK_FRAME_VERSION);
    const decoded = decodeSnapshotChunk(frame);
    assert.deepEqual(decoded.snapshot, chunk.snapshot);
    assert.equal(decoded.offset, 123_456);
    assert.equal(decoded.done, false);
    assert.deepEqual(decoded.data, data);
    assert.equal(decoded.data.buffer, frame.buffer, "the data is a view into the frame");
    assert.equal(frame.length - data.length, decoded.data.byteOffset, "the data ends the frame");
  });

  it("round-trips the last chunk, an empty chunk, a joint membership and large numbers", () => {
    const joint = {
      voters: ["n1", "n2", "n4"],
      outgoing: ["n1", "n2", "n3"],
      learners: ["n5"],
      addresses: { ...threeNodes.addresses, n4: "http://n4/raft", n5: "http://n5/raft" },
    };
    const max = Number.MAX_SAFE_INTEGER;
    for (const chunk of [
      snapshotChunk("n2", 0, new Uint8Array(0), true),
      snapshotChunk("nœud-2", 5, bytesOf(3, 1), true, { membership: joint }),
      snapshotChunk("n2", max, new Uint8Array(0), false, {
        term: max,
        lastIncludedIndex: max,
        lastIncludedTerm: max,
      }),
    ]) {
      const decoded = decodeSnapshotChunk(encodeSnapshotChunk(chunk));
      assert.deepEqual(
        { ...decoded, data: [...decoded.data] },
        { ...chunk, data: [...chunk.data] },
      );
    }
  });

  it("refuses to encode what it could not decode", () => {
    const data = new Uint8Array(1);
    for (const [chunk, pattern] of [
      [snapshotChunk("n2", -1, data, false), /offset: -1 is not an integer/],
      [snapshotChunk("n2", 1.5, data, false), /offset: 1.5 is not an integer/],
      [snapshotChunk("n2", 0, data, false, { term: 2 ** 53 }), /term: .* is not an integer/],
      [snapshotChunk("", 0, data, false), /to: id must be 1..255 UTF-8 bytes/],
      [snapshotChunk("n2", 0, data, false, { from: "x".repeat(256) }), /from: id must be/],
      [
        snapshotChunk("n2", 0, data, false, {
          membership: {
            ...threeNodes,
            addresses: { n1: "x".repeat(MAX_SNAPSHOT_MEMBERSHIP_BYTES) },
          },
        }),
        /membership: over 1048576 bytes of JSON/,
      ],
    ] as const) {
      assert.throws(
        () => encodeSnapshotChunk(chunk),
        (error: unknown) => {
          assert.ok(error instanceof WireError);
          assert.match(error.message, pattern);
          return true;
        },
      );
    }
  });

  describe("answers", () => {
    const chunk = snapshotChunk("n2", 0, bytesOf(10, 0), true);
    const answer = chunkAnswerTo(chunk);

    it("round-trip, with and without the install's answer", () => {
      for (const response of [answer, { ...answer, answer: null }]) {
        const json = encodeSnapshotChunkResponse(response);
        assert.deepEqual(decodeSnapshotChunkResponse(encoder.encode(json)), response);
      }
    });

    it("only the answer's fields are sent", () => {
      const extra = { ...answer, extra: 1 } as SnapshotChunkResponse;
      assert.deepEqual(JSON.parse(encodeSnapshotChunkResponse(extra)), answer);
    });

    const valid = JSON.parse(encodeSnapshotChunkResponse(answer)) as Record<string, unknown>;
    const inner = valid.answer as Record<string, unknown>;
    const { offset: _, ...noOffset } = valid;
    const bad: [string, unknown, RegExp][] = [
      ["not an object", [1], /snapshotChunkResponse: expected an object/],
      ["a negative offset", { ...valid, offset: -1 }, /offset: expected an integer in \[0, 2\^53/],
      ["a string term", { ...valid, term: "3" }, /term: expected a number/],
      ["a missing offset", noOffset, /offset: missing/],
      ["an unknown field", { ...valid, extra: true }, /extra: unknown field/],
      ["an empty id", { ...valid, from: "" }, /from: must not be empty/],
      ["an answer of another type", { ...valid, answer: { ...inner, type: "x" } }, /answer.type/],
      ["an answer that is not an object", { ...valid, answer: 1 }, /answer/],
      [
        "an answer from another node",
        { ...valid, answer: { ...inner, from: "n3" } },
        /answer: from n3 to n1, in an answer from n2 to n1/,
      ],
      [
        "an answer with a non-boolean success",
        { ...valid, answer: { ...inner, success: 1 } },
        /answer.success: expected a boolean/,
      ],
    ];
    for (const [name, value, pattern] of bad) {
      it(`refuses ${name}`, () => {
        assert.throws(
          () => decodeSnapshotChunkResponse(encoder.encode(JSON.stringify(value))),
          (error: unknown) => error instanceof WireError && pattern.test(error.message),
        );
      });
    }

    it("refuses an empty body, malformed JSON and invalid UTF-8", () => {
      for (const [body, pattern] of [
        [new Uint8Array(0), /empty body/],
        [encoder.encode("{"), /malformed JSON/],
        [new Uint8Array([0x7b, 0xff]), /UTF-8/],
      ] as const) {
        assert.throws(
          () => decodeSnapshotChunkResponse(body),
          (error: unknown) => error instanceof WireError && pattern.test(error.message),
        );
      }
    });
  });
});
