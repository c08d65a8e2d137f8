/** Node adapter: an HTTP server from @hono/node-server. */
import type { AddressInfo } from "node:net";
import { serve as nodeServe } from "@hono/node-server";
import type { FetchApp, ServeOptions, Server } from "./server.ts";

export type { FetchApp, ServeOptions, Server } from "./server.ts";

/** Serves `app` on Node's http server; resolves once it listens. */
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
