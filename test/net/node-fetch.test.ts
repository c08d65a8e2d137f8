/**
 * adapters/node.ts's `createNodeFetch` and `createNodePost` against a real node:http server on
 * 127.0.0.1: what they share with fetch (FetchNetwork's own suites run on both too, see
 * test/helpers/peer-fetch.ts) and their connection pools. Node only: the other runtimes' peers
 * use their global fetch.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { NodeFetch, NodePost } from "../../adapters/node.ts";
import { readBody } from "../../src/http/body.ts";
import { runtime } from "../helpers/runtime.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
  readonly remotePort: number;
}

/** A promise and the function that resolves it. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const servers: Server[] = [];

/** A server that records every request (with its body) and then runs `handler`. */
async function server(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks),
        remotePort: req.socket.remotePort ?? 0,
      });
      handler(req, res);
    });
  });
  servers.push(srv);
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen };
}

const ok: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "application/json", "x-one": "1" });
  res.end('{"ok":true}');
};

/** The clients' connection pools, closed before the servers when the file is done. */
const pools: { close(): void }[] = [];

function pooled<T extends { close(): void }>(client: T): T {
  pools.push(client);
  return client;
}

after(async () => {
  for (const pool of pools) pool.close();
  for (const srv of servers) {
    srv.closeAllConnections();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
});

describe("createNodeFetch", { skip: runtime === "node" ? false : "Node only" }, () => {
  let createNodeFetch: typeof import("../../adapters/node.ts").createNodeFetch;
  const nodeFetch = (options: Parameters<typeof createNodeFetch>[0] = {}): NodeFetch =>
    pooled(createNodeFetch(options));

  before(async () => {
    ({ createNodeFetch } = await import("../../adapters/node.ts"));
  });

  it("sends the method, headers and bytes with a Content-Length; answers a web Response", async () => {
    const { url, seen } = await server(ok);
    const f = nodeFetch();
    const body = new Uint8Array([1, 2, 3, 250]);
    const response = await f(`${url}/raft/append`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream", Authorization: "Bearer s" },
      body,
    });
    assert.ok(response instanceof Response);
    assert.equal(response.status, 200);
    assert.equal(response.statusText, "OK");
    assert.equal(response.headers.get("x-one"), "1");
    assert.deepEqual(await response.json(), { ok: true });
    const [request] = seen;
    assert.equal(request?.method, "POST");
    assert.equal(request?.url, "/raft/append");
    assert.equal(request?.headers["content-length"], "4");
    assert.equal(request?.headers["transfer-encoding"], undefined);
    assert.equal(request?.headers.authorization, "Bearer s");
    assert.equal(request?.headers["content-type"], "application/octet-stream");
    assert.deepEqual([...(request?.body ?? [])], [1, 2, 3, 250]);
  });

  it("a string body is UTF-8 with its byte length, text/plain unless a type is given", async () => {
    const { url, seen } = await server(ok);
    const f = nodeFetch();
    await (await f(url, { method: "POST", body: "héllo" })).arrayBuffer();
    await (
      await f(url, { method: "POST", headers: [["content-type", "application/json"]], body: "{}" })
    ).arrayBuffer();
    assert.equal(seen[0]?.headers["content-length"], "6");
    assert.equal(seen[0]?.headers["content-type"], "text/plain;charset=UTF-8");
    assert.equal(seen[0]?.body.toString("utf8"), "héllo");
    assert.equal(seen[1]?.headers["content-type"], "application/json");
  });

  it("keeps connections alive: one for requests in sequence, at most maxSockets at once", async () => {
    const { url, seen } = await server(ok);
    const f = nodeFetch({ maxSockets: 2 });
    for (let i = 0; i < 5; i++) await (await f(url, { method: "POST", body: "x" })).text();
    assert.equal(new Set(seen.map((s) => s.remotePort)).size, 1);
    const answers = await Promise.all(
      Array.from({ length: 12 }, async () => (await f(url, { method: "POST", body: "y" })).text()),
    );
    assert.equal(answers.length, 12);
    assert.equal(seen.length, 17);
    const concurrent = new Set(seen.slice(5).map((s) => s.remotePort));
    assert.ok(concurrent.size <= 2, `${concurrent.size} connections`);
  });

  it("large bodies stream both ways", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const { url, seen } = await server((_req, res) => {
      res.writeHead(200);
      res.end(big);
    });
    const f = nodeFetch();
    const response = await f(url, { method: "POST", body: new Uint8Array(big) });
    const bytes = await readBody(response.body, big.length);
    assert.equal(bytes.length, big.length);
    assert.ok(bytes.every((b) => b === 7));
    assert.equal(seen[0]?.body.length, big.length);
  });

  it("no body for 204; a 3xx is returned as is, not followed", async () => {
    let calls = 0;
    const { url, seen } = await server((_req, res) => {
      calls++;
      if (calls === 1) res.writeHead(204).end();
      else res.writeHead(302, { location: "/elsewhere" }).end("moved");
    });
    const f = nodeFetch();
    const empty = await f(url, { method: "POST", body: "a" });
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
    const moved = await f(url, { method: "POST", body: "b" });
    assert.equal(moved.status, 302);
    assert.equal(moved.headers.get("location"), "/elsewhere");
    assert.equal(await moved.text(), "moved");
    assert.equal(seen.length, 2);
  });

  it("an abort before the answer rejects with the signal's reason and drops the request", async () => {
    const arrived = deferred();
    const gone = deferred();
    const { url } = await server((req) => {
      req.socket.once("close", () => gone.resolve());
      arrived.resolve();
    });
    const f = nodeFetch();
    const controller = new AbortController();
    const pending = f(url, { method: "POST", body: "x", signal: controller.signal });
    await arrived.promise;
    const reason = new Error("timed out");
    controller.abort(reason);
    assert.equal(await rejection(pending), reason);
    await gone.promise;
    // Without a reason: an AbortError, as fetch rejects.
    const aborted = new AbortController();
    aborted.abort();
    const error = await rejection(f(url, { method: "POST", signal: aborted.signal }));
    assert.equal((error as Error).name, "AbortError");
  });

  it("an abort while the body is read errors the body with the reason", async () => {
    const { url } = await server((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write("first part");
      // …and the rest never comes.
    });
    const f = nodeFetch();
    const controller = new AbortController();
    const response = await f(url, { method: "POST", body: "x", signal: controller.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), "first part");
    const reason = new Error("timed out while reading");
    controller.abort(reason);
    assert.equal(await rejection(reader.read()), reason);
  });

  it("a connection that closes mid-body errors the body; cancelling a body frees the pool", async () => {
    let calls = 0;
    const { url } = await server((_req, res) => {
      calls++;
      res.writeHead(200, { "content-length": "100" });
      // The first answer's connection closes once its first part is out.
      res.write("only part", () => {
        if (calls === 1) res.destroy();
      });
    });
    const f = nodeFetch({ maxSockets: 1 });
    const broken = await f(url, { method: "POST", body: "x" });
    const error = await rejection(broken.text());
    assert.equal((error as Error).name, "TypeError");
    // A body cancelled after its first bytes closes its connection: the one socket is free again.
    const held = await f(url, { method: "POST", body: "x" });
    const reader = (held.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await reader.cancel();
    const next = await f(url, { method: "POST", body: "x" });
    assert.equal(next.status, 200);
    await next.body?.cancel();
  });

  it("an unreachable peer rejects with a TypeError whose cause is the socket's error", async () => {
    const { url } = await server(ok);
    const srv = servers.at(-1) as Server;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const error = await rejection(nodeFetch()(url, { method: "POST", body: "x" }));
    assert.ok(error instanceof TypeError);
    assert.equal((error.cause as { code?: string }).code, "ECONNREFUSED");
  });

  it("a status fetch cannot represent rejects with a TypeError", async () => {
    const { url } = await server((_req, res) => res.writeHead(600).end("?"));
    const error = await rejection(nodeFetch()(url, { method: "POST", body: "x" }));
    assert.ok(error instanceof TypeError);
  });

  it("other bodies (forms, streams) go to the global fetch", async () => {
    const { url, seen } = await server(ok);
    const response = await nodeFetch()(url, {
      method: "POST",
      body: new URLSearchParams({ a: "1" }),
    });
    assert.equal(response.status, 200);
    await response.text();
    assert.equal(seen[0]?.body.toString(), "a=1");
    assert.match(String(seen[0]?.headers["content-type"]), /x-www-form-urlencoded/);
  });

  it("close() closes the pool's idle connections", async () => {
    const closed = deferred();
    const { url } = await server((req, res) => {
      req.socket.once("close", () => closed.resolve());
      ok(req, res);
    });
    const f = nodeFetch();
    await (await f(url, { method: "POST", body: "x" })).text();
    f.close();
    await closed.promise;
  });

  it("bad options throw a RangeError", () => {
    assert.throws(() => createNodeFetch({ maxSockets: 0 }), RangeError);
    assert.throws(() => createNodeFetch({ maxSockets: 1.5 }), RangeError);
    assert.throws(() => createNodeFetch({ idleTimeoutMs: -1 }), RangeError);
  });
});

