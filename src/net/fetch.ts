/**
 * A `Network` over plain `fetch` (HTTP/1.1), talking to peers that serve `raftRoutes`. The
 * requests go through a {@link PostFunction}: `fetch` by default, or a runtime's own client.
 *
 * - Addresses are base URLs of the mounted routes, such as `http://10.0.0.2:7001/raft`.
 * - Connections: `fetch` keeps HTTP/1.1 connections alive and reuses them per origin by default
 *   on Node (undici's global pool), Bun and Deno; every response body is read or cancelled so its
 *   connection goes back to the pool.
 * - Every request is bounded by the caller's `timeoutMs`, counted from `send`, reading the answer
 *   included (the request is cancelled then).
 * - With `secret`, every request carries `Authorization: Bearer <secret>`.
 * - Responses are validated (schema, type, sender and addressee) before they are returned.
 *
 * Per-peer order of AppendEntries: at most one AppendEntries request is in flight per peer, so a
 * follower never sees batch n+1 before batch n (short of a timeout, after which the aborted
 * request may still arrive late; Raft is safe under reordering, this only keeps the steady state
 * efficient). AppendEntries sent meanwhile wait in a queue; when the request in flight settles,
 * the queued ones that continue each other (same term and sender, each starting where the
 * previous ends) are merged into one request, up to `maxMergeBytes` of payload. The merged
 * request's answer resolves the first merged caller's promise and the others resolve null: the
 * one answer acknowledges every merged entry, as it does for the driver's own merging. If the
 * merged request fails, every merged caller's promise rejects. A queued call whose timeout runs
 * out before it leaves rejects at that moment. Heartbeats, votes and TimeoutNow never wait behind
 * AppendEntries.
 *
 * Backoff for unreachable peers: a failed request (no connection, timeout, non-2xx status, an
 * invalid answer) starts a failure streak for that address. During a streak, sends fail fast
 * (rejecting on a macrotask with kind "backoff", without touching the network) until a retry time;
 * then one request goes through as a probe while the others keep failing fast. The probe's success
 * ends the streak; its failure doubles the wait, from `backoffInitialMs` up to `backoffMaxMs`. So
 * a dead peer costs one request per interval, not one per heartbeat. The streak is logged once
 * when it starts (warn) and once when it ends (info, with how long it lasted and how many sends
 * failed), never per message.
 *
 * Snapshot chunks (`sendSnapshotChunk`) go to `/install-snapshot` as one binary frame each, on
 * their own: they never wait behind AppendEntries nor hold up heartbeats and votes (each request
 * has its own connection from the pool), and they are never merged. They share the peer's
 * backoff with the other sends, so a chunk failing starts a streak like any request.
 */
import type { AppendEntriesRequest, Entry, NodeId } from "../core/types.ts";
import { decodeJsonResponse, encodeAppendEntries, encodeJson, rpcPath } from "../http/codec.ts";
import {
  decodeSnapshotChunkResponse,
  encodeSnapshotChunk,
  INSTALL_SNAPSHOT_PATH,
} from "../http/snapshot-codec.ts";
import { WireError } from "../http/wire-error.ts";
import type {
  Network,
  RequestMessage,
  ResponseMessage,
  SnapshotChunk,
  SnapshotChunkResponse,
} from "./network.ts";
import {
  type FetchFunction,
  type PendingPost,
  type PostAnswer,
  type PostFunction,
  postWithFetch,
} from "./post.ts";

/** Why a send failed. */
export type TransportErrorKind =
  /** No answer within the caller's timeoutMs. */
  | "timeout"
  /** The request could not be made or the connection failed (refused, reset, DNS, …). */
  | "unreachable"
  /** Failed fast: the peer is in a failure streak and its retry time has not come. */
  | "backoff"
  /** The peer answered with a status other than 200 or 204 (see `status`). */
  | "status"
  /** The peer's answer was not a valid response to the request. */
  | "protocol"
  /** The network was closed. */
  | "closed";

