/**
 * A {@link Network} that reaches some peers through another URL than their address in the
 * membership: the chaos harness (test/chaos/) puts a fault-injecting proxy on every peer link this
 * way, while clients and redirects keep using the members' own addresses.
 */
import type { NodeId } from "../../src/core/types.ts";
import type {
  Network,
  RequestMessage,
  ResponseMessage,
  SnapshotChunk,
  SnapshotChunkResponse,
} from "../../src/net/network.ts";

/** Peer id → the origin (`http://host:port`) to use instead of its address's origin. */
export type PeerRoutes = Readonly<Record<NodeId, string>>;

/** A transport that can be closed (FetchNetwork). */
export type ClosableNetwork = Network & { close(): void };

/**
 * Delegates to `inner`, with the origin of a routed peer's address replaced (its path kept).
 * Without routes it is `inner` as is.
 */
export class RoutedNetwork implements Network {
  readonly #inner: ClosableNetwork;
  readonly #routes: ReadonlyMap<NodeId, string>;

  constructor(inner: ClosableNetwork, routes: PeerRoutes = {}) {
    this.#inner = inner;
    this.#routes = new Map(Object.entries(routes).map(([id, url]) => [id, new URL(url).origin]));
  }

  send(
    to: NodeId,
    address: string,
    message: RequestMessage,
    timeoutMs: number,
  ): Promise<ResponseMessage | null> {
    return this.#inner.send(to, this.#route(to, address), message, timeoutMs);
  }

  sendSnapshotChunk(
    to: NodeId,
    address: string,
    chunk: SnapshotChunk,
    timeoutMs: number,
  ): Promise<SnapshotChunkResponse> {
    return this.#inner.sendSnapshotChunk(to, this.#route(to, address), chunk, timeoutMs);
  }

  close(): void {
    this.#inner.close();
  }

  #route(to: NodeId, address: string): string {
    const origin = this.#routes.get(to);
    if (origin === undefined || !URL.canParse(address)) return address;
    const url = new URL(address);
    return `${origin}${url.pathname}${url.search}`.replace(/\/+$/, "");
  }
}

/** `n2=http://127.0.0.1:9012,n3=…` → { n2: "http://127.0.0.1:9012", … }; throws on bad input. */
export function parsePeerRoutes(list: string): Record<NodeId, string> {
  const routes: Record<NodeId, string> = {};
  for (const item of list.split(",")) {
    const at = item.indexOf("=");
    const peer = item.slice(0, at).trim();
    const url = item.slice(at + 1).trim();
    if (at <= 0 || url === "") throw new Error(`'${item}' is not ID=URL`);
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      throw new Error(`'${url}' is not an http(s) URL`);
    }
    if (peer in routes) throw new Error(`${peer} appears twice`);
    routes[peer] = url;
  }
  return routes;
}
