/**
 * The wire format of Keel's RPCs.
 *
 * AppendEntries requests travel as a compact binary frame (`application/octet-stream`); every
 * other request and every response (AppendEntries responses included) is a small JSON object,
 * the message itself with its `type` (`application/json`). Responses are a few dozen bytes
 * whatever the batch size, so JSON costs nothing measurable there and keeps them readable.
 * InstallSnapshot travels as a stream of chunks with a frame of its own (snapshot-codec.ts).
 *
 * AppendEntries frame, version 1. Integers are big-endian; a u64 is two u32 (high, low) and must
 * be at most 2^53 - 1 (Number.MAX_SAFE_INTEGER).
 *
 * ```
 * offset  size  field
 *      0     1  magic/version: 0xA1
 *      1     8  term            u64
 *      9     8  prevLogIndex    u64
 *     17     8  prevLogTerm     u64
 *     25     8  leaderCommit    u64
 *     33     4  count           u32   number of entries
 *     37     1  fromLength      u8    then `from`, UTF-8 (1..255 bytes)
 *      …     1  toLength        u8    then `to`, UTF-8 (1..255 bytes)
 * then `count` entries, each:
 *      0     8  index           u64
 *      8     8  term            u64
 *     16     1  kind            u8    0 command, 1 blank, 2 membership
 *     17     4  length          u32   then `length` bytes: the command's data; nothing for a
 *                                     blank; the Membership as UTF-8 JSON for a membership
 * ```
 *
 * Nothing may follow the last entry. Decoded command payloads are views into the frame (no copy):
 * the caller must not reuse the frame's memory.
 */
import type { AppendEntriesRequest, Entry, Message } from "../core/types.ts";
import type { RequestMessage, ResponseMessage, SnapshotMessage } from "../net/network.ts";
import { checkFrameVersion, encodeId, getSafeU64, readIds, setU64, writeIds } from "./frame.ts";
import {
  type JsonRequestType,
  parseMembership,
  parseRequest,
  parseResponse,
  validateAppendEntries,
} from "./schemas.ts";
import { WireError } from "./wire-error.ts";

/** First byte of an AppendEntries frame: the frame format and its version. */
export const APPEND_ENTRIES_FRAME_VERSION: number = 0xa1;

const KIND_COMMAND = 0;
const KIND_BLANK = 1;
const KIND_MEMBERSHIP = 2;
/** magic + 4 u64 + count + fromLength. */
const FIXED_HEADER_BYTES = 38;
/** index + term + kind + length. */
const ENTRY_HEADER_BYTES = 21;

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Path of each request's route under the mount point of `raftRoutes`. */
export const RPC_PATHS: Readonly<Record<RequestMessage["type"], string>> = {
  appendEntries: "/append-entries",
  heartbeat: "/heartbeat",
  requestVote: "/request-vote",
  timeoutNow: "/timeout-now",
};

/** PreVote (thesis §9.6) has its own route, so logs and metrics tell it apart from a vote. */
export const PRE_VOTE_PATH = "/pre-vote";

/** The route a request is posted to. */
export function rpcPath(message: RequestMessage): string {
  return message.type === "requestVote" && message.preVote
    ? PRE_VOTE_PATH
    : RPC_PATHS[message.type];
}

// ---------------------------------------------------------------------------------------------
// AppendEntries: binary

/**
 * Encodes an AppendEntries request as one binary frame (layout in the module comment). Throws a
 * WireError if a number is not an integer in [0, 2^53 - 1], an id is empty or longer than 255
 * UTF-8 bytes, an entry's kind is unknown or a payload exceeds 2^32 - 1 bytes.
 */
