/**
 * The HTTP API of the example key-value service, as one Hono app:
 *
 * | route                   | answer                                                         |
 * |-------------------------|----------------------------------------------------------------|
 * | PUT /kv/{key}           | body: the value (UTF-8) → 200 `{ index }`                      |
 * | GET /kv/{key}           | 200 the value, 404; linearizable (ReadIndex) unless            |
 * |                         | `?consistency=stale`, which reads this node's state            |
 * | DELETE /kv/{key}        | 200 `{ index }`                                                |
 * | POST /kv/{key}/cas      | `{ expected: string|null, value }` → 200 `{ ok: true, index }`, |
 * |                         | 409 `{ ok: false, current }`                                   |
 * | GET /status             | the node's metrics                                             |
 * | GET /, GET /cluster     | the live dashboard and every member's status (dashboard.ts)    |
 * | POST /admin/learners    | `{ id, addr, blocking? }`: add a learner (addr: its base URL)  |
 * | POST /admin/membership  | `{ voters: [id…] | { id: url… }, retain? }`: change the voters |
 * | POST /admin/transfer-leader | `{ to? }`: hand leadership over                            |
 * | GET /admin/status       | metrics with replication progress                              |
 * | POST /admin/snapshot    | take a snapshot of this node now → 200 `{ index }` (compacts) |
 * |                         | (every /admin route is behind the secret; see src/http/admin.ts) |
 * | /raft/…                 | the Raft RPCs (raftRoutes, behind the secret)                  |
 *
 * On a follower, client requests get a 307 to the same path on the leader; with no known leader,
 * 503 `{ error: "no_leader" }` and `Retry-After`. A write that does not commit within the
 * request timeout gets 504 `{ error: "timeout" }` (or `removed`: this node left the cluster): its
 * outcome is unknown. During a leadership transfer writes get 503 `transfer_in_progress` (not
 * appended). Writes carrying `X-Client-Id` and `X-Request-Seq` are applied at most once per
 * (client, seq); a retry returns the first result (see state-machine.ts). Bad requests get 400 (or 413 for a body over the
 * limit) with `{ error }` naming the problem.
 */
import { type Context, Hono } from "hono";
import {
  BackpressureError,
  FatalError,
  LeadershipLostError,
  NotLeaderError,
  RemovedError,
  ShutdownError,
  TimeoutError,
  TransferInProgressError,
} from "../../src/driver/errors.ts";
import type { Raft } from "../../src/driver/raft.ts";
import { ApplyFailure } from "../../src/driver/state-machine.ts";
import { adminRoutes, nodeStatus } from "../../src/http/admin.ts";
import { BodyTooLargeError, readBody } from "../../src/http/body.ts";
import { raftRoutes } from "../../src/http/routes.ts";
import { dashboardRoutes } from "./dashboard.ts";
import {
  decodeResponse,
  encodeCommand,
  type KvCommand,
  type KvResponse,
  type KvStateMachine,
} from "./state-machine.ts";

export interface KvApiOptions {
  /** Cluster secret: guards /raft and /admin. */
  readonly secret?: string;
  /** Longest key, in UTF-8 bytes (default 1024). */
  readonly maxKeyBytes?: number;
  /** Largest request body, in bytes (default 1 MiB). */
  readonly maxBodyBytes?: number;
  /** How long a write or a linearizable read may take before a 504 (default 5000). */
  readonly requestTimeoutMs?: number;
}

/** Where a member's Raft routes are mounted, below its base URL. */
export const RAFT_PATH = "/raft";

const MAX_CLIENT_ID_BYTES = 255;
const RETRY_AFTER_S = "1";

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A request that cannot be served: the status and the message of its `{ error }` body. */
class RequestError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
  }
}

