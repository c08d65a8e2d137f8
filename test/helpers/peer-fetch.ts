/**
 * The `fetch` functions FetchNetwork is tested with on the running runtime: the global fetch
 * everywhere, and on Node also adapters/node.ts's `createNodeFetch` (what the example service
 * uses there), so one suite covers both.
 */
import type { FetchFunction } from "../../src/net/fetch.ts";
import { runtime } from "./runtime.ts";

export interface PeerFetch {
  /** Appended to a suite's name: "" for the global fetch. */
  readonly label: string;
  /** The `fetch` option of FetchNetwork; undefined for the global fetch. */
  readonly fetch: FetchFunction | undefined;
}

/** The global fetch, then (on Node) a node:http fetch with its own connection pool. */
export async function peerFetches(): Promise<PeerFetch[]> {
  const list: PeerFetch[] = [{ label: "", fetch: undefined }];
  if (runtime === "node") {
    const { createNodeFetch } = await import("../../adapters/node.ts");
    list.push({ label: " with node:http fetch", fetch: createNodeFetch() });
  }
  return list;
}
