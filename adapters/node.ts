/**
 * Node adapter: an HTTP server from @hono/node-server, a SQLite LogStore on better-sqlite3, and
 * HTTP clients for peers on node:http: `createNodePost` (FetchNetwork's `post`, the cheapest) and
 * `createNodeFetch` (a `fetch`).
 */
import { Agent, request as httpRequest, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { serve as nodeServe } from "@hono/node-server";
import {
  type FetchFunction,
  type PostAnswer,
  type PostFunction,
  postWithFetch,
} from "../src/net/post.ts";
import type { SqliteDatabase, SqliteLogStoreOptions } from "../src/storage/sqlite.ts";
import { SqliteLogStore } from "../src/storage/sqlite.ts";
import type { FetchApp, ServeOptions, Server } from "./server.ts";
import { walSyncFor } from "./wal-sync.ts";

export type {
  SqliteDatabase,
  SqliteLogStoreOptions,
  SqliteSynchronous,
} from "../src/storage/sqlite.ts";
export { SqliteLogStore } from "../src/storage/sqlite.ts";
export type { FetchApp, ServeOptions, Server } from "./server.ts";

/**
 * Serves `app` on Node's http server (through @hono/node-server); resolves once it listens.
 * Rejects with the server's error when it cannot listen (the port is taken, say).
 */
export function serve(app: FetchApp, options: ServeOptions = {}): Promise<Server> {
  const hostname = options.hostname ?? "127.0.0.1";
  return new Promise((resolve, reject) => {
    const server = nodeServe({ fetch: app.fetch, hostname, port: options.port ?? 0 }, (info) => {
      resolve({
        hostname,
        port: (info as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            // Keep-alive connections would hold the server open: close them too.
            if ("closeAllConnections" in server) server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
    server.once("error", reject);
  });
}

/**
 * Opens (creating it if needed) the SQLite file at `path` with better-sqlite3, which is loaded on
 * first use, and wraps it in the driver interface of {@link SqliteLogStore}. Throws the driver's
 * error when the file cannot be opened.
 */
export async function openSqliteDatabase(path: string): Promise<SqliteDatabase> {
  const { default: Database } = await import("better-sqlite3");
  const db = new Database(path);
  return {
    exec: (sql) => db.exec(sql),
    prepare: (sql) => db.prepare(sql),
    close: () => db.close(),
  };
}

/**
 * Opens a {@link SqliteLogStore} on the file at `path` (created if needed) with better-sqlite3.
 * Rejects with what `openSqliteDatabase` or the SqliteLogStore constructor throws (for example
 * "database is locked" while another store has the file open); the connection is closed then.
 * On Linux the store syncs the WAL off the event loop (`syncWal`, from adapters/wal-sync.ts)
 * unless `options` gives its own `syncWal` (`undefined`: SQLite syncs inside COMMIT).
 */
export async function openSqliteLogStore(
  path: string,
  options: SqliteLogStoreOptions = {},
): Promise<SqliteLogStore> {
  return new SqliteLogStore(await openSqliteDatabase(path), {
    syncWal: walSyncFor(path),
    ...options,
  });
}

/** Options of {@link createNodeFetch} and {@link createNodePost}. */
export interface NodeFetchOptions {
  /** Most connections open at once to one origin (host:port); more requests wait. Default 16. */
  readonly maxSockets?: number;
  /**
   * An idle kept-alive connection is closed after this long. Below the servers' own keep-alive
   * timeout (5 s on Node), so a request does not race the server closing it. Default 4000 ms.
   */
  readonly idleTimeoutMs?: number;
}

/** A `fetch` for `FetchNetwork`'s `fetch` option, with its own connection pool. */
export interface NodeFetch extends FetchFunction {
  /** Closes the pool's connections (requests in flight fail). */
  close(): void;
}

/**
 * A `fetch` on node:http with a keep-alive connection pool, for `new FetchNetwork({ fetch })` on
 * Node: undici's global fetch costs the cluster 1.2–1.5× more CPU per write (bench/README.md).
 *
 * It does what FetchNetwork needs of fetch, like fetch: sends the method, headers and a string
 * or byte body (with Content-Length), resolves with a `Response` once the status and headers
 * arrive, its body streaming the answer (cancelling it closes the connection); `init.signal`
 * aborts the request or the body being read, rejecting with the signal's reason; a failed
 * connection rejects with a TypeError whose cause is the socket's error. Unlike fetch it does not
 * follow redirects (a 3xx is returned as is). Other URLs (https) and bodies (streams, forms,
 * blobs) go to the global fetch.
 */
export function createNodeFetch(options: NodeFetchOptions = {}): NodeFetch {
  const agent = poolAgent("createNodeFetch", options);
  const nodeFetch = (url: string, init: RequestInit = {}): Promise<Response> => {
    const body = bodyBytes(init.body);
    if (!url.startsWith("http:") || body === undefined) return fetch(url, init);
    return send(agent, url, init, body);
  };
  return Object.assign(nodeFetch, { close: () => agent.destroy() });
}

/** A {@link PostFunction} for `FetchNetwork`'s `post` option, with its own connection pool. */
export interface NodePost extends PostFunction {
  /** Closes the pool's connections (requests in flight fail). */
  close(): void;
}

/**
 * FetchNetwork's `post` on node:http with a keep-alive connection pool: what the example service
 * uses on Node. Unlike a `fetch` it builds no web `Request`, `Headers`, `Response` or stream per
 * request: the answer's chunks are gathered into one buffer (at most `maxBytes`; past that the
 * connection is closed and the answer has no body), so a peer RPC costs Node less CPU than
 * through `createNodeFetch` (bench/README.md, `rpc-cost.ts`). A failed connection or an answer
 * cut short rejects with a TypeError whose cause is the socket's error; `cancel` destroys the
 * request and rejects with its reason. Other URLs (https) go through the global fetch.
 */
export function createNodePost(options: NodeFetchOptions = {}): NodePost {
  const agent = poolAgent("createNodePost", options);
  const viaFetch = postWithFetch();
  const post: PostFunction = (request) => {
    if (!request.url.startsWith("http:")) return viaFetch(request);
    let req: ReturnType<typeof httpRequest> | undefined;
    let fail: (reason: unknown) => void = () => {};
    const answer = new Promise<PostAnswer>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        outcome();
      };
      fail = (reason) => settle(() => reject(reason));
      const body =
        typeof request.body === "string" ? Buffer.from(request.body, "utf8") : request.body;
      req = httpRequest(request.url, {
        method: "POST",
        agent,
        headers: { ...request.headers, "content-length": String(body.byteLength) },
      });
      req.on("error", (error) =>
        fail(new TypeError(`request failed: ${error.message}`, { cause: error })),
      );
      req.once("response", (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on("data", (chunk: Buffer) => {
          bytes += chunk.byteLength;
          if (bytes > request.maxBytes) {
            settle(() => resolve({ status, body: null }));
            res.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.once("end", () =>
          settle(() => {
            const only = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, bytes);
            resolve({ status, body: only });
          }),
        );
        res.once("error", (error) => fail(new TypeError("terminated", { cause: error })));
        res.once("close", () => {
          if (!res.complete) fail(new TypeError("terminated: the connection closed mid-answer"));
        });
      });
      req.end(body);
    });
    return {
      answer,
      cancel(reason) {
        fail(reason);
        req?.destroy();
      },
    };
  };
  return Object.assign(post, { close: () => agent.destroy() });
}

/** The keep-alive pool of {@link createNodeFetch} and {@link createNodePost}, options checked. */
function poolAgent(name: string, options: NodeFetchOptions): Agent {
  const maxSockets = options.maxSockets ?? 16;
  const idleTimeoutMs = options.idleTimeoutMs ?? 4000;
  if (!(Number.isInteger(maxSockets) && maxSockets > 0)) {
    throw new RangeError(`${name}: maxSockets ${maxSockets} is not a positive integer`);
  }
  if (!(idleTimeoutMs > 0 && Number.isFinite(idleTimeoutMs))) {
    throw new RangeError(`${name}: idleTimeoutMs ${idleTimeoutMs} is not positive`);
  }
  // LIFO reuses the busiest connections, so the idle ones time out and close.
  return new Agent({
    keepAlive: true,
    maxSockets,
    timeout: idleTimeoutMs,
    scheduling: "lifo",
    noDelay: true,
  });
}

function send(
  agent: Agent,
  url: string,
  init: RequestInit,
  body: Uint8Array | null,
): Promise<Response> {
  const signal = init.signal ?? null;
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  const method = (init.method ?? "GET").toUpperCase();
  const headers = headerRecord(init.headers);
  if (body !== null) {
    headers["content-length"] = String(body.byteLength);
    if (typeof init.body === "string" && !("content-type" in headers)) {
      headers["content-type"] = "text/plain;charset=UTF-8";
    }
  }
  return new Promise((resolve, reject) => {
    let req: ReturnType<typeof httpRequest>;
    try {
      req = httpRequest(url, { method, headers, agent });
    } catch (error) {
      reject(new TypeError(`fetch failed: ${(error as Error).message}`, { cause: error }));
      return;
    }
    // Until the response arrives errors reject; then they error its body.
    let bodyError: ((reason: unknown) => void) | null = null;
    const onAbort = () => {
      const reason = abortReason(signal as AbortSignal);
      if (bodyError !== null) bodyError(reason);
      else reject(reason);
      req.destroy();
    };
    const settle = () => signal?.removeEventListener("abort", onAbort);
    signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (error) => {
      settle();
      if (bodyError !== null) bodyError(new TypeError("terminated", { cause: error }));
      else reject(new TypeError(`fetch failed: ${error.message}`, { cause: error }));
    });
    req.once("response", (res) => {
      const status = res.statusCode ?? 0;
      const empty = method === "HEAD" || status === 204 || status === 205 || status === 304;
      let response: Response;
      try {
        const responseHeaders = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) {
          responseHeaders.append(raw[i] as string, raw[i + 1] as string);
        }
        const stream = empty ? null : bodyStream(res, settle);
        response = new Response(stream, {
          status,
          statusText: res.statusMessage ?? "",
          headers: responseHeaders,
        });
        if (stream !== null) bodyError = (reason) => res.destroy(asError(reason));
      } catch (error) {
        // A status fetch cannot represent (outside 200–599), or bad header bytes.
        settle();
        res.destroy();
        reject(new TypeError(`fetch failed: ${(error as Error).message}`, { cause: error }));
        return;
      }
      if (empty) {
        settle();
        res.resume();
      }
      resolve(response);
    });
    req.end(body ?? undefined);
  });
}

/** A web stream of `res`'s body, pausing `res` while the reader falls behind. */
function bodyStream(res: IncomingMessage, settle: () => void): ReadableStream<Uint8Array> {
  let ended = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      res.on("data", (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) res.pause();
      });
      res.once("end", () => {
        ended = true;
        settle();
        controller.close();
      });
      res.on("error", (error) => {
        if (ended) return;
        ended = true;
        settle();
        controller.error(abortedBody(error));
      });
      res.once("close", () => {
        if (ended) return;
        ended = true;
        settle();
        controller.error(new TypeError("terminated: the connection closed mid-body"));
      });
    },
    pull() {
      res.resume();
    },
    cancel() {
      ended = true;
      settle();
      res.destroy();
    },
  });
}

/** The stream's error for `error`: an abort's reason as given, else fetch's "terminated". */
function abortedBody(error: Error): unknown {
  const reason = (error as Error & { [abortReasonKey]?: unknown })[abortReasonKey];
  return reason !== undefined ? reason : new TypeError("terminated", { cause: error });
}

const abortReasonKey = Symbol("abortReason");

/** An Error carrying an abort's reason through `res.destroy`, whose argument must be an Error. */
function asError(reason: unknown): Error {
  const error = new Error("aborted") as Error & { [abortReasonKey]?: unknown };
  error[abortReasonKey] = reason;
  return error;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** The body as bytes; null for none; undefined for a kind left to the global fetch. */
function bodyBytes(body: RequestInit["body"]): Uint8Array | null | undefined {
  if (body === undefined || body === null) return null;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body))
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  return undefined;
}

/** `init.headers` as a plain object with lower-case names. */
function headerRecord(init: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (init === undefined) return out;
  const entries =
    init instanceof Headers || Array.isArray(init)
      ? new Headers(init)
      : Object.entries(init as Record<string, string>);
  for (const [name, value] of entries) out[name.toLowerCase()] = value;
  return out;
}