export function encodeAppendEntries(message: AppendEntriesRequest): Uint8Array<ArrayBuffer> {
  const from = encodeId(message.from, "from");
  const to = encodeId(message.to, "to");
  const { entries } = message;
  const memberships: (Uint8Array | undefined)[] = [];
  let size = FIXED_HEADER_BYTES + from.length + 1 + to.length + entries.length * ENTRY_HEADER_BYTES;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Entry;
    if (entry.kind === "command") {
      size += entry.data.length;
    } else if (entry.kind === "membership") {
      const json = encoder.encode(JSON.stringify(entry.membership));
      memberships[i] = json;
      size += json.length;
    } else if (entry.kind !== "blank") {
      throw new WireError(`entries.${i}: unknown kind ${String((entry as Entry).kind)}`);
    }
  }
  const frame = new Uint8Array(size);
  const view = new DataView(frame.buffer);
  view.setUint8(0, APPEND_ENTRIES_FRAME_VERSION);
  setU64(view, 1, message.term, "term");
  setU64(view, 9, message.prevLogIndex, "prevLogIndex");
  setU64(view, 17, message.prevLogTerm, "prevLogTerm");
  setU64(view, 25, message.leaderCommit, "leaderCommit");
  view.setUint32(33, entries.length);
  let at = writeIds(frame, view, 37, from, to);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Entry;
    setU64(view, at, entry.index, "index");
    setU64(view, at + 8, entry.term, "term");
    let payload: Uint8Array | undefined;
    if (entry.kind === "command") {
      view.setUint8(at + 16, KIND_COMMAND);
      payload = entry.data;
    } else if (entry.kind === "blank") {
      view.setUint8(at + 16, KIND_BLANK);
    } else {
      view.setUint8(at + 16, KIND_MEMBERSHIP);
      payload = memberships[i];
    }
    const length = payload === undefined ? 0 : payload.length;
    if (length > 0xffffffff) throw new WireError(`entries.${i}: payload over 4 GiB`);
    view.setUint32(at + 17, length);
    at += ENTRY_HEADER_BYTES;
    if (payload !== undefined) {
      frame.set(payload, at);
      at += length;
    }
  }
  return frame;
}

/**
 * Decodes and validates an AppendEntries frame. Command payloads are views into `frame`.
 * Throws a WireError naming the problem: a truncated header or entry, a length or count that
 * overruns the body, an unknown version or kind, a number above 2^53 - 1, invalid UTF-8 in an
 * id, invalid JSON or an invalid membership in a membership entry, a blank entry with a payload,
 * trailing bytes, or anything {@link validateAppendEntries} refuses (non-contiguous indices,
 * terms out of order, empty ids).
 */
export function decodeAppendEntries(frame: Uint8Array): AppendEntriesRequest {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const end = frame.length;
  checkFrameVersion(view, APPEND_ENTRIES_FRAME_VERSION, "an AppendEntries frame");
  if (end < FIXED_HEADER_BYTES) {
    throw new WireError(`truncated header: ${end} of ${FIXED_HEADER_BYTES}+ bytes`);
  }
  const term = getSafeU64(view, 1);
  if (term < 0) throw tooLarge("term");
  const prevLogIndex = getSafeU64(view, 9);
  if (prevLogIndex < 0) throw tooLarge("prevLogIndex");
  const prevLogTerm = getSafeU64(view, 17);
  if (prevLogTerm < 0) throw tooLarge("prevLogTerm");
  const leaderCommit = getSafeU64(view, 25);
  if (leaderCommit < 0) throw tooLarge("leaderCommit");
  const count = view.getUint32(33);
  const ids = readIds(frame, view, 37, end);
  const { from, to } = ids;
  let at = ids.at;
  // Check the count against the body before allocating anything for it.
  if (count > (end - at) / ENTRY_HEADER_BYTES) {
    throw new WireError(`count ${count} overruns the body (${end - at} bytes of entries)`);
  }
  const entries: Entry[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (at + ENTRY_HEADER_BYTES > end) throw new WireError(`entries.${i}: truncated entry`);
    const index = getSafeU64(view, at);
    if (index < 0) throw tooLarge(`entries.${i}.index`);
    const entryTerm = getSafeU64(view, at + 8);
    if (entryTerm < 0) throw tooLarge(`entries.${i}.term`);
    const kind = view.getUint8(at + 16);
    const length = view.getUint32(at + 17);
    at += ENTRY_HEADER_BYTES;
    if (length > end - at) {
      throw new WireError(`entries.${i}: length ${length} overruns the body (${end - at} left)`);
    }
    const payload = frame.subarray(at, at + length);
    at += length;
    if (kind === KIND_COMMAND) {
      entries[i] = { index, term: entryTerm, kind: "command", data: payload };
    } else if (kind === KIND_BLANK) {
      if (length !== 0) throw new WireError(`entries.${i}: blank entry with ${length} bytes`);
      entries[i] = { index, term: entryTerm, kind: "blank" };
    } else if (kind === KIND_MEMBERSHIP) {
      entries[i] = {
        index,
        term: entryTerm,
        kind: "membership",
        membership: membership(payload, i),
      };
    } else {
      throw new WireError(`entries.${i}: unknown kind ${kind}`);
    }
  }
  if (at !== end) throw new WireError(`${end - at} trailing bytes after the last entry`);
  return validateAppendEntries({
    type: "appendEntries",
    term,
    from,
    to,
    prevLogIndex,
    prevLogTerm,
    entries,
    leaderCommit,
  });
}