export function kvApp(raft: Raft, machine: KvStateMachine, options: KvApiOptions = {}): Hono {
  const maxKeyBytes = options.maxKeyBytes ?? 1024;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const secret = options.secret;

  const app = new Hono();
  app.onError((error, c) => {
    if (error instanceof RequestError) return c.json({ error: error.message }, error.status);
    return failure(c, error);
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));

  app.route(RAFT_PATH, raftRoutes(raft, { secret }));

  const status = () => {
    const m = nodeStatus(raft.metrics.current);
    return { ...m, membership: { voters: m.membership.voters, learners: m.membership.learners } };
  };
  app.get("/status", (c) => c.json(status()));
  // The dashboard: GET / (the page) and GET /cluster (every member's /status).
  app.route("/", dashboardRoutes(raft, { raftPath: RAFT_PATH, status }));

  app.get("/kv/:key", async (c) => {
    const key = keyOf(c);
    const consistency = c.req.query("consistency");
    if (consistency === "stale") return valueResponse(c, machine.get(key));
    if (consistency !== undefined && consistency !== "linearizable") {
      throw new RequestError(400, "consistency must be 'linearizable' (default) or 'stale'");
    }
    const redirect = notLeader(c);
    if (redirect !== null) return redirect;
    const value = await raft.read(() => machine.get(key), { timeoutMs });
    return valueResponse(c, value);
  });

  app.put("/kv/:key", async (c) => {
    const key = keyOf(c);
    const redirect = notLeader(c);
    if (redirect !== null) return redirect;
    const session = sessionOf(c);
    const value = text(await body(c));
    const response = await write({ op: "put", key, value, ...session });
    if (response.stale) return staleResponse(c);
    return c.json({ index: response.index });
  });

  app.delete("/kv/:key", async (c) => {
    const key = keyOf(c);
    const redirect = notLeader(c);
    if (redirect !== null) return redirect;
    const response = await write({ op: "delete", key, ...sessionOf(c) });
    if (response.stale) return staleResponse(c);
    return c.json({ index: response.index });
  });

  app.post("/kv/:key/cas", async (c) => {
    const key = keyOf(c);
    const redirect = notLeader(c);
    if (redirect !== null) return redirect;
    const session = sessionOf(c);
    const { expected, value } = casBody(text(await body(c)));
    const response = await write({ op: "cas", key, expected, value, ...session });
    if (response.stale) return staleResponse(c);
    if (!response.ok) return c.json({ ok: false, current: response.current ?? null }, 409);
    return c.json({ ok: true, index: response.index });
  });

  // Members are known to users by their base URL; their Raft address adds RAFT_PATH.
  const admin = adminRoutes(raft, {
    secret,
    toRaftAddress: raftAddress,
    fromRaftAddress: (address) =>
      address.endsWith(RAFT_PATH) ? address.slice(0, -RAFT_PATH.length) : address,
  });
  // Any member snapshots its own state and compacts its own log (§7).
  admin.post("/snapshot", async (c) => c.json({ index: await raft.triggerSnapshot() }));
  app.route("/admin", admin);

  /** Replicates `command` within the request timeout and decodes the state machine's answer. */
  async function write(command: KvCommand): Promise<KvResponse> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TimeoutError(`not committed within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const { response } = await Promise.race([raft.write(encodeCommand(command)), timeout]);
      return decodeResponse(response);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The key of the path, checked. */
  function keyOf(c: Context): string {
    const key = c.req.param("key") ?? "";
    if (key === "") throw new RequestError(400, "the key is empty");
    if (encoder.encode(key).length > maxKeyBytes) {
      throw new RequestError(400, `the key is longer than ${maxKeyBytes} bytes`);
    }
    return key;
  }

  /** The request's body, at most maxBodyBytes. */
  async function body(c: Context): Promise<Uint8Array> {
    const length = c.req.header("content-length");
    if (length !== undefined && Number(length) > maxBodyBytes) {
      await c.req.raw.body?.cancel();
      throw new RequestError(413, `the body is larger than ${maxBodyBytes} bytes`);
    }
    try {
      // With a Content-Length (checked above) the server reads exactly that many bytes, so the
      // whole-body read is bounded; on Node it skips building a web Request and its stream,
      // about a fifth of the leader's CPU per write. Chunked bodies stream with the limit.
      if (length !== undefined) return new Uint8Array(await c.req.arrayBuffer());
      return await readBody(c.req.raw.body, maxBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        throw new RequestError(413, `the body is larger than ${maxBodyBytes} bytes`);
      }
      // Shorter than its Content-Length (the client gave up): the request's fault, not a 500.
      throw new RequestError(400, "could not read the body");
    }
  }

  /**
   * On a node that is not the leader: a 307 to the same path and query on the leader, or a 503
   * when no leader is known. Null on the leader.
   */
  function notLeader(c: Context): Response | null {
    const m = raft.metrics.current;
    if (m.role === "leader" && !m.stopped) return null;
    const address = m.leaderId === null ? undefined : m.membership.addresses[m.leaderId];
    return redirectOrUnavailable(c, address ?? null);
  }

  return app;
}

/** 307 to `address`'s node (its Raft address minus /raft) for the same path, or 503. */
function redirectOrUnavailable(c: Context, address: string | null): Response {
  if (address === null) {
    c.header("Retry-After", RETRY_AFTER_S);
    return c.json({ error: "no_leader" }, 503);
  }
  const base = address.endsWith(RAFT_PATH) ? address.slice(0, -RAFT_PATH.length) : address;
  const url = new URL(c.req.url);
  c.header("Location", `${base}${url.pathname}${url.search}`);
  return c.json({ error: "not_leader", leader: base }, 307);
}

/** The answer to a request that failed in the driver. */
function failure(c: Context, error: unknown): Response {
  if (error instanceof NotLeaderError) return redirectOrUnavailable(c, error.leaderAddr);
  if (error instanceof TimeoutError) return c.json({ error: "timeout" }, 504);
  // Removed from the cluster while the write waited: its outcome is unknown, as for a timeout.
  if (error instanceof RemovedError) return c.json({ error: "removed" }, 504);
  if (error instanceof TransferInProgressError) {
    // Not appended: retry shortly, on the new leader.
    c.header("Retry-After", RETRY_AFTER_S);
    return c.json({ error: "transfer_in_progress" }, 503);
  }
  if (error instanceof BackpressureError || error instanceof LeadershipLostError) {
    // Not committed: the client may retry (with the same X-Request-Seq, to be safe).
    c.header("Retry-After", RETRY_AFTER_S);
    const code = error instanceof BackpressureError ? "busy" : "leadership_lost";
    return c.json({ error: code }, 503);
  }
  if (error instanceof ApplyFailure) return c.json({ error: error.message }, 400);
  if (error instanceof ShutdownError || error instanceof FatalError) {
    c.header("Retry-After", RETRY_AFTER_S);
    return c.json({ error: "unavailable" }, 503);
  }
  return c.json({ error: "internal error" }, 500);
}

function valueResponse(c: Context, value: string | undefined): Response {
  if (value === undefined) return c.json({ error: "not_found" }, 404);
  return c.text(value, 200);
}

function staleResponse(c: Context): Response {
  return c.json({ error: "stale_request: X-Request-Seq is older than the client's last" }, 409);
}

/** The exactly-once headers: both or neither. */
function sessionOf(c: Context): { client?: string; seq?: number } {
  const client = c.req.header("x-client-id");
  const seqHeader = c.req.header("x-request-seq");
  if (client === undefined && seqHeader === undefined) return {};
  if (client === undefined || seqHeader === undefined) {
    throw new RequestError(400, "X-Client-Id and X-Request-Seq go together");
  }
  const bytes = encoder.encode(client).length;
  if (bytes === 0 || bytes > MAX_CLIENT_ID_BYTES) {
    throw new RequestError(400, `X-Client-Id must be 1-${MAX_CLIENT_ID_BYTES} bytes`);
  }
  const seq = Number(seqHeader);
  if (!/^[0-9]+$/.test(seqHeader) || !Number.isSafeInteger(seq) || seq < 1) {
    throw new RequestError(400, "X-Request-Seq must be a positive integer");
  }
  return { client, seq };
}

function text(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new RequestError(400, "the body is not UTF-8 text");
  }
}

/** `{ expected: string | null, value: string }`, nothing else. */
function casBody(body: string): { expected: string | null; value: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new RequestError(400, "the body is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new RequestError(400, "the body must be a JSON object { expected, value }");
  }
  const { expected, value, ...rest } = parsed as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new RequestError(400, `unknown field ${unknown[0]}`);
  if (!("expected" in parsed)) throw new RequestError(400, "expected is missing (null: absent)");
  if (expected !== null && typeof expected !== "string") {
    throw new RequestError(400, "expected must be a string or null");
  }
  if (typeof value !== "string") throw new RequestError(400, "value must be a string");
  return { expected, value };
}

/** A member's Raft address from its base URL (`http://host:port`), checked. */
function raftAddress(url: string): string {
  const base = url.replace(/\/+$/, "");
  if (!URL.canParse(base) || !/^https?:$/.test(new URL(base).protocol)) {
    throw new Error("not an http(s) URL");
  }
  return base.endsWith(RAFT_PATH) ? base : `${base}${RAFT_PATH}`;
}