/** The error a {@link FetchNetwork} send rejects with. */
export class TransportError extends Error {
  override name = "TransportError";
  readonly kind: TransportErrorKind;
  /** The HTTP status, for kind "status". */
  readonly status: number | undefined;

  constructor(
    kind: TransportErrorKind,
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.status = options.status;
  }
}

/** Where the transport reports failure streaks; the driver's `Logger` fits. */
export interface TransportLogger {
  /**
   * Records one event (a peer unreachable, reachable again). Called synchronously from a send:
   * it must not throw.
   */
  log(
    level: "debug" | "info" | "warn" | "error",
    message: string,
    fields: Record<string, unknown>,
  ): void;
}

/** Options of a {@link FetchNetwork}. */
export interface FetchNetworkOptions {
  /** Cluster secret, sent as `Authorization: Bearer <secret>` (the routes' `secret`). */
  readonly secret?: string;
  /** Receives one line when a peer's failure streak starts and one when it ends. */
  readonly logger?: TransportLogger;
  /** Wait after a peer's first failure before the next attempt. Default 100 ms. */
  readonly backoffInitialMs?: number;
  /** Longest wait between attempts to a failing peer. Default 2000 ms. */
  readonly backoffMaxMs?: number;
  /**
   * Most payload bytes of queued AppendEntries merged into one request (a single larger
   * AppendEntries is still sent whole). Default 8 MiB.
   */
  readonly maxMergeBytes?: number;
  /** Largest response body accepted, in bytes. Default 1 MiB. */
  readonly maxResponseBytes?: number;
  /**
   * The fetch to use (for example one with a tuned connection pool). Default globalThis.fetch.
   * Ignored when `post` is given.
   */
  readonly fetch?: FetchFunction;
  /**
   * How to make each request, instead of `fetch`. On Node, adapters/node.ts's `createNodePost()`
   * (node:http, no web Response or stream per request) costs the least CPU.
   */
  readonly post?: PostFunction;
}

interface Peer {
  readonly id: NodeId;
  readonly address: string;
  readonly base: string;
  /** An AppendEntries request is in flight. */
  appending: boolean;
  /** AppendEntries waiting for it, in send order. */
  readonly queue: QueuedAppend[];
  /** Failed attempts in the current streak; 0 when the peer is healthy. */
  failures: number;
  /** Before this time (performance.now()) sends fail fast. */
  retryAt: number;
  /** A probe is in flight: other sends fail fast until it settles. */
  probing: boolean;
  streakStart: number;
  failedFast: number;
}

interface QueuedAppend {
  readonly message: AppendEntriesRequest;
  readonly deadline: number;
  readonly resolve: (response: ResponseMessage | null) => void;
  readonly reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const responseTypeOf: Record<RequestMessage["type"], ResponseMessage["type"] | null> = {
  appendEntries: "appendEntriesResponse",
  heartbeat: "heartbeatResponse",
  requestVote: "requestVoteResponse",
  timeoutNow: null,
};

/** A {@link Network} over `fetch`; see the module comment for ordering, timeouts and backoff. */
export class FetchNetwork implements Network {
  readonly #authorization: string | null;
  readonly #logger: TransportLogger | null;
  readonly #backoffInitialMs: number;
  readonly #backoffMaxMs: number;
  readonly #maxMergeBytes: number;
  readonly #maxResponseBytes: number;
  readonly #post: PostFunction;
  readonly #peers = new Map<string, Peer>();
  readonly #inFlight = new Set<PendingPost>();
  #closed = false;