function membership(payload: Uint8Array, i: number) {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(payload));
  } catch {
    throw new WireError(`entries.${i}: membership is not valid UTF-8 JSON`);
  }
  try {
    return parseMembership(value);
  } catch (error) {
    throw new WireError(`entries.${i}: ${(error as Error).message}`);
  }
}

function tooLarge(field: string): WireError {
  return new WireError(`${field}: above 2^53 - 1`);
}

// ---------------------------------------------------------------------------------------------
// Everything else: JSON

/** The fields each JSON message carries, in order: nothing else is sent. */
const jsonFields: Record<
  Exclude<Message["type"], "appendEntries" | SnapshotMessage["type"]>,
  readonly string[]
> = {
  heartbeat: ["type", "term", "from", "to", "leaderCommit", "round"],
  requestVote: ["type", "term", "from", "to", "preVote", "lastLogIndex", "lastLogTerm", "transfer"],
  timeoutNow: ["type", "term", "from", "to"],
  appendEntriesResponse: [
    "type",
    "term",
    "from",
    "to",
    "success",
    "matchIndex",
    "rejectedIndex",
    "conflictTerm",
    "conflictIndex",
  ],
  heartbeatResponse: ["type", "term", "from", "to", "round"],
  requestVoteResponse: ["type", "term", "from", "to", "preVote", "granted"],
};

/**
 * Encodes a JSON message (any request but AppendEntries, or any response) as a JSON string of
 * exactly its wire fields. Throws a WireError for an AppendEntries request or an unknown type.
 */
export function encodeJson(
  message: Exclude<Message, AppendEntriesRequest | SnapshotMessage>,
): string {
  const fields = jsonFields[message.type];
  if (fields === undefined) throw new WireError(`cannot encode ${String(message.type)} as JSON`);
  const record = message as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of fields) out[field] = record[field];
  return JSON.stringify(out);
}

/**
 * Parses and validates a JSON request body that arrived for `type`. Throws a WireError for
 * invalid UTF-8, malformed JSON, or a value that is not exactly such a request.
 */
export function decodeJsonRequest(type: JsonRequestType, body: Uint8Array): RequestMessage {
  return parseRequest(type, parseJson(body));
}

/**
 * Parses and validates a JSON response body, which must be of type `type`. Throws a WireError
 * for invalid UTF-8, malformed JSON, or a value that is not exactly such a response.
 */
export function decodeJsonResponse(
  type: ResponseMessage["type"],
  body: Uint8Array,
): ResponseMessage {
  return parseResponse(type, parseJson(body));
}

function parseJson(body: Uint8Array): unknown {
  if (body.length === 0) throw new WireError("empty body: expected JSON");
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new WireError("body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new WireError("malformed JSON");
  }
}
