/**
 * HTTP load with autocannon (programmatic API): N keep-alive connections, one request in flight
 * on each (closed loop). Every connection cycles through the same KEYS requests, built once:
 * a request rebuilt per call (autocannon's setupRequest) costs the load generator, which shares
 * the machine with the cluster, a third of its throughput. Latency comes from autocannon's per-response
 * event into our own histogram: autocannon's own rounds to whole milliseconds, too coarse for
 * sub-millisecond medians.
 */
import { createRequire } from "node:module";
import { Histogram } from "./histogram.ts";

/** The part of autocannon's API used here (the package ships no types). */
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  pipelining: number;
  timeout: number;
  headers?: Record<string, string>;
  requests: AutocannonRequest[];
}
interface AutocannonResult {
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
  "1xx": number;
  "2xx": number;
  "3xx": number;
  "4xx": number;
  "5xx": number;
}
interface AutocannonInstance {
  on(
    event: "response",
    listener: (client: unknown, status: number, bytes: number, ms: number) => void,
  ): void;
  stop(): void;
}
type Autocannon = (
  options: AutocannonOptions,
  done: (error: Error | null, result: AutocannonResult) => void,
) => AutocannonInstance;

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

/** How to build the n-th write request against a target. */
export interface WriteTarget {
  readonly name: string;
  /** Base URL of the node to drive, e.g. http://127.0.0.1:7001. */
  readonly url: string;
  readonly method: "PUT" | "POST";
  readonly headers: Record<string, string>;
  /** Path and body of the write of `key` with `value`. */
  request(key: string, value: string): { path: string; body: string };
}

export interface LoadOptions {
  readonly connections: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Called about every 250 ms with the completed responses of the current phase. */
  readonly onProgress?: (phase: "warm-up" | "measure", elapsedS: number, done: number) => void;
  /** Called as the measuring window opens and as it closes (e.g. to sample CPU time). */
  readonly onWindow?: (edge: "open" | "close") => void;
}

export interface LoadResult {
  readonly connections: number;
  readonly seconds: number;
  /** 2xx responses in the measuring window. */
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: {
    readonly p50: number;
    readonly p99: number;
    readonly p999: number;
    readonly mean: number;
    readonly max: number;
  };
  /** Responses other than 2xx, connection errors and timeouts: every one should be 0. */
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  /** The non-2xx responses by class (a 3xx is a redirect from a node no longer leading). */
  readonly statusClasses: {
    readonly "3xx": number;
    readonly "4xx": number;
    readonly "5xx": number;
  };
}

/** A value of `bytes` ASCII characters. */
export function valueOfBytes(bytes: number): string {
  return "v".repeat(bytes);
}

/**
 * Keys k00…k63, cycled on every connection (writes overwrite them, on both systems). Every
 * connection builds its own copy of each request up front: at 256 connections 1000 keys took
 * seconds of the load generator's time.
 */
const KEYS = 64;

/**
 * Warms up, then measures: two autocannon runs on fresh connections, so the window counts only
 * requests started after the warm-up.
 */
export async function load(
  target: WriteTarget,
  value: string,
  options: LoadOptions,
): Promise<LoadResult> {
  const requests = Array.from({ length: KEYS }, (_, i) => ({
    method: target.method,
    ...target.request(`k${String(i).padStart(2, "0")}`, value),
  }));
  const run = (seconds: number, phase: "warm-up" | "measure", histogram: Histogram | null) =>
    new Promise<AutocannonResult>((resolve, reject) => {
      let done = 0;
      const start = performance.now();
      const instance = autocannon(
        {
          url: target.url,
          connections: options.connections,
          duration: seconds,
          pipelining: 1,
          timeout: 10,
          headers: target.headers,
          requests,
        },
        (error, result) => {
          clearInterval(timer);
          if (error) reject(error);
          else resolve(result);
        },
      );
      instance.on("response", (_client, status, _bytes, ms) => {
        done++;
        if (histogram !== null && status >= 200 && status < 300) histogram.record(ms);
      });
      const timer = setInterval(
        () => options.onProgress?.(phase, (performance.now() - start) / 1000, done),
        250,
      );
    });

  if (options.warmupSeconds > 0) await run(options.warmupSeconds, "warm-up", null);
  const histogram = new Histogram();
  options.onWindow?.("open");
  const result = await run(options.seconds, "measure", histogram);
  options.onWindow?.("close");
  // autocannon's duration is what it actually ran (it stops on a timer tick).
  const seconds = result.duration > 0 ? result.duration : options.seconds;
  return {
    connections: options.connections,
    seconds,
    requests: histogram.count,
    requestsPerSecond: histogram.count / seconds,
    latencyMs: {
      p50: histogram.percentile(50),
      p99: histogram.percentile(99),
      p999: histogram.percentile(99.9),
      mean: histogram.count > 0 ? histogram.sum / histogram.count : Number.NaN,
      max: histogram.max,
    },
    non2xx: result.non2xx,
    statusClasses: { "3xx": result["3xx"], "4xx": result["4xx"], "5xx": result["5xx"] },
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
