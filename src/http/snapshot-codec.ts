/**
 * The wire format of snapshot chunks (InstallSnapshot, §7, thesis §5.3): one chunk per
 * `POST /install-snapshot` as a binary frame (`application/octet-stream`), answered with a JSON
 * {@link SnapshotChunkResponse}.
 *
 * Snapshot chunk frame, version 1. Integers are big-endian; a u64 is two u32 (high, low) and must
 * be at most 2^53 - 1 (Number.MAX_SAFE_INTEGER).
 *
 * ```
 * offset  size  field
 *      0     1  magic/version: 0xB1
 *      1     8  term               u64   the leader's term
 *      9     8  lastIncludedIndex  u64   >= 1
 *     17     8  lastIncludedTerm   u64   1..term
 *     25     8  offset             u64   where `data` starts in the snapshot
 *     33     1  flags              u8    bit 0: done (the last chunk); other bits 0
 *     34     4  membershipLength   u32   at most MAX_SNAPSHOT_MEMBERSHIP_BYTES
 *     38     1  fromLength         u8    then `from`, UTF-8 (1..255 bytes)
 *      …     1  toLength           u8    then `to`, UTF-8 (1..255 bytes)
 *      …        membership               membershipLength bytes: the Membership as UTF-8 JSON
 *      …        data                     the rest of the body: the chunk's bytes (may be empty)
 * ```
 *
 * Decoded `data` is a view into the frame (no copy): the caller must not reuse the frame's memory.
 */
import type { Membership } from "../core/types.ts";
import type { SnapshotChunk, SnapshotChunkResponse } from "../net/network.ts";
import { checkFrameVersion, encodeId, getU64, readIds, setU64, writeIds } from "./frame.ts";
import { MAX_ID_BYTES, parseSnapshotChunkResponse, validateSnapshotChunk } from "./schemas.ts";
import { WireError } from "./wire-error.ts";

/** First byte of a snapshot chunk frame: the frame format and its version. */
export const SNAPSHOT_CHUNK_FRAME_VERSION: number = 0xb1;

/** The route snapshot chunks are posted to, under the mount point of `raftRoutes`. */
export const INSTALL_SNAPSHOT_PATH: string = "/install-snapshot";

/** Largest membership in a chunk's header, in bytes of JSON. */
export const MAX_SNAPSHOT_MEMBERSHIP_BYTES: number = 1024 * 1024;

/** magic + 4 u64 + flags + membershipLength. */
const FIXED_HEADER_BYTES = 38;
/** The whole header's largest size: the fixed part, two ids with their lengths, a membership. */
export const MAX_SNAPSHOT_HEADER_BYTES: number =
  FIXED_HEADER_BYTES + 2 * (1 + MAX_ID_BYTES) + MAX_SNAPSHOT_MEMBERSHIP_BYTES;

const FLAG_DONE = 1;

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes `chunk` as one frame: the header, then the data (copied once, so the body is a single
 * Uint8Array). Throws a WireError if a number is not an integer in [0, 2^53 - 1], an id is empty
 * or longer than 255 UTF-8 bytes, or the membership's JSON is over MAX_SNAPSHOT_MEMBERSHIP_BYTES.
 */
export function encodeSnapshotChunk(chunk: SnapshotChunk): Uint8Array<ArrayBuffer> {
  const { snapshot, data } = chunk;
  const from = encodeId(snapshot.from, "from");
  const to = encodeId(snapshot.to, "to");
  const membership = encoder.encode(JSON.stringify(snapshot.membership));
  if (membership.length > MAX_SNAPSHOT_MEMBERSHIP_BYTES) {
    throw new WireError(`membership: over ${MAX_SNAPSHOT_MEMBERSHIP_BYTES} bytes of JSON`);
  }
  const headerBytes = FIXED_HEADER_BYTES + 2 + from.length + to.length + membership.length;
  const frame = new Uint8Array(headerBytes + data.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, SNAPSHOT_CHUNK_FRAME_VERSION);
  setU64(view, 1, snapshot.term, "term");
  setU64(view, 9, snapshot.lastIncludedIndex, "lastIncludedIndex");
  setU64(view, 17, snapshot.lastIncludedTerm, "lastIncludedTerm");
  setU64(view, 25, chunk.offset, "offset");
  view.setUint8(33, chunk.done ? FLAG_DONE : 0);
  view.setUint32(34, membership.length);
  frame.set(membership, writeIds(frame, view, FIXED_HEADER_BYTES, from, to));
  frame.set(data, headerBytes);
  return frame;
}

