/**
 * The server every runtime adapter's `serve` resolves with. Runtime-free, shared by the three
 * adapters.
 */
export interface Server {
  /** The host name or address the server listens on. */
  readonly hostname: string;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops accepting connections, closes open ones and resolves when the server is down. */
  close(): Promise<void>;
}

/** Anything with a Fetch-API handler, such as a Hono app. */
export interface FetchApp {
  /** Answers one request (a Hono app's `fetch` fits). */
  fetch(request: Request): Response | Promise<Response>;
}

/** Where {@link Server} listens; both fields optional. */
export interface ServeOptions {
  /** Default 127.0.0.1. */
  readonly hostname?: string;
  /** Default 0: any free port. */
  readonly port?: number;
}
