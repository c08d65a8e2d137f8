/**
 * Validation of every message that crosses the wire, with valibot. Nothing reaches the driver
 * (requests, on the server) or the core (responses, on the client) without passing here.
 *
 * The schemas stay private (JSR rejects exported consts without explicit types); the exported
 * functions return typed messages or throw a {@link WireError} naming the first problem, as
 * `<path>: <what was wrong>` (for example `term: expected a non-negative integer`).
 *
 * Checks: objects are strict (unknown keys are refused), every index and term is an integer in
 * [0, 2^53 - 1], node ids are non-empty strings of at most {@link MAX_ID_BYTES} UTF-8 bytes,
 * flags are booleans. AppendEntries must also be internally consistent: entries numbered
 * prevLogIndex + 1, + 2, … and terms that never decrease, never exceed the message's term and
 * never precede prevLogTerm — true of every log a leader can send (§5.3, Log Matching), so a
 * message breaking it is malformed.
 */
import * as v from "valibot";
import type {
  AppendEntriesRequest,
  AppendEntriesResponse,
  Entry,
  HeartbeatRequest,
  HeartbeatResponse,
  InstallSnapshotRequest,
  InstallSnapshotResponse,
  Membership,
  TimeoutNowRequest,
  VoteRequest,
  VoteResponse,
} from "../core/types.ts";
import type {
  RequestMessage,
  ResponseMessage,
  SnapshotChunk,
  SnapshotChunkResponse,
} from "../net/network.ts";
import { WireError } from "./wire-error.ts";

/** Longest node id accepted, in UTF-8 bytes. */
export const MAX_ID_BYTES: number = 255;
/** Longest member address accepted, in UTF-8 bytes. */
export const MAX_ADDRESS_BYTES: number = 2048;
/** Most ids in any one list of a membership (voters, outgoing, learners, addresses). */
export const MAX_MEMBERS: number = 1024;

/** The request types that travel as JSON (AppendEntries has its binary frame). */
export type JsonRequestType = Exclude<RequestMessage["type"], "appendEntries">;

const integer = v.pipe(
  v.number("expected a number"),
  v.safeInteger("expected a non-negative integer"),
  v.minValue(0, "expected a non-negative integer"),
);
const nodeId = v.pipe(
  v.string("expected a string"),
  v.minLength(1, "must not be empty"),
  v.maxBytes(MAX_ID_BYTES, `longer than ${MAX_ID_BYTES} bytes`),
);
const flag = v.boolean("expected a boolean");
const address = v.pipe(
  v.string("expected a string"),
  v.maxBytes(MAX_ADDRESS_BYTES, `longer than ${MAX_ADDRESS_BYTES} bytes`),
);
const ids = v.pipe(
  v.array(nodeId, "expected an array"),
  v.maxLength(MAX_MEMBERS, `more than ${MAX_MEMBERS} members`),
);
const typeTag = <T extends string>(type: T) => v.literal(type, `expected "${type}"`);
const base = { term: integer, from: nodeId, to: nodeId };

const membershipSchema = v.strictObject({
  voters: ids,
  outgoing: v.optional(ids),
  learners: ids,
  addresses: v.pipe(
    v.record(nodeId, address),
    v.check(
      (record) => Object.keys(record).length <= MAX_MEMBERS,
      `more than ${MAX_MEMBERS} members`,
    ),
  ),
});

const appendEntriesHeaderSchema = v.strictObject({
  type: typeTag("appendEntries"),
  ...base,
  prevLogIndex: integer,
  prevLogTerm: integer,
  leaderCommit: integer,
});

const requestSchemas = {
  heartbeat: v.strictObject({
    type: typeTag("heartbeat"),
    ...base,
    leaderCommit: integer,
    round: integer,
  }),
  requestVote: v.strictObject({
    type: typeTag("requestVote"),
    ...base,
    preVote: flag,
    lastLogIndex: integer,
    lastLogTerm: integer,
    transfer: flag,
  }),
  timeoutNow: v.strictObject({ type: typeTag("timeoutNow"), ...base }),
};