/**
 * Decodes and validates a snapshot chunk frame; `data` is a view into `frame`. Throws a WireError
 * naming the problem: an empty body, an unknown version, a truncated header, an id, membership
 * length or membership that overruns the body, unknown flags, invalid UTF-8, a membership that is
 * not JSON, or anything {@link validateSnapshotChunk} refuses (numbers above 2^53 - 1, an index or
 * term of 0, lastIncludedTerm above term, an invalid membership).
 */
export function decodeSnapshotChunk(frame: Uint8Array): SnapshotChunk {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const end = frame.length;
  checkFrameVersion(view, SNAPSHOT_CHUNK_FRAME_VERSION, "a snapshot chunk frame");
  if (end < FIXED_HEADER_BYTES + 1) {
    throw new WireError(`truncated header: ${end} of ${FIXED_HEADER_BYTES + 1}+ bytes`);
  }
  const flags = view.getUint8(33);
  if ((flags & ~FLAG_DONE) !== 0) {
    throw new WireError(`unknown flags 0x${flags.toString(16).padStart(2, "0")}`);
  }
  const membershipLength = view.getUint32(34);
  if (membershipLength > MAX_SNAPSHOT_MEMBERSHIP_BYTES) {
    throw new WireError(
      `membership length ${membershipLength} is over ${MAX_SNAPSHOT_MEMBERSHIP_BYTES} bytes`,
    );
  }
  const ids = readIds(frame, view, FIXED_HEADER_BYTES, end);
  const { from, to } = ids;
  let at = ids.at;
  if (membershipLength > end - at) {
    throw new WireError(
      `membership length ${membershipLength} overruns the body (${end - at} bytes left)`,
    );
  }
  const membership = parseJson(frame.subarray(at, at + membershipLength));
  at += membershipLength;
  // Numbers are read whole, even above 2^53 - 1: the schema refuses those by name.
  return validateSnapshotChunk({
    snapshot: {
      type: "installSnapshot",
      term: getU64(view, 1),
      from,
      to,
      lastIncludedIndex: getU64(view, 9),
      lastIncludedTerm: getU64(view, 17),
      membership: membership as Membership,
    },
    offset: getU64(view, 25),
    data: frame.subarray(at),
    done: (flags & FLAG_DONE) !== 0,
  });
}

/** Encodes the answer to a chunk as JSON with exactly its fields. */
export function encodeSnapshotChunkResponse(response: SnapshotChunkResponse): string {
  const { answer } = response;
  return JSON.stringify({
    term: response.term,
    from: response.from,
    to: response.to,
    offset: response.offset,
    answer:
      answer === null
        ? null
        : {
            type: answer.type,
            term: answer.term,
            from: answer.from,
            to: answer.to,
            success: answer.success,
            matchIndex: answer.matchIndex,
          },
  });
}

/**
 * Parses and validates the JSON answer to a chunk. Throws a WireError for invalid UTF-8,
 * malformed JSON, or a value that is not exactly a {@link SnapshotChunkResponse}.
 */
export function decodeSnapshotChunkResponse(body: Uint8Array): SnapshotChunkResponse {
  if (body.length === 0) throw new WireError("empty body: expected JSON");
  return parseSnapshotChunkResponse(parseJson(body));
}

function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new WireError("invalid UTF-8 in the JSON");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new WireError("malformed JSON");
  }
}