describe("createNodePost", { skip: runtime === "node" ? false : "Node only" }, () => {
  let createNodePost: typeof import("../../adapters/node.ts").createNodePost;
  const nodePost = (options: Parameters<typeof createNodePost>[0] = {}): NodePost =>
    pooled(createNodePost(options));

  const request = (url: string, body: Uint8Array<ArrayBuffer> | string = "x", maxBytes = 1024) => ({
    url,
    headers: { "Content-Type": "application/octet-stream", Authorization: "Bearer s" },
    body,
    maxBytes,
  });

  before(async () => {
    ({ createNodePost } = await import("../../adapters/node.ts"));
  });

  it("POSTs the headers and bytes with a Content-Length; answers the status and whole body", async () => {
    const { url, seen } = await server(ok);
    const answer = await nodePost()(request(`${url}/raft/append`, new Uint8Array([1, 2, 250])))
      .answer;
    assert.equal(answer.status, 200);
    assert.equal(new TextDecoder().decode(answer.body ?? undefined), '{"ok":true}');
    const [seenRequest] = seen;
    assert.equal(seenRequest?.method, "POST");
    assert.equal(seenRequest?.url, "/raft/append");
    assert.equal(seenRequest?.headers["content-length"], "3");
    assert.equal(seenRequest?.headers.authorization, "Bearer s");
    assert.deepEqual([...(seenRequest?.body ?? [])], [1, 2, 250]);
    // A string body is UTF-8, with its length in bytes.
    await nodePost()(request(url, "héllo")).answer;
    assert.equal(seen[1]?.headers["content-length"], "6");
    assert.equal(seen[1]?.body.toString("utf8"), "héllo");
  });

  it("keeps one connection alive for posts in sequence; a large answer arrives whole", async () => {
    const big = Buffer.alloc(300_000, 7);
    const { url, seen } = await server((_req, res) => res.writeHead(200).end(big));
    const post = nodePost();
    for (let i = 0; i < 3; i++) {
      const answer = await post(request(url, "x", big.length)).answer;
      assert.equal(answer.body?.length, big.length);
      assert.ok(answer.body?.every((b) => b === 7));
    }
    assert.equal(new Set(seen.map((s) => s.remotePort)).size, 1);
  });

  it("an answer longer than maxBytes has no body, and its connection is closed", async () => {
    const { url, seen } = await server((_req, res) => res.writeHead(413).end("y".repeat(5000)));
    const post = nodePost({ maxSockets: 1 });
    const answer = await post(request(url, "x", 100)).answer;
    assert.deepEqual(answer, { status: 413, body: null });
    // The pool's one socket is usable again (a new connection).
    const next = await post(request(url, "x", 10_000)).answer;
    assert.equal(next.body?.length, 5000);
    assert.equal(seen.length, 2);
    assert.notEqual(seen[0]?.remotePort, seen[1]?.remotePort);
  });

  it("cancel rejects with its reason and drops the request", async () => {
    const arrived = deferred();
    const closed = deferred();
    const { url } = await server((req) => {
      req.socket.once("close", () => closed.resolve());
      arrived.resolve();
      // …and never answers.
    });
    const pending = nodePost()(request(url));
    await arrived.promise;
    const reason = new Error("timed out");
    pending.cancel(reason);
    assert.equal(await rejection(pending.answer), reason);
    await closed.promise;
  });

  it("a connection that closes mid-answer rejects with a TypeError", async () => {
    const { url } = await server((_req, res) => {
      res.writeHead(200, { "content-length": "100" });
      res.write("only part", () => res.destroy());
    });
    const error = await rejection(nodePost()(request(url)).answer);
    assert.ok(error instanceof TypeError);
  });

  it("an unreachable peer rejects with a TypeError whose cause is the socket's error", async () => {
    const { url } = await server(ok);
    const srv = servers.at(-1) as Server;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const error = await rejection(nodePost()(request(url)).answer);
    assert.ok(error instanceof TypeError);
    assert.equal((error.cause as { code?: string }).code, "ECONNREFUSED");
  });

  it("bad options throw a RangeError", () => {
    assert.throws(() => createNodePost({ maxSockets: 0 }), RangeError);
    assert.throws(() => createNodePost({ idleTimeoutMs: Number.NaN }), RangeError);
  });
});
