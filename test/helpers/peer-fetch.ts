/**
 * The HTTP clients FetchNetwork is tested with on the running runtime: the global fetch
 * everywhere, and on Node also adapters/node.ts's `createNodeFetch` and `createNodePost` (what
 * the example service uses there), so one suite covers them all.
 */
import type { FetchNetworkOptions } from "../../src/net/fetch.ts";
import { runtime } from "./runtime.ts";

export interface PeerFetch {
  /** Appended to a suite's name: "" for the global fetch. */
  readonly label: string;
  /** FetchNetwork's `fetch` or `post` option; empty for the global fetch. */
  readonly options: Pick<FetchNetworkOptions, "fetch" | "post">;
}

/** The global fetch, then (on Node) node:http's fetch and post, each with its own pool. */
export async function peerFetches(): Promise<PeerFetch[]> {
  const list: PeerFetch[] = [{ label: "", options: {} }];
  if (runtime === "node") {
    const { createNodeFetch, createNodePost } = await import("../../adapters/node.ts");
    list.push({ label: " with node:http fetch", options: { fetch: createNodeFetch() } });
    list.push({ label: " with node:http post", options: { post: createNodePost() } });
  }
  return list;
}