  /** Creates a transport. Throws a RangeError for an empty secret or a non-positive limit. */
  constructor(options: FetchNetworkOptions = {}) {
    if (options.secret === "") throw new RangeError("FetchNetwork: secret must not be empty");
    this.#authorization = options.secret === undefined ? null : `Bearer ${options.secret}`;
    this.#logger = options.logger ?? null;
    this.#backoffInitialMs = positive("backoffInitialMs", options.backoffInitialMs ?? 100);
    this.#backoffMaxMs = positive("backoffMaxMs", options.backoffMaxMs ?? 2000);
    if (this.#backoffMaxMs < this.#backoffInitialMs) {
      throw new RangeError("FetchNetwork: backoffMaxMs is below backoffInitialMs");
    }
    this.#maxMergeBytes = positive("maxMergeBytes", options.maxMergeBytes ?? 8 * 1024 * 1024);
    this.#maxResponseBytes = positive("maxResponseBytes", options.maxResponseBytes ?? 1024 * 1024);
    this.#post = options.post ?? postWithFetch(options.fetch);
  }

  /**
   * Sends `message` to the peer `to` served at `address` (a base URL) and resolves with its
   * validated answer, or null when it had none (204) or when this call's AppendEntries was merged
   * into an earlier caller's request. Rejects with a TransportError: "timeout" after `timeoutMs`,
   * "unreachable", "backoff" (failing fast, see the module comment), "status" for a non-2xx
   * answer, "protocol" for an invalid answer, "closed" after `close()`; with a RangeError for a
   * non-positive timeout; with a WireError for a message that cannot be encoded.
   */
  send(
    to: NodeId,
    address: string,
    message: RequestMessage,
    timeoutMs: number,
  ): Promise<ResponseMessage | null> {
    if (this.#closed) return Promise.reject(closedError());
    if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
      return Promise.reject(
        new RangeError(`send: timeoutMs ${timeoutMs} is not a positive number`),
      );
    }
    const peer = this.#peer(to, address);
    const deadline = performance.now() + timeoutMs;
    if (message.type !== "appendEntries") return this.#exchange(peer, message, deadline);
    return new Promise((resolve, reject) => {
      const call: QueuedAppend = { message, deadline, resolve, reject, timer: undefined };
      if (!peer.appending) {
        this.#dispatch(peer, [call]);
        return;
      }
      call.timer = setTimeout(() => {
        const at = peer.queue.indexOf(call);
        if (at >= 0) peer.queue.splice(at, 1);
        reject(timeoutError(message.type, to, timeoutMs));
      }, timeoutMs);
      peer.queue.push(call);
    });
  }

  /**
   * Sends one snapshot chunk to the peer `to` served at `address` and resolves with its validated
   * answer (schema, sender and addressee). The chunk leaves at once, beside any AppendEntries or
   * other request, as one body (header and data). Rejects like `send`: "timeout" after
   * `timeoutMs` (the follower makes the chunk durable before answering, so leave it time),
   * "unreachable", "backoff", "status", "protocol", "closed"; a RangeError for a non-positive
   * timeout; a WireError for a chunk that cannot be encoded.
   */
  sendSnapshotChunk(
    to: NodeId,
    address: string,
    chunk: SnapshotChunk,
    timeoutMs: number,
  ): Promise<SnapshotChunkResponse> {
    if (this.#closed) return Promise.reject(closedError());
    if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
      return Promise.reject(
        new RangeError(`sendSnapshotChunk: timeoutMs ${timeoutMs} is not a positive number`),
      );
    }
    return this.#sendChunk(this.#peer(to, address), chunk, timeoutMs);
  }

