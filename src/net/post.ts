/**
 * The HTTP seam of `FetchNetwork`: one POST to a peer, its answer read whole. Narrower than
 * `fetch`, so a runtime's own HTTP client can serve it without a web `Response` and stream per
 * request (adapters/node.ts's `createNodePost`); `postWithFetch` makes one of any `fetch`.
 */
import { BodyTooLargeError, readBody } from "../http/body.ts";

/** The part of `fetch` the transport uses. */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

/** One POST to a peer, as the transport makes it (see {@link PostFunction}). */
export interface PostRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array<ArrayBuffer> | string;
  /** The answer's body is read up to this many bytes, no further. */
  readonly maxBytes: number;
}

/** The answer to a {@link PostRequest}, read whole. */
export interface PostAnswer {
  readonly status: number;
  /** The body; null when it was longer than the request's `maxBytes`. */
  readonly body: Uint8Array | null;
}

/** A POST under way: its answer, and how to abandon it. */
export interface PendingPost {
  /**
   * Resolves once the status and the whole body (up to `maxBytes`) have arrived; rejects when
   * the request fails (no connection, reset mid-answer), or with cancel's reason once cancelled.
   */
  readonly answer: Promise<PostAnswer>;
  /** Abandons the request (closing its connection if needed); `answer` rejects with `reason`. */
  cancel(reason: unknown): void;
}

/**
 * What the transport needs of HTTP: one POST at a time, its answer read whole. Narrower than
 * `fetch`, so that a runtime's own HTTP client can serve it without building web `Response`
 * objects and streams (adapters/node.ts's `createNodePost`); {@link postWithFetch} makes one of
 * any `fetch`.
 */
export type PostFunction = (request: PostRequest) => PendingPost;

const EMPTY = new Uint8Array(0);

/**
 * A {@link PostFunction} on `fetch` (the global one by default): what FetchNetwork uses unless
 * it is given `post`.
 */
export function postWithFetch(
  fetchFunction: FetchFunction = (url, init) => fetch(url, init),
): PostFunction {
  return (request) => {
    const controller = new AbortController();
    const answer = (async (): Promise<PostAnswer> => {
      try {
        const response = await fetchFunction(request.url, {
          method: "POST",
          headers: request.headers,
          body: request.body,
          signal: controller.signal,
        });
        if (response.status === 204) {
          await response.body?.cancel();
          return { status: 204, body: EMPTY };
        }
        try {
          return { status: response.status, body: await readBody(response.body, request.maxBytes) };
        } catch (error) {
          if (error instanceof BodyTooLargeError) return { status: response.status, body: null };
          throw error;
        }
      } catch (error) {
        if (controller.signal.aborted) throw controller.signal.reason;
        throw error;
      }
    })();
    return { answer, cancel: (reason) => controller.abort(reason) };
  };
}
