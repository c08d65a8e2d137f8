/**
 * A fault-injecting TCP proxy for one directed peer link i→j: node i reaches node j's Raft routes
 * through it (examples/kv/main.ts `--peer-route`). The link carries i's requests to j and j's
 * answers to them, so cutting i→j alone is a one-way partition: j still reaches i through j→i.
 *
 * Modes:
 * - `pass`: bytes flow both ways.
 * - `refuse`: open connections are closed and new ones closed as soon as they arrive (a peer
 *   that is down or a firewall that rejects).
 * - `blackhole`: connections are accepted but nothing is forwarded either way, on open ones too
 *   (a network that drops every packet: the sender learns nothing until its timeout).
 *
 * Going back to `pass` closes the connections a fault held, so the sender reconnects afresh.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type LinkMode = "pass" | "refuse" | "blackhole";

interface Connection {
  readonly client: Socket;
  readonly upstream: Socket | null;
  /** Held by a black hole: nothing more is forwarded. */
  held: boolean;
}

export class LinkProxy {
  #mode: LinkMode = "pass";
  #server: Server | null = null;
  #port = 0;
  readonly #connections = new Set<Connection>();
  /** Connections accepted, those a fault refused or held, and the bytes a black hole swallowed. */
  readonly stats = { accepted: 0, refused: 0, held: 0, swallowedBytes: 0 };

  constructor(
    readonly from: string,
    readonly to: string,
    /** The port of `to`'s server on 127.0.0.1. */
    readonly targetPort: number,
  ) {}

  get mode(): LinkMode {
    return this.#mode;
  }

  /** The port it listens on (0 before `listen`). */
  get port(): number {
    return this.#port;
  }

  /** Listens on 127.0.0.1 (`port` 0: any free port) and resolves with the port. */
  listen(port = 0): Promise<number> {
    const server = createServer((client) => this.#accept(client));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const address = server.address();
        this.#port = typeof address === "object" && address !== null ? address.port : 0;
        resolve(this.#port);
      });
    });
  }

  setMode(mode: LinkMode): void {
    if (mode === this.#mode) return;
    this.#mode = mode;
    for (const connection of this.#connections) {
      if (mode === "blackhole") {
        if (!connection.held) this.stats.held++;
        connection.held = true;
      } else {
        // refuse: cut what is open; pass: drop what a black hole held, so the peer reconnects.
        if (mode === "refuse" || connection.held) this.#close(connection);
      }
    }
  }

  /** Closes the listener and every connection. */
  close(): Promise<void> {
    for (const connection of this.#connections) this.#close(connection);
    const server = this.#server;
    this.#server = null;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.stats.accepted++;
    client.on("error", () => {});
    if (this.#mode === "refuse") {
      this.stats.refused++;
      client.destroy();
      return;
    }
    if (this.#mode === "blackhole") {
      this.stats.held++;
      const connection: Connection = { client, upstream: null, held: true };
      this.#track(connection);
      client.on("data", (chunk: Buffer) => {
        this.stats.swallowedBytes += chunk.length;
      });
      return;
    }
    const upstream = createConnection({ host: "127.0.0.1", port: this.targetPort });
    upstream.on("error", () => {});
    const connection: Connection = { client, upstream, held: false };
    this.#track(connection);
    // Bytes are forwarded only while the link passes; a held connection swallows them.
    client.on("data", (chunk: Buffer) => {
      if (connection.held) this.stats.swallowedBytes += chunk.length;
      else upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (connection.held) this.stats.swallowedBytes += chunk.length;
      else client.write(chunk);
    });
    client.on("end", () => {
      if (!connection.held) upstream.end();
    });
    upstream.on("end", () => {
      if (!connection.held) client.end();
    });
    upstream.on("close", () => {
      if (!connection.held) this.#close(connection);
    });
  }

  #track(connection: Connection): void {
    this.#connections.add(connection);
    connection.client.on("close", () => this.#close(connection));
  }

  #close(connection: Connection): void {
    if (!this.#connections.delete(connection)) return;
    connection.client.destroy();
    connection.upstream?.destroy();
  }
}