const responseSchemas = {
  appendEntriesResponse: v.strictObject({
    type: typeTag("appendEntriesResponse"),
    ...base,
    success: flag,
    matchIndex: integer,
    rejectedIndex: integer,
    conflictTerm: integer,
    conflictIndex: integer,
  }),
  heartbeatResponse: v.strictObject({
    type: typeTag("heartbeatResponse"),
    ...base,
    round: integer,
  }),
  requestVoteResponse: v.strictObject({
    type: typeTag("requestVoteResponse"),
    ...base,
    preVote: flag,
    granted: flag,
  }),
};

// A snapshot chunk's fields (its frame is decoded in snapshot-codec.ts) and the JSON answer.
const u64 = v.pipe(
  v.number("expected a number"),
  v.safeInteger("expected an integer in [0, 2^53 - 1]"),
  v.minValue(0, "expected an integer in [0, 2^53 - 1]"),
);
// A snapshot covers at least entry 1, whose term is at least 1.
const positive = v.pipe(u64, v.minValue(1, "expected a positive integer"));

const installSnapshotSchema = v.strictObject({
  type: typeTag("installSnapshot"),
  term: u64,
  from: nodeId,
  to: nodeId,
  lastIncludedIndex: positive,
  lastIncludedTerm: positive,
  membership: membershipSchema,
});

const snapshotChunkSchema = v.strictObject({
  snapshot: installSnapshotSchema,
  offset: u64,
  data: v.instance(Uint8Array, "expected bytes"),
  done: flag,
});

const installSnapshotResponseSchema = v.strictObject({
  type: typeTag("installSnapshotResponse"),
  term: u64,
  from: nodeId,
  to: nodeId,
  success: flag,
  matchIndex: u64,
});

const snapshotChunkResponseSchema = v.strictObject({
  term: u64,
  from: nodeId,
  to: nodeId,
  offset: u64,
  answer: v.nullable(installSnapshotResponseSchema),
});

// The schemas' outputs are the core's message types, checked here at compile time.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Fits<A, B> = [A] extends [B] ? true : false;
const schemasMatchTypes: [
  Same<v.InferOutput<(typeof requestSchemas)["heartbeat"]>, HeartbeatRequest>,
  Same<v.InferOutput<(typeof requestSchemas)["requestVote"]>, VoteRequest>,
  Same<v.InferOutput<(typeof requestSchemas)["timeoutNow"]>, TimeoutNowRequest>,
  Same<v.InferOutput<(typeof responseSchemas)["appendEntriesResponse"]>, AppendEntriesResponse>,
  Same<v.InferOutput<(typeof responseSchemas)["heartbeatResponse"]>, HeartbeatResponse>,
  Same<v.InferOutput<(typeof responseSchemas)["requestVoteResponse"]>, VoteResponse>,
  Fits<v.InferOutput<typeof membershipSchema>, Membership>,
  Fits<v.InferOutput<typeof installSnapshotSchema>, InstallSnapshotRequest>,
  Same<v.InferOutput<typeof installSnapshotResponseSchema>, InstallSnapshotResponse>,
  Fits<v.InferOutput<typeof snapshotChunkSchema>, SnapshotChunk>,
  Same<v.InferOutput<typeof snapshotChunkResponseSchema>, SnapshotChunkResponse>,
] = [true, true, true, true, true, true, true, true, true, true, true];
void schemasMatchTypes;

/**
 * Runs `schema` on `value` and returns its output, or where and what the first issue is. Object
 * issues are said plainly rather than in valibot's words ("Invalid key: Expected …");
 * `missing(key)` words a missing field.
 */
export function check<S extends v.GenericSchema>(
  schema: S,
  value: unknown,
  missing: (key: string) => string,
): { ok: true; output: v.InferOutput<S> } | { ok: false; path: string | null; problem: string } {
  const result = v.safeParse(schema, value, { abortEarly: true });
  if (result.success) return { ok: true, output: result.output };
  const issue = result.issues[0];
  let problem = issue.message;
  if (issue.type === "strict_object") {
    problem =
      issue.expected === "Object"
        ? "expected an object"
        : issue.expected === "never"
          ? "unknown field"
          : missing(String(issue.expected));
  }
  return { ok: false, path: v.getDotPath(issue), problem };
}

