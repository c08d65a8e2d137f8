/**
 * Keel's RPC endpoints as a Hono sub-app: `app.route("/raft", raftRoutes(raft, { secret }))`.
 *
 * | route                  | body                                   | answer                      |
 * |------------------------|----------------------------------------|-----------------------------|
 * | POST /append-entries   | AppendEntries frame, octet-stream      | appendEntriesResponse JSON  |
 * | POST /heartbeat        | heartbeat JSON                         | heartbeatResponse JSON      |
 * | POST /request-vote     | requestVote JSON (votes and PreVotes)  | requestVoteResponse JSON    |
 * | POST /timeout-now      | timeoutNow JSON                        | 204                         |
 * | POST /install-snapshot | snapshot chunk frame, octet-stream     | SnapshotChunkResponse JSON  |
 *
 * Statuses: 200 with the encoded answer; 204 when the node has no answer; 400 with
 * `{ "error": "..." }` naming what was wrong (wrong Content-Type, malformed frame or JSON, wrong
 * types, negative or non-integer numbers, missing or unknown fields, lengths that overrun the
 * body, a message addressed to another node); 401 when a secret is set and the request lacks it;
 * 413 for a body over `maxBodyBytes` (a snapshot chunk: data over `maxSnapshotChunkBytes`); 503
 * when the node is not running (not started, shut down or
 * stopped by a failure). Nothing that fails a check reaches the node.
 *
 * Security: without a `secret` (or a TLS-terminating proxy that authenticates peers), anyone who
 * can reach the port can disrupt the cluster: force elections, make the leader step down, or feed
 * followers entries. The secret is a bearer token; it is sent in clear over plain HTTP, so use it
 * on a trusted network or behind TLS.
 */
import { type Context, Hono } from "hono";
import type { NodeId } from "../core/types.ts";
import type {
  RequestMessage,
  ResponseMessage,
  RpcHandler,
  SnapshotChunk,
  SnapshotChunkResponse,
} from "../net/network.ts";
import { BodyTooLargeError, readBody } from "./body.ts";
import {
  decodeAppendEntries,
  decodeJsonRequest,
  encodeJson,
  PRE_VOTE_PATH,
  RPC_PATHS,
} from "./codec.ts";
import {
  decodeSnapshotChunk,
  encodeSnapshotChunkResponse,
  INSTALL_SNAPSHOT_PATH,
  MAX_SNAPSHOT_HEADER_BYTES,
} from "./snapshot-codec.ts";
import { WireError } from "./wire-error.ts";

/** Options of {@link raftRoutes}. */
export interface RaftRoutesOptions {
  /**
   * Shared cluster secret: every request must carry `Authorization: Bearer <secret>` (compared in
   * constant time) or gets a 401. Without it the routes are open to anyone who can reach them.
   */
  readonly secret?: string;
  /** Largest request body accepted, in bytes; larger ones get a 413. Default 64 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * Largest snapshot chunk accepted on `/install-snapshot`, in bytes of data; a larger one gets a
   * 413. The body may add a header of at most MAX_SNAPSHOT_HEADER_BYTES (about 1 MiB, almost all
   * of it room for the membership). Default 16 MiB: above any sender's chunk size, and the most a
   * chunk request buffers.
   */
  readonly maxSnapshotChunkBytes?: number;
}

/**
 * The transport's view of the node. `Raft` fits; `id`, when present, lets the routes refuse a
 * message addressed to another node with a 400 before it reaches the node.
 */
export interface RaftRpcHandler extends RpcHandler {
  readonly id?: NodeId;
}

/** Default {@link RaftRoutesOptions.maxBodyBytes}: 64 MiB. */
export const DEFAULT_MAX_BODY_BYTES: number = 64 * 1024 * 1024;

/** Default {@link RaftRoutesOptions.maxSnapshotChunkBytes}: 16 MiB. */
export const DEFAULT_MAX_SNAPSHOT_CHUNK_BYTES: number = 16 * 1024 * 1024;

const OCTET_STREAM = "application/octet-stream";
const JSON_TYPE = "application/json";
const encoder = new TextEncoder();

/**
 * Returns a Hono app serving the RPC routes for `raft` (see the module comment for routes and
 * statuses). Mount it with `app.route(prefix, raftRoutes(raft))`; the peers' addresses are then
 * `http://host:port<prefix>`. Throws a RangeError if `secret` is empty or `maxBodyBytes` or
 * `maxSnapshotChunkBytes` is not a positive integer.
 */
export function raftRoutes(raft: RaftRpcHandler, options: RaftRoutesOptions = {}): Hono {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new RangeError(`raftRoutes: maxBodyBytes ${maxBodyBytes} is not a positive integer`);
  }
  const maxChunkBytes = options.maxSnapshotChunkBytes ?? DEFAULT_MAX_SNAPSHOT_CHUNK_BYTES;
  if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes <= 0) {
    throw new RangeError(
      `raftRoutes: maxSnapshotChunkBytes ${maxChunkBytes} is not a positive integer`,
    );
  }
  if (options.secret === "") throw new RangeError("raftRoutes: secret must not be empty");
  const secret = options.secret === undefined ? null : encoder.encode(options.secret);

  const app = new Hono();
  app.onError((_error, c) => c.json({ error: "internal error" }, 500));
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
  if (secret !== null) {
    app.use("*", async (c, next) => {
      if (!authorized(c.req.header("authorization"), secret)) {
        c.header("WWW-Authenticate", 'Bearer realm="keel"');
        return c.json({ error: "missing or wrong cluster secret" }, 401);
      }
      await next();
    });
  }

  app.post(INSTALL_SNAPSHOT_PATH, (c) => serveSnapshotChunk(c, raft, maxChunkBytes));
  app.post(RPC_PATHS.appendEntries, (c) =>
    serveRpc(c, raft, maxBodyBytes, OCTET_STREAM, decodeAppendEntries),
  );
  for (const type of ["heartbeat", "timeoutNow"] as const) {
    app.post(RPC_PATHS[type], (c) =>
      serveRpc(c, raft, maxBodyBytes, JSON_TYPE, (body) => decodeJsonRequest(type, body)),
    );
  }
  for (const [path, preVote] of [
    [RPC_PATHS.requestVote, false],
    [PRE_VOTE_PATH, true],
  ] as const) {
    app.post(path, (c) =>
      serveRpc(c, raft, maxBodyBytes, JSON_TYPE, (body) => {
        const request = decodeJsonRequest("requestVote", body);
        if (request.type === "requestVote" && request.preVote !== preVote) {
          throw new WireError(`requestVote.preVote must be ${preVote} on ${path}`);
        }
        return request;
      }),
    );
  }
  return app;
}

