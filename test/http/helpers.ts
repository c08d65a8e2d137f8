/** Shared pieces of the HTTP tests: a recording RPC handler, messages, and posting to a route. */
import type { AppendEntriesRequest, Entry } from "../../src/core/types.ts";
import type { RaftRpcHandler } from "../../src/http/routes.ts";
import type { RequestMessage, ResponseMessage } from "../../src/net/network.ts";

const encoder = new TextEncoder();

/** The answer a well-behaved node gives to `request` (null for TimeoutNow). */
export function answerTo(request: RequestMessage): ResponseMessage | null {
  const base = { term: request.term, from: request.to, to: request.from };
  switch (request.type) {
    case "appendEntries":
      return {
        type: "appendEntriesResponse",
        ...base,
        success: true,
        matchIndex: request.prevLogIndex + request.entries.length,
        rejectedIndex: 0,
        conflictTerm: 0,
        conflictIndex: 0,
      };
    case "heartbeat":
      return { type: "heartbeatResponse", ...base, round: request.round };
    case "requestVote":
      return { type: "requestVoteResponse", ...base, preVote: request.preVote, granted: true };
    case "timeoutNow":
      return null;
  }
}

/**
 * An RpcHandler that records every request and answers as a well-behaved node would. `gate`, when
 * set, holds each request until the test resolves it.
 */
export class RecordingHandler implements RaftRpcHandler {
  readonly calls: RequestMessage[] = [];
  gate: ((request: RequestMessage) => Promise<void>) | null = null;
  /** When set, every request is refused as by a stopped node. */
  down: Error | null = null;

  constructor(readonly id: string) {}

  async handle(request: RequestMessage): Promise<ResponseMessage | null> {
    this.calls.push(request);
    if (this.down) throw this.down;
    if (this.gate) await this.gate(request);
    return answerTo(request);
  }
}

/** An AppendEntries from n1 to `to` carrying commands `first..first+count-1`. */
export function appendEntries(
  to: string,
  first: number,
  count: number,
  overrides: Partial<AppendEntriesRequest> = {},
): AppendEntriesRequest {
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    entries.push({
      index: first + i,
      term: 2,
      kind: "command",
      data: encoder.encode(`c${first + i}`),
    });
  }
  return {
    type: "appendEntries",
    term: 2,
    from: "n1",
    to,
    prevLogIndex: first - 1,
    prevLogTerm: first === 1 ? 0 : 2,
    leaderCommit: 0,
    entries,
    ...overrides,
  };
}

/** One request of every type but AppendEntries, from n1 to `to`. */
export function jsonRequests(to: string, term = 2): RequestMessage[] {
  return [
    { type: "heartbeat", term, from: "n1", to, leaderCommit: 0, round: 3 },
    {
      type: "requestVote",
      term,
      from: "n1",
      to,
      preVote: false,
      lastLogIndex: 0,
      lastLogTerm: 0,
      transfer: false,
    },
    {
      type: "requestVote",
      term,
      from: "n1",
      to,
      preVote: true,
      lastLogIndex: 0,
      lastLogTerm: 0,
      transfer: false,
    },
    { type: "timeoutNow", term, from: "n1", to },
  ];
}

/** A request body: anything fetch takes, typed loosely enough for every runtime's lib. */
export type Body = string | Uint8Array | ReadableStream<Uint8Array> | null;

export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** POSTs `body` to `url` and returns the status and the parsed JSON body (null if none). */
export async function post(
  url: string,
  body: Body,
  contentType: string | null,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const init: RequestInit & { duplex?: "half" } = {
    method: "POST",
    body: body as RequestInit["body"],
    headers: contentType === null ? headers : { "Content-Type": contentType, ...headers },
  };
  if (body instanceof ReadableStream) init.duplex = "half";
  const response = await fetch(url, init);
  const text = await response.text();
  let parsed: unknown = text === "" ? null : text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed };
}

/** The JSON error message of an answer. */
export function errorOf(answer: Answer): string {
  const error = (answer.body as { error?: unknown } | null)?.error;
  return typeof error === "string" ? error : `(no error message: ${JSON.stringify(answer.body)})`;
}
