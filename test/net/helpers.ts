/** Shared pieces of the FetchNetwork suites: peers on real HTTP servers, and promise helpers. */
import { after, before } from "node:test";
import { Hono } from "hono";
import type { Server } from "../../adapters/server.ts";
import { raftRoutes } from "../../src/http/routes.ts";
import { FetchNetwork, type FetchNetworkOptions } from "../../src/net/fetch.ts";
import type { PeerFetch } from "../helpers/peer-fetch.ts";
import { loadAdapter } from "../helpers/runtime.ts";
import type { RecordingHandler } from "../http/helpers.ts";

/** The cluster secret of the suites' peers and networks. */
export const SECRET = "s3cret";

/** A promise and the function that resolves it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The error `promise` rejects with; throws if it fulfils. */
export async function rejection(
  promise: Promise<unknown>,
): Promise<{ kind?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { kind?: string; message: string };
  }
  throw new Error("expected a rejection");
}

export function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export interface FetchSuite {
  /** Serves `app` on 127.0.0.1 until the suite ends; returns its origin. */
  serve(app: Hono): Promise<string>;
  /** Serves `handler` behind raftRoutes (with SECRET) at /raft; returns its address. */
  peer(handler: RecordingHandler): Promise<string>;
  /** A FetchNetwork on the suite's transport with SECRET, closed when the suite ends. */
  network(options?: FetchNetworkOptions): FetchNetwork;
  /** An address where nothing listens: a server's, once closed. */
  closedAddress(): Promise<string>;
  /** A {@link deferred} for a test to hold requests with; resolved when the suite ends at last. */
  held(): { promise: Promise<void>; resolve: () => void };
}

/**
 * What a FetchNetwork suite on `transport` serves and opens, all closed in an `after` hook. Call
 * it inside the suite's `describe`.
 */
export function fetchSuite(transport: PeerFetch): FetchSuite {
  let serveApp: Awaited<ReturnType<typeof loadAdapter>>["serve"];
  const servers: Server[] = [];
  const networks: FetchNetwork[] = [];
  const releases: (() => void)[] = [];

  before(async () => {
    ({ serve: serveApp } = await loadAdapter());
  });

  after(async () => {
    for (const release of releases) release();
    for (const net of networks) net.close();
    for (const server of servers) await server.close();
  });

  async function serve(app: Hono): Promise<string> {
    const server = await serveApp(app, { hostname: "127.0.0.1", port: 0 });
    servers.push(server);
    return `http://127.0.0.1:${server.port}`;
  }

  return {
    serve,
    async peer(handler) {
      const app = new Hono();
      app.route("/raft", raftRoutes(handler, { secret: SECRET }));
      return `${await serve(app)}/raft`;
    },
    network(options = {}) {
      const net = new FetchNetwork({ secret: SECRET, ...transport.options, ...options });
      networks.push(net);
      return net;
    },
    async closedAddress() {
      const closed = await serveApp(new Hono(), { hostname: "127.0.0.1", port: 0 });
      await closed.close();
      return `http://127.0.0.1:${closed.port}/raft`;
    },
    held() {
      const hold = deferred();
      releases.push(hold.resolve);
      return hold;
    },
  };
}