  /**
   * Closes the transport: requests in flight are aborted, queued ones and every later send
   * reject with kind "closed".
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const pending of this.#inFlight) pending.cancel(closedError());
    this.#inFlight.clear();
    for (const peer of this.#peers.values()) {
      for (const call of peer.queue.splice(0)) {
        clearTimeout(call.timer);
        call.reject(closedError());
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // AppendEntries order

  /** Sends `calls` (merged) as the peer's one AppendEntries in flight, then the next ones. */
  #dispatch(peer: Peer, calls: QueuedAppend[]): void {
    peer.appending = true;
    const first = calls[0] as QueuedAppend;
    let message = first.message;
    let deadline = first.deadline;
    if (calls.length > 1) {
      const entries: Entry[] = [];
      let leaderCommit = 0;
      for (const call of calls) {
        for (const entry of call.message.entries) entries.push(entry);
        leaderCommit = Math.max(leaderCommit, call.message.leaderCommit);
        deadline = Math.min(deadline, call.deadline);
      }
      message = { ...first.message, entries, leaderCommit };
    }
    this.#exchange(peer, message, deadline).then(
      (response) => {
        first.resolve(response);
        for (let i = 1; i < calls.length; i++) (calls[i] as QueuedAppend).resolve(null);
        this.#next(peer);
      },
      (error: unknown) => {
        for (const call of calls) call.reject(error);
        this.#next(peer);
      },
    );
  }

  /** Takes the queued AppendEntries that continue each other and dispatches them. */
  #next(peer: Peer): void {
    peer.appending = false;
    const first = peer.queue.shift();
    if (first === undefined) return;
    const calls = [first];
    let bytes = payloadBytes(first.message);
    let last = first.message;
    for (;;) {
      const next = peer.queue[0];
      if (next === undefined || !continues(last, next.message)) break;
      const more = payloadBytes(next.message);
      if (bytes + more > this.#maxMergeBytes) break;
      bytes += more;
      last = next.message;
      calls.push(next);
      peer.queue.shift();
    }
    for (const call of calls) clearTimeout(call.timer);
    this.#dispatch(peer, calls);
  }

  // -------------------------------------------------------------------------------------------
  // One request

  /** One HTTP exchange, through the peer's backoff gate; settles by `deadline`. */
  async #exchange(
    peer: Peer,
    message: RequestMessage,
    deadline: number,
  ): Promise<ResponseMessage | null> {
    if (this.#closed) throw closedError();
    const remainingMs = Math.round(deadline - performance.now());
    if (remainingMs <= 0) {
      throw new TransportError("timeout", `${message.type} to ${peer.id}: timed out while queued`);
    }
    const contentType =
      message.type === "appendEntries" ? "application/octet-stream" : "application/json";
    return this.#gated(
      peer,
      () => (message.type === "appendEntries" ? encodeAppendEntries(message) : encodeJson(message)),
      (body) =>
        this.#request(
          peer,
          message.type,
          rpcPath(message),
          body,
          contentType,
          remainingMs,
          (answer) => this.#answer(peer, message, answer),
        ),
    );
  }

  /** One snapshot chunk, through the peer's backoff gate like any request (never queued). */
  async #sendChunk(
    peer: Peer,
    chunk: SnapshotChunk,
    timeoutMs: number,
  ): Promise<SnapshotChunkResponse> {
    return this.#gated(
      peer,
      () => encodeSnapshotChunk(chunk),
      (body) =>
        this.#request(
          peer,
          `snapshot chunk at ${chunk.offset}`,
          INSTALL_SNAPSHOT_PATH,
          body,
          "application/octet-stream",
          timeoutMs,
          (answer) => this.#chunkAnswer(peer, chunk, answer),
        ),
    );
  }

  /**
   * One request through the peer's backoff gate: fails fast while the peer is backing off, then
   * encodes the body (a message that cannot be encoded is the caller's fault, not the peer's:
   * it counts neither way) and posts it, recording the outcome for the backoff.
   */
  async #gated<T>(
    peer: Peer,
    encode: () => Uint8Array<ArrayBuffer> | string,
    post: (body: Uint8Array<ArrayBuffer> | string) => Promise<T>,
  ): Promise<T> {
    const probe = this.#admit(peer);
    if (probe === null) throw await this.#failFast(peer);
    let body: Uint8Array<ArrayBuffer> | string;
    try {
      body = encode();
    } catch (error) {
      if (probe) peer.probing = false;
      throw error;
    }
    try {
      const response = await post(body);
      this.#succeeded(peer, probe);
      return response;
    } catch (error) {
      if (error instanceof TransportError && error.kind === "closed") throw error;
      this.#failed(peer, probe, error);
      throw error;
    }
  }

  /** The error of a send that fails fast, on a macrotask. */
  async #failFast(peer: Peer): Promise<TransportError> {
    peer.failedFast++;
    // On a macrotask: a caller that retries at once must not starve the event loop.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const waitMs = Math.max(0, Math.ceil(peer.retryAt - performance.now()));
    return new TransportError(
      "backoff",
      `${peer.id} at ${peer.address} is failing (${peer.failures} failed attempts); next attempt in ${waitMs} ms`,
    );
  }

  /** POSTs `body` to the peer's `path` and checks the answer with `read`, within `timeoutMs`. */
  async #request<T>(
    peer: Peer,
    what: string,
    path: string,
    body: Uint8Array<ArrayBuffer> | string,
    contentType: string,
    timeoutMs: number,
    read: (answer: PostAnswer) => T,
  ): Promise<T> {
    const headers: Record<string, string> = { "Content-Type": contentType };
    if (this.#authorization !== null) headers.Authorization = this.#authorization;
    let pending: PendingPost;
    try {
      pending = this.#post({
        url: peer.base + path,
        headers,
        body,
        maxBytes: this.#maxResponseBytes,
      });
    } catch (error) {
      throw unreachable(what, peer, error);
    }
    this.#inFlight.add(pending);
    const timer = setTimeout(
      () => pending.cancel(timeoutError(what, peer.id, timeoutMs)),
      timeoutMs,
    );
    let answer: PostAnswer;
    try {
      answer = await pending.answer;
    } catch (error) {
      if (error instanceof TransportError) throw error;
      throw unreachable(what, peer, error);
    } finally {
      clearTimeout(timer);
      this.#inFlight.delete(pending);
    }
    return read(answer);
  }

  /** Validates the answer to `message`. */
  #answer(peer: Peer, message: RequestMessage, answer: PostAnswer): ResponseMessage | null {
    const expected = responseTypeOf[message.type];
    if (answer.status === 204) return null;
    if (answer.status !== 200) {
      throw new TransportError(
        "status",
        `${message.type} to ${peer.id} at ${peer.address}: HTTP ${answer.status}${errorDetail(answer)}`,
        { status: answer.status },
      );
    }
    const protocolError = (what: string, cause?: unknown) =>
      new TransportError("protocol", `${message.type} to ${peer.id} at ${peer.address}: ${what}`, {
        cause,
      });
    if (expected === null) throw protocolError("expected no answer (204), got 200");
    if (answer.body === null) throw protocolError(`body over ${this.#maxResponseBytes} bytes`);
    let response: ResponseMessage;
    try {
      response = decodeJsonResponse(expected, answer.body);
    } catch (error) {
      throw protocolError(describe(error), error);
    }
    if (response.from !== message.to || response.to !== message.from) {
      throw protocolError(`answer from ${response.from} to ${response.to}`);
    }
    return response;
  }

  /** Validates the answer to a snapshot chunk. */
  #chunkAnswer(peer: Peer, chunk: SnapshotChunk, answer: PostAnswer): SnapshotChunkResponse {
    const what = `snapshot chunk at ${chunk.offset} to ${peer.id} at ${peer.address}`;
    if (answer.status !== 200) {
      throw new TransportError("status", `${what}: HTTP ${answer.status}${errorDetail(answer)}`, {
        status: answer.status,
      });
    }
    if (answer.body === null) {
      throw new TransportError("protocol", `${what}: body over ${this.#maxResponseBytes} bytes`);
    }
    let response: SnapshotChunkResponse;
    try {
      response = decodeSnapshotChunkResponse(answer.body);
    } catch (error) {
      if (error instanceof WireError) {
        throw new TransportError("protocol", `${what}: ${describe(error)}`, { cause: error });
      }
      throw error;
    }
    const { snapshot } = chunk;
    if (response.from !== snapshot.to || response.to !== snapshot.from) {
      throw new TransportError(
        "protocol",
        `${what}: answer from ${response.from} to ${response.to}`,
      );
    }
    return response;
  }

  // -------------------------------------------------------------------------------------------
  // Backoff

  /** Whether a request may go now: false if it must fail fast, else whether it is the probe. */
  #admit(peer: Peer): boolean | null {
    if (peer.failures === 0) return false;
    if (peer.probing || performance.now() < peer.retryAt) return null;
    peer.probing = true;
    return true;
  }

  #succeeded(peer: Peer, probe: boolean): void {
    if (probe) peer.probing = false;
    if (peer.failures === 0) return;
    this.#logger?.log("info", "peer reachable again", {
      peer: peer.id,
      address: peer.address,
      downMs: Math.round(performance.now() - peer.streakStart),
      failedAttempts: peer.failures,
      failedFast: peer.failedFast,
    });
    peer.failures = 0;
    peer.failedFast = 0;
    peer.probing = false;
  }

  #failed(peer: Peer, probe: boolean, error: unknown): void {
    if (probe) peer.probing = false;
    const now = performance.now();
    if (peer.failures === 0) {
      peer.failures = 1;
      peer.failedFast = 0;
      peer.streakStart = now;
      peer.retryAt = now + this.#backoffInitialMs;
      this.#logger?.log("warn", "peer unreachable: backing off", {
        peer: peer.id,
        address: peer.address,
        error: describe(error),
        retryInMs: this.#backoffInitialMs,
      });
      return;
    }
    // A request that left before the streak began says nothing new: only probes move it on.
    if (!probe) return;
    peer.failures++;
    peer.retryAt =
      now + Math.min(this.#backoffMaxMs, this.#backoffInitialMs * 2 ** (peer.failures - 1));
  }

  #peer(id: NodeId, address: string): Peer {
    const key = `${id}\u0000${address}`;
    let peer = this.#peers.get(key);
    if (peer === undefined) {
      peer = {
        id,
        address,
        base: address.endsWith("/") ? address.slice(0, -1) : address,
        appending: false,
        queue: [],
        failures: 0,
        retryAt: 0,
        probing: false,
        streakStart: 0,
        failedFast: 0,
      };
      this.#peers.set(key, peer);
    }
    return peer;
  }
}

