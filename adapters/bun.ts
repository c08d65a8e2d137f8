/** Bun adapter: an HTTP server from Bun.serve. */
import type { FetchApp, ServeOptions, Server } from "./server.ts";

export type { FetchApp, ServeOptions, Server } from "./server.ts";

// The part of the Bun global this adapter uses (so tsc and deno check need no Bun types).
declare const Bun: {
  serve(options: {
    fetch: (request: Request) => Response | Promise<Response>;
    hostname: string;
    port: number;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> | void };
};

/** Serves `app` with Bun.serve; resolves once it listens. */
export function serve(app: FetchApp, options: ServeOptions = {}): Promise<Server> {
  const hostname = options.hostname ?? "127.0.0.1";
  const server = Bun.serve({
    fetch: (request) => app.fetch(request),
    hostname,
    port: options.port ?? 0,
  });
  return Promise.resolve({
    hostname,
    port: server.port,
    close: async () => {
      await server.stop(true);
    },
  });
}