async function serveRpc(
  c: Context,
  raft: RaftRpcHandler,
  maxBodyBytes: number,
  contentType: string,
  decode: (body: Uint8Array) => RequestMessage,
): Promise<Response> {
  const body = await requestBody(c, maxBodyBytes, contentType);
  if (body instanceof Response) return body;
  let request: RequestMessage;
  try {
    request = decode(body);
  } catch (error) {
    if (error instanceof WireError) return fail(c, 400, error.message);
    throw error;
  }
  if (raft.id !== undefined && request.to !== raft.id) {
    return fail(c, 400, `message for ${request.to} sent to ${raft.id}`);
  }
  let response: ResponseMessage | null;
  try {
    response = await raft.handle(request);
  } catch (error) {
    // The handler rejects only when the node cannot serve: not started, shut down or stopped.
    return fail(c, 503, `node unavailable: ${error instanceof Error ? error.message : error}`);
  }
  if (response === null) return c.body(null, 204);
  return c.body(encodeJson(response), 200, { "Content-Type": JSON_TYPE });
}

/**
 * One snapshot chunk (§7): the body is read up to `maxChunkBytes` of data plus the largest
 * header, so a chunk request never buffers more than that.
 */
async function serveSnapshotChunk(
  c: Context,
  raft: RaftRpcHandler,
  maxChunkBytes: number,
): Promise<Response> {
  const body = await requestBody(c, maxChunkBytes + MAX_SNAPSHOT_HEADER_BYTES, OCTET_STREAM);
  if (body instanceof Response) return body;
  let chunk: SnapshotChunk;
  try {
    chunk = decodeSnapshotChunk(body);
  } catch (error) {
    if (error instanceof WireError) return fail(c, 400, error.message);
    throw error;
  }
  if (chunk.data.length > maxChunkBytes) {
    return fail(
      c,
      413,
      `snapshot chunk of ${chunk.data.length} bytes is over the limit of ${maxChunkBytes}`,
    );
  }
  if (raft.id !== undefined && chunk.snapshot.to !== raft.id) {
    return fail(c, 400, `message for ${chunk.snapshot.to} sent to ${raft.id}`);
  }
  let response: SnapshotChunkResponse;
  try {
    response = await raft.handleSnapshotChunk(chunk);
  } catch (error) {
    // As for handle: it rejects only when the node cannot serve (not started, stopped).
    return fail(c, 503, `node unavailable: ${error instanceof Error ? error.message : error}`);
  }
  return c.body(encodeSnapshotChunkResponse(response), 200, { "Content-Type": JSON_TYPE });
}

/**
 * The request's body, after checking its Content-Type and its size (the declared one up front,
 * then the bytes read, which stop at `maxBytes`); or the 400 or 413 answer.
 */
async function requestBody(
  c: Context,
  maxBytes: number,
  contentType: string,
): Promise<Uint8Array | Response> {
  const mediaType = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (mediaType !== contentType) {
    return fail(c, 400, `expected Content-Type ${contentType}, got ${mediaType || "none"}`);
  }
  const declared = c.req.header("content-length");
  if (declared !== undefined) {
    if (!/^\d{1,16}$/.test(declared)) return fail(c, 400, "invalid Content-Length");
    if (Number(declared) > maxBytes) {
      return fail(c, 413, `body of ${declared} bytes is over the limit of ${maxBytes}`);
    }
  }
  try {
    // A declared length (checked above) bounds the read: take the whole body at once, which on
    // Node skips building a web Request and its stream (a large share of a follower's CPU).
    if (declared !== undefined) return new Uint8Array(await c.req.arrayBuffer());
    return await readBody(c.req.raw.body, maxBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      return fail(c, 413, `body is over the limit of ${maxBytes} bytes`);
    }
    return fail(c, 400, "could not read the body");
  }
}

function fail(c: Context, status: 400 | 413 | 503, error: string): Response {
  return c.json({ error }, status);
}

/**
 * Whether `header` is `Bearer <secret>`. The token is compared in constant time: the loop runs
 * over the whole secret whatever the token, so timing reveals at most the secret's length.
 */
export function authorized(header: string | undefined, secret: Uint8Array): boolean {
  if (header === undefined || header.length < 7) return false;
  if (header.slice(0, 7).toLowerCase() !== "bearer ") return false;
  const token = encoder.encode(header.slice(7));
  let difference = token.length ^ secret.length;
  for (let i = 0; i < secret.length; i++) {
    difference |= (token[i] ?? 0) ^ (secret[i] as number);
  }
  return difference === 0;
}
