/**
 * The chaos harness's fault-injecting link proxy against a real TCP echo server on 127.0.0.1:
 * `pass` forwards both ways, `refuse` closes open and new connections, `blackhole` accepts and
 * forwards nothing (open connections included), and going back to `pass` forwards again.
 */
import assert from "node:assert/strict";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { runtime } from "../helpers/runtime.ts";
import { LinkProxy } from "./proxy.ts";

/** A connection's events, read in order: data chunks (as text) and its close. */
class Peer {
  readonly socket: Socket;
  #received = "";
  #closed = false;
  #waiters: (() => void)[] = [];

  constructor(port: number) {
    this.socket = createConnection({ host: "127.0.0.1", port });
    this.socket.setEncoding("utf8");
    this.socket.on("data", (chunk: string) => {
      this.#received += chunk;
      this.#wake();
    });
    this.socket.on("error", () => {});
    this.socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
  }

  get received(): string {
    return this.#received;
  }

  /** Resolves once `text` has been received. */
  async receives(text: string): Promise<void> {
    while (!this.#received.includes(text)) {
      assert.ok(!this.#closed, `closed before receiving ${text}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Resolves once the connection is closed. */
  async closes(): Promise<void> {
    while (!this.#closed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Polls `condition` (a counter the proxy updates as bytes arrive) until it holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe(`the chaos harness's link proxy, on ${runtime}`, () => {
  let echo: Server;
  let echoPort = 0;
  /** Every connection the echo server accepted. */
  const accepted: Socket[] = [];
  const peers: Peer[] = [];
  const proxies: LinkProxy[] = [];

  before(async () => {
    echo = createServer((socket) => {
      accepted.push(socket);
      socket.on("error", () => {});
      socket.on("data", (chunk) => socket.write(chunk));
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    const address = echo.address();
    echoPort = typeof address === "object" && address !== null ? address.port : 0;
  });

  after(async () => {
    for (const peer of peers) peer.socket.destroy();
    for (const socket of accepted) socket.destroy();
    await Promise.all(proxies.map((p) => p.close()));
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  async function proxy(): Promise<LinkProxy> {
    const link = new LinkProxy("n1", "n2", echoPort);
    proxies.push(link);
    await link.listen();
    return link;
  }

  function connect(link: LinkProxy): Peer {
    const peer = new Peer(link.port);
    peers.push(peer);
    return peer;
  }

  it("forwards both ways while it passes", async () => {
    const link = await proxy();
    const peer = connect(link);
    peer.socket.write("hello");
    await peer.receives("hello");
    peer.socket.write(" again");
    await peer.receives("hello again");
    assert.equal(link.stats.accepted, 1);
  });

  it("refuse closes the open connection and every new one, and pass forwards again", async () => {
    const link = await proxy();
    const open = connect(link);
    open.socket.write("ping");
    await open.receives("ping");
    link.setMode("refuse");
    await open.closes();
    const refused = connect(link);
    await refused.closes();
    assert.equal(refused.received, "");
    assert.equal(link.stats.refused, 1);
    link.setMode("pass");
    const healed = connect(link);
    healed.socket.write("back");
    await healed.receives("back");
  });

  it("blackhole forwards nothing on open or new connections; pass closes what it held", async () => {
    const link = await proxy();
    const open = connect(link);
    open.socket.write("one");
    await open.receives("one");
    const upstreams = accepted.length;
    link.setMode("blackhole");
    open.socket.write("lost");
    const held = connect(link);
    held.socket.write("lost too");
    // Once the proxy has swallowed all 12 bytes, they can no longer reach the server.
    await until(() => link.stats.swallowedBytes === 12);
    assert.equal(open.received, "one");
    assert.equal(held.received, "");
    assert.equal(accepted.length, upstreams, "a held connection never reaches the server");
    assert.equal(link.stats.held, 2);
    link.setMode("pass");
    await open.closes();
    await held.closes();
    const healed = connect(link);
    healed.socket.write("through");
    await healed.receives("through");
  });
});
