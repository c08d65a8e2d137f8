/**
 * What the fuzzers send: mutations of valid bodies, extreme values, random bytes, and raw HTTP
 * requests for what `fetch` will not send (a Content-Length that lies). Every choice comes from a
 * seeded Random, so a failing case replays from its seed and number.
 */
import { connect } from "node:net";
import { Random } from "../sim/random.ts";

export { Random };

/** Bound of every fuzz request: a request that takes longer is a hang, hence a failure. */
export const REQUEST_TIMEOUT_MS = 10_000;

const encoder = new TextEncoder();

export function randomBytes(rng: Random, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.int(0, 255);
  return out;
}

/**
 * A mutation of `valid`: bit flips, a truncation, bytes overwritten, inserted or removed, or a
 * 32-bit field near `lengthOffsets` (length prefixes, counts) set to a huge value.
 */
export function mutate(
  rng: Random,
  valid: Uint8Array,
  lengthOffsets: readonly number[] = [],
): { bytes: Uint8Array<ArrayBuffer>; how: string } {
  const bytes = valid.slice();
  const at = () => rng.int(0, Math.max(0, bytes.length - 1));
  switch (rng.int(0, 6)) {
    case 0: {
      const flips = rng.int(1, 8);
      for (let i = 0; i < flips && bytes.length > 0; i++) bytes[at()] ^= 1 << rng.int(0, 7);
      return { bytes, how: `${flips} bit flips` };
    }
    case 1: {
      const length = rng.int(0, Math.max(0, valid.length - 1));
      return { bytes: bytes.subarray(0, length), how: `truncated to ${length}` };
    }
    case 2: {
      const count = rng.int(1, 4);
      for (let i = 0; i < count && bytes.length > 0; i++) bytes[at()] = rng.int(0, 255);
      return { bytes, how: `${count} bytes overwritten` };
    }
    case 3: {
      const i = at();
      const extra = randomBytes(rng, rng.int(1, 16));
      const out = new Uint8Array(bytes.length + extra.length);
      out.set(bytes.subarray(0, i));
      out.set(extra, i);
      out.set(bytes.subarray(i), i + extra.length);
      return { bytes: out, how: `${extra.length} bytes inserted at ${i}` };
    }
    case 4: {
      const n = Math.min(rng.int(1, 8), bytes.length);
      const i = rng.int(0, bytes.length - n);
      const out = new Uint8Array(bytes.length - n);
      out.set(bytes.subarray(0, i));
      out.set(bytes.subarray(i + n), i);
      return { bytes: out, how: `${n} bytes removed at ${i}` };
    }
    case 5: {
      const candidates = lengthOffsets.filter((o) => o + 4 <= bytes.length);
      if (candidates.length === 0) return { bytes, how: "unchanged" };
      const o = rng.pick(candidates);
      const value = rng.pick([0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff, 0x10000]);
      new DataView(bytes.buffer).setUint32(o, value);
      return { bytes, how: `u32 at ${o} set to ${value}` };
    }
    default: {
      // A u64 (two u32) set to 2^53, 2^64 - 1 or a negative-looking value.
      const o = rng.int(0, Math.max(0, Math.floor((bytes.length - 8) / 8))) * 8 + 1;
      if (o + 8 > bytes.length) return { bytes, how: "unchanged" };
      const view = new DataView(bytes.buffer);
      const [high, low] = rng.pick([
        [0x200000, 0],
        [0xffffffff, 0xffffffff],
        [0x80000000, 0],
        [0x1fffff, 0xffffffff],
      ]);
      view.setUint32(o, high);
      view.setUint32(o + 4, low);
      return { bytes, how: `u64 at ${o} set to ${high}:${low}` };
    }
  }
}

/**
 * JSON texts of extreme or mistyped values, written as raw JSON (some are not representable as JS
 * values: NaN, 1e309). Almost none is valid for any field; `-0` is the number 0, a valid index,
 * which is what the fuzzers' oracle (decoding before sending) is for. The first ten are numbers.
 */