/** Runs `schema` on `value`; throws a WireError naming the first issue. */
function run<S extends v.GenericSchema>(schema: S, value: unknown, what: string): v.InferOutput<S> {
  // valibot takes an array for an object (its keys then seem missing): refuse it plainly.
  if (Array.isArray(value)) throw new WireError(`${what}: expected an object`);
  const result = check(schema, value, () => "missing");
  if (result.ok) return result.output;
  const { path, problem } = result;
  throw new WireError(`${path ? `${what}.${path}` : what}: ${problem}`);
}

/**
 * Validates a parsed JSON request of type `type` (the route it arrived on) and returns it typed.
 * Throws a WireError if it is not exactly such a request.
 */
export function parseRequest(type: JsonRequestType, value: unknown): RequestMessage {
  return run(requestSchemas[type], value, type);
}

/**
 * Validates a parsed JSON response, which must be of type `type` (the answer to the request
 * sent), and returns it typed. Throws a WireError otherwise.
 */
export function parseResponse(type: ResponseMessage["type"], value: unknown): ResponseMessage {
  return run(responseSchemas[type], value, type);
}

/** Validates a membership (the payload of a membership entry). Throws a WireError otherwise. */
export function parseMembership(value: unknown): Membership {
  return run(membershipSchema, value, "membership");
}

/**
 * The validation every decoded snapshot chunk goes through (its frame is read by
 * snapshot-codec.ts): every field by schema, then lastIncludedTerm <= term (the leader's term
 * is at least that of any entry it holds, §5.3) and a chunk end within 2^53 - 1. Returns the
 * chunk; throws a WireError naming the first problem.
 */
export function validateSnapshotChunk(chunk: SnapshotChunk): SnapshotChunk {
  if (Array.isArray(chunk.snapshot?.membership)) {
    throw new WireError("snapshotChunk.snapshot.membership: expected an object");
  }
  const valid = run(snapshotChunkSchema, chunk, "snapshotChunk");
  const { snapshot } = valid;
  if (snapshot.lastIncludedTerm > snapshot.term) {
    throw new WireError(
      `snapshotChunk.snapshot: lastIncludedTerm ${snapshot.lastIncludedTerm} is above term ${snapshot.term}`,
    );
  }
  if (valid.offset + valid.data.length > Number.MAX_SAFE_INTEGER) {
    throw new WireError("snapshotChunk: offset + data length is above 2^53 - 1");
  }
  return chunk;
}

/**
 * Validates a parsed JSON answer to a snapshot chunk and returns it typed. Its `answer`, when
 * present, must come from and go to the same nodes as the answer itself. Throws a WireError.
 */
export function parseSnapshotChunkResponse(value: unknown): SnapshotChunkResponse {
  const response = run(snapshotChunkResponseSchema, value, "snapshotChunkResponse");
  const { answer } = response;
  if (answer !== null && (answer.from !== response.from || answer.to !== response.to)) {
    throw new WireError(
      `snapshotChunkResponse.answer: from ${answer.from} to ${answer.to}, in an answer from ${response.from} to ${response.to}`,
    );
  }
  return response;
}

/**
 * The validation step every decoded AppendEntries goes through: the header fields by schema,
 * then the entries' numbering and terms (see the module comment). The entries' own fields are
 * typed by the decoder that built them (and membership payloads by {@link parseMembership}).
 * Returns the message; throws a WireError naming the first problem.
 */
export function validateAppendEntries(message: AppendEntriesRequest): AppendEntriesRequest {
  const { entries, ...header } = message;
  run(appendEntriesHeaderSchema, header, "appendEntries");
  if (message.prevLogTerm > message.term) {
    throw new WireError(
      `appendEntries: prevLogTerm ${message.prevLogTerm} is above term ${message.term}`,
    );
  }
  let lastTerm = message.prevLogTerm;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Entry;
    const index = message.prevLogIndex + 1 + i;
    if (entry.index !== index) {
      throw new WireError(
        `appendEntries.entries.${i}: index ${entry.index} is not ${index} (indices must be contiguous after prevLogIndex)`,
      );
    }
    if (entry.term < lastTerm || entry.term > message.term) {
      throw new WireError(
        `appendEntries.entries.${i}: term ${entry.term} is outside ${lastTerm}..${message.term}`,
      );
    }
    lastTerm = entry.term;
  }
  return message;
}