/** Whether `next` starts where `previous` ends, in the same term from the same leader. */
function continues(previous: AppendEntriesRequest, next: AppendEntriesRequest): boolean {
  return (
    next.term === previous.term &&
    next.from === previous.from &&
    next.prevLogIndex === previous.prevLogIndex + previous.entries.length
  );
}

function payloadBytes(message: AppendEntriesRequest): number {
  let bytes = 0;
  for (const entry of message.entries) if (entry.kind === "command") bytes += entry.data.length;
  return bytes;
}

/** The `error` of a JSON error answer, or the start of its text; "" if unreadable. */
function errorDetail(answer: PostAnswer): string {
  if (answer.body === null) return "";
  // A non-fatal decoder: bytes that are not UTF-8 become U+FFFD, never an error.
  const text = new TextDecoder().decode(answer.body.subarray(0, 4096));
  try {
    const error = (JSON.parse(text) as { error?: unknown }).error;
    if (typeof error === "string") return `: ${error}`;
  } catch {
    // not JSON: fall through
  }
  return text === "" ? "" : `: ${text.slice(0, 200)}`;
}

function unreachable(what: string, peer: Peer, error: unknown): TransportError {
  return new TransportError(
    "unreachable",
    `${what} to ${peer.id} at ${peer.address} failed: ${describe(error)}`,
    { cause: error },
  );
}

function timeoutError(what: string, to: NodeId, timeoutMs: number): TransportError {
  return new TransportError("timeout", `${what} to ${to}: no answer within ${timeoutMs} ms`);
}

function closedError(): TransportError {
  return new TransportError("closed", "the network was closed");
}

function positive(name: string, value: number): number {
  if (!(value > 0 && Number.isFinite(value))) {
    throw new RangeError(`FetchNetwork: ${name} ${value} is not a positive number`);
  }
  return value;
}

/** An error's message, with its cause's unless the message already says it. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause.message : "";
  return cause === "" || error.message.includes(cause)
    ? error.message
    : `${error.message} (${cause})`;
}