export const EXTREME_JSON: readonly string[] = [
  "-0",
  "-1",
  "-9007199254740991",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e309",
  "-1e309",
  "9007199254740993",
  "9007199254740992",
  "18446744073709551616",
  "1.5",
  "1e-7",
  "0x10",
  '"1"',
  '""',
  "true",
  "null",
  "[]",
  "{}",
  '{"$ne":1}',
  "[1,2,3]",
  `"${"x".repeat(70_000)}"`,
  `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
  `${'{"a":'.repeat(20_000)}1${"}".repeat(20_000)}`,
  `"\\ud800"`,
  '"\\u0000"',
];

/** Ill-formed JSON documents. */
export const BROKEN_JSON: readonly string[] = [
  "",
  " ",
  "{",
  "}",
  "{{}}",
  '{"a":}',
  '{"a":1,}',
  "[",
  "nul",
  "\u0000",
  '{"a":1}{"a":1}',
  '{"type":"heartbeat"',
  "\ufeff{}",
  "[".repeat(100_000),
  `{"a":${"[".repeat(5000)}`,
];

/** A JSON object text with `field` replaced by the raw JSON `raw` (or removed when null). */
export function withField(
  object: Readonly<Record<string, unknown>>,
  field: string,
  raw: string | null,
): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(object)) {
    if (key === field) {
      if (raw !== null) parts.push(`${JSON.stringify(key)}:${raw}`);
    } else parts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
  }
  return `{${parts.join(",")}}`;
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** A fetch bounded by REQUEST_TIMEOUT_MS; the body is always read (to free the connection). */
export async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  try {
    const response = await fetch(url, {
      ...init,
      redirect: "manual",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return { status: response.status, body: await response.text() };
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : "";
    const headers = JSON.stringify(init.headers ?? {}).slice(0, 200);
    throw new Error(
      `${init.method ?? "GET"} ${url.slice(0, 200)} ${headers}: ${String(error)} ${cause}`,
      { cause: error },
    );
  }
}

/**
 * Sends raw bytes on a fresh TCP connection to 127.0.0.1:`port` and answers with the status of
 * the first response, or null if the server closed the connection without one (what a server
 * may do with a request it cannot even parse, or whose body never arrives). `halfClose` ends
 * the writing side after the bytes: a body shorter than its Content-Length then never
 * completes. Rejects after REQUEST_TIMEOUT_MS (a hang).
 */
export function rawRequest(
  port: number,
  bytes: Uint8Array,
  options: { halfClose?: boolean } = {},
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let received = "";
    let settled = false;
    const finish = (status: number | null, error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(status);
    };
    const timer = setTimeout(
      () => finish(null, new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)),
      REQUEST_TIMEOUT_MS,
    );
    socket.on("connect", () => {
      socket.write(bytes);
      if (options.halfClose) socket.end();
    });
    socket.on("data", (chunk: Uint8Array) => {
      received += new TextDecoder("latin1").decode(chunk);
      const line = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      if (line) finish(Number(line[1]));
      else if (received.length > 64 && !received.startsWith("HTTP/")) {
        finish(null, new Error(`not an HTTP answer: ${JSON.stringify(received.slice(0, 64))}`));
      }
    });
    // A reset is a close without an answer, like an orderly one.
    socket.on("error", () => finish(null));
    socket.on("close", () => finish(null));
  });
}

/** An HTTP/1.1 request head with `headers` (CRLF line ends, blank line included). */
export function head(
  method: string,
  path: string,
  headers: Record<string, string>,
): Uint8Array<ArrayBuffer> {
  const lines = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1"];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return encoder.encode(`${lines.join("\r\n")}\r\n\r\n`);
}

export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Runs `tasks` with at most `limit` at a time; rejects with the first failure. */
export async function inParallel(limit: number, tasks: readonly (() => Promise<void>)[]) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}
