/** Shared pieces of the HTTP tests: a recording RPC handler, messages, and posting to a route. */
import { Hono } from "hono";
import type { Server } from "../../adapters/server.ts";
import type { AppendEntriesRequest, Entry, Membership } from "../../src/core/types.ts";
import { Raft } from "../../src/driver/raft.ts";
import { type RaftRoutesOptions, type RaftRpcHandler, raftRoutes } from "../../src/http/routes.ts";
import { MemoryNetwork } from "../../src/net/memory.ts";
import type {
  RequestMessage,
  ResponseMessage,
  SnapshotChunk,
  SnapshotChunkResponse,
} from "../../src/net/network.ts";
import { MemoryLogStore } from "../../src/storage/memory.ts";
import { RecordingStateMachine, testConfig } from "../driver/harness.ts";
import { loadAdapter } from "../helpers/runtime.ts";

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
 * The answer a well-behaved follower gives to `chunk` when it holds every byte before it: it now
 * holds the chunk's end, and the last chunk is answered with the install's success.
 */
export function chunkAnswerTo(chunk: SnapshotChunk): SnapshotChunkResponse {
  const { snapshot } = chunk;
  const base = { term: snapshot.term, from: snapshot.to, to: snapshot.from };
  return {
    ...base,
    offset: chunk.offset + chunk.data.length,
    answer: chunk.done
      ? {
          type: "installSnapshotResponse",
          ...base,
          success: true,
          matchIndex: snapshot.lastIncludedIndex,
        }
      : null,
  };
}

/**
 * An RpcHandler that records every request and answers as a well-behaved node would. `gate`, when
 * set, holds each request until the test resolves it.
 */
export class RecordingHandler implements RaftRpcHandler {
  readonly calls: RequestMessage[] = [];
  /** Snapshot chunks received, in order (their data copied). */
  readonly chunks: SnapshotChunk[] = [];
  gate: ((request: RequestMessage) => Promise<void>) | null = null;
  /** Like `gate`, for snapshot chunks. */
  chunkGate: ((chunk: SnapshotChunk) => Promise<void>) | null = null;
  /** When set, every request is refused as by a stopped node. */
  down: Error | null = null;

  constructor(readonly id: string) {}

  async handle(request: RequestMessage): Promise<ResponseMessage | null> {
    this.calls.push(request);
    if (this.down) throw this.down;
    if (this.gate) await this.gate(request);
    return answerTo(request);
  }

  async handleSnapshotChunk(chunk: SnapshotChunk): Promise<SnapshotChunkResponse> {
    this.chunks.push({ ...chunk, data: chunk.data.slice() });
    if (this.down) throw this.down;
    if (this.chunkGate) await this.chunkGate(chunk);
    return chunkAnswerTo(chunk);
  }
}

/** The membership of a 3-node cluster n1..n3. */
export const threeNodes: Membership = {
  voters: ["n1", "n2", "n3"],
  learners: [],
  addresses: { n1: "http://n1/raft", n2: "http://n2/raft", n3: "http://n3/raft" },
};

/** A snapshot chunk from n1 to `to`: `data` at `offset` of snapshot 100 (term 2), in term 3. */
export function snapshotChunk(
  to: string,
  offset: number,
  data: Uint8Array,
  done: boolean,
  overrides: Partial<SnapshotChunk["snapshot"]> = {},
): SnapshotChunk {
  return {
    snapshot: {
      type: "installSnapshot",
      term: 3,
      from: "n1",
      to,
      lastIncludedIndex: 100,
      lastIncludedTerm: 2,
      membership: threeNodes,
      ...overrides,
    },
    offset,
    data,
    done,
  };
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

/**
 * A streamed body (no Content-Length) of `chunkBytes`-byte chunks filled with `fill`, that goes on
 * until `capBytes` have been pulled: a server must stop reading it, not buffer it all. `sent()`
 * tells how many bytes were pulled.
 */
export function endlessBody(
  chunkBytes: number,
  fill: number,
  capBytes: number,
): { stream: ReadableStream<Uint8Array>; sent: () => number } {
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      sent += chunkBytes;
      if (sent > capBytes) controller.close();
      else controller.enqueue(new Uint8Array(chunkBytes).fill(fill));
    },
  });
  return { stream, sent: () => sent };
}

/** The JSON error message of an answer. */
export function errorOf(answer: Answer): string {
  const error = (answer.body as { error?: unknown } | null)?.error;
  return typeof error === "string" ? error : `(no error message: ${JSON.stringify(answer.body)})`;
}

/** The cluster secret of the /secure mount of {@link serveMounts}. */
export const SECRET = "correct horse battery staple";

/** A Raft node n2 on a memory network, not started. */
function idleRaft(): Raft {
  return new Raft({
    id: "n2",
    config: testConfig,
    logStore: new MemoryLogStore(),
    stateMachine: new RecordingStateMachine(),
    network: new MemoryNetwork().endpoint("n2"),
  });
}

/**
 * Serves raftRoutes on 127.0.0.1 at five mounts: /open (`handler`), /small (`handler` with
 * `small`), /secure (`handler` with SECRET), /unstarted (a Raft node never started) and /stopped
 * (one started, then shut down). Returns the server and its origin.
 */
export async function serveMounts(
  handler: RaftRpcHandler,
  small: RaftRoutesOptions,
): Promise<{ server: Server; base: string }> {
  const { serve } = await loadAdapter();
  const stopped = idleRaft();
  await stopped.start();
  await stopped.shutdown();
  const app = new Hono();
  app.route("/open", raftRoutes(handler));
  app.route("/small", raftRoutes(handler, small));
  app.route("/secure", raftRoutes(handler, { secret: SECRET }));
  app.route("/unstarted", raftRoutes(idleRaft()));
  app.route("/stopped", raftRoutes(stopped));
  const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
  return { server, base: `http://127.0.0.1:${server.port}` };
}
