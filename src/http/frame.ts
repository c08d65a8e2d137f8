/**
 * Pieces shared by Keel's binary frames (the AppendEntries frame in codec.ts, the snapshot chunk
 * frame in snapshot-codec.ts): a version byte, big-endian u64 as two u32 (high, low) at most
 * 2^53 - 1, and the `from`/`to` ids, each a u8 length then 1..255 bytes of UTF-8.
 */
import { MAX_ID_BYTES } from "./schemas.ts";
import { WireError } from "./wire-error.ts";

const TWO_32 = 4294967296;
/** Highest high word of a u64 that stays within 2^53 - 1. */
const MAX_HIGH_WORD = 0x1fffff;

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Throws a WireError unless `frame` starts with `version`; `what` names the frame expected. */
export function checkFrameVersion(view: DataView, version: number, what: string): void {
  if (view.byteLength < 1) throw new WireError(`empty body: expected ${what}`);
  const got = view.getUint8(0);
  if (got !== version) {
    throw new WireError(`unknown frame version 0x${got.toString(16).padStart(2, "0")}`);
  }
}

/** Writes `value` as a u64 at `at`; throws a WireError unless it is an integer in [0, 2^53 - 1]. */
export function setU64(view: DataView, at: number, value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new WireError(`${field}: ${value} is not an integer in [0, 2^53 - 1]`);
  }
  const high = Math.floor(value / TWO_32);
  view.setUint32(at, high);
  view.setUint32(at + 4, value - high * TWO_32);
}

/** The u64 at `at`, read whole: above 2^53 - 1 it is not exact (for a schema to refuse). */
export function getU64(view: DataView, at: number): number {
  return view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
}

/** The u64 at `at`, or -1 if it is above 2^53 - 1. */
export function getSafeU64(view: DataView, at: number): number {
  const high = view.getUint32(at);
  if (high > MAX_HIGH_WORD) return -1;
  return high * TWO_32 + view.getUint32(at + 4);
}

/** The UTF-8 bytes of an id; throws a WireError if they are empty or over MAX_ID_BYTES. */
export function encodeId(id: string, field: string): Uint8Array {
  const bytes = encoder.encode(id);
  if (bytes.length === 0 || bytes.length > MAX_ID_BYTES) {
    throw new WireError(`${field}: id must be 1..${MAX_ID_BYTES} UTF-8 bytes`);
  }
  return bytes;
}

/** Writes the ids from {@link encodeId} at `at`, each after its u8 length; returns the end. */
export function writeIds(
  frame: Uint8Array,
  view: DataView,
  at: number,
  from: Uint8Array,
  to: Uint8Array,
): number {
  view.setUint8(at++, from.length);
  frame.set(from, at);
  at += from.length;
  view.setUint8(at++, to.length);
  frame.set(to, at);
  return at + to.length;
}

/**
 * Reads `from` and `to` starting at `at`, within the first `end` bytes; returns them and where
 * they end. Throws a WireError if one overruns the body, is empty or is not UTF-8.
 */
export function readIds(
  frame: Uint8Array,
  view: DataView,
  at: number,
  end: number,
): { from: string; to: string; at: number } {
  const fromLength = view.getUint8(at++);
  if (at + fromLength + 1 > end) throw new WireError("truncated header: from overruns the body");
  const from = decodeId(frame.subarray(at, at + fromLength), "from");
  at += fromLength;
  const toLength = view.getUint8(at++);
  if (at + toLength > end) throw new WireError("truncated header: to overruns the body");
  const to = decodeId(frame.subarray(at, at + toLength), "to");
  return { from, to, at: at + toLength };
}

function decodeId(bytes: Uint8Array, field: string): string {
  if (bytes.length === 0) throw new WireError(`${field}: empty id`);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new WireError(`${field}: invalid UTF-8`);
  }
}
