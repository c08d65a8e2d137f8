/**
 * The server of bench/floor.ts: answers `PUT /kv/{key}` as the example service's leader does at
 * the HTTP level (the key from the path, the Content-Length, the whole body, a strict UTF-8
 * decode, `{"index":n}` back) with nothing behind it: no Raft, no storage.
 *
 *   <runtime> bench/floor-server.ts hono        a Hono app on the runtime's adapter (as the example)
 *   node --import tsx bench/floor-server.ts node-http     a bare node:http handler (Node only)
 *
 * Prints `listening on http://127.0.0.1:PORT` once it serves; SIGTERM ends it.
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { Hono } from "hono";
import { loadAdapter } from "../examples/kv/runtime.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });
let index = 0;

async function serveHono(): Promise<number> {
  const app = new Hono();
  app.put("/kv/:key", async (c) => {
    if (c.req.param("key") === "" || c.req.header("content-length") === undefined) {
      return c.json({ error: "expected a key and a Content-Length" }, 400);
    }
    utf8.decode(new Uint8Array(await c.req.arrayBuffer()));
    return c.json({ index: ++index });
  });
  const { serve } = await loadAdapter();
  return (await serve(app, { hostname: "127.0.0.1", port: 0 })).port;
}

async function serveNodeHttp(): Promise<number> {
  const { createServer } = await import("node:http");
  const server = createServer((request, response) => {
    const chunks: Uint8Array[] = [];
    request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    request.on("end", () => {
      utf8.decode(Buffer.concat(chunks));
      const body = JSON.stringify({ index: ++index });
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      });
      response.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

const kind = process.argv[2];
if (kind !== "hono" && kind !== "node-http") {
  process.stderr.write("usage: floor-server.ts hono|node-http\n");
  process.exit(2);
}
const port = kind === "hono" ? await serveHono() : await serveNodeHttp();
process.on("SIGTERM", () => process.exit(0));
process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
