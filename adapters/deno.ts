/** Deno adapter: an HTTP server from Deno.serve. */
import type { FetchApp, ServeOptions, Server } from "./server.ts";

export type { FetchApp, ServeOptions, Server } from "./server.ts";

// The part of the Deno global this adapter uses (so tsc needs no Deno types).
declare const Deno: {
  serve(
    options: {
      hostname: string;
      port: number;
      onListen?: (address: { hostname: string; port: number }) => void;
    },
    handler: (request: Request) => Response | Promise<Response>,
  ): { finished: Promise<void>; shutdown(): Promise<void> };
};

/** Serves `app` with Deno.serve; resolves once it listens. */
export function serve(app: FetchApp, options: ServeOptions = {}): Promise<Server> {
  const hostname = options.hostname ?? "127.0.0.1";
  return new Promise((resolve) => {
    const server = Deno.serve(
      {
        hostname,
        port: options.port ?? 0,
        onListen: (address) =>
          resolve({
            hostname,
            port: address.port,
            close: async () => {
              await server.shutdown();
              await server.finished;
            },
          }),
      },
      (request) => app.fetch(request),
    );
  });
}
