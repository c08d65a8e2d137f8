/** How a node reaches its peers. */
import type {
  InstallSnapshotRequest,
  InstallSnapshotResponse,
  Message,
  NodeId,
} from "../core/types.ts";

/** A request message: one that a peer answers. */
export type RequestMessage = Extract<
  Message,
  { type: "appendEntries" | "heartbeat" | "requestVote" | "timeoutNow" }
>;

/**
 * InstallSnapshot and its answer do not travel as plain messages: the snapshot is streamed as
 * {@link SnapshotChunk}s, and the receiving driver steps the installSnapshot message once the
 * last chunk is durable; its answer comes back as the last chunk's {@link SnapshotChunkResponse}.
 */
export type SnapshotMessage = Extract<
  Message,
  { type: "installSnapshot" | "installSnapshotResponse" }
>;

/** The answer to a request, or null when the peer chose not to answer (for example a stale vote). */
export type ResponseMessage = Exclude<Message, RequestMessage | SnapshotMessage>;

/**
 * Sends `message` to the peer at `address` and resolves with its answer. Rejects when the peer
 * cannot be reached or does not answer within `timeoutMs`; the driver then tells the core the
 * peer is unreachable. Implementations keep requests to one peer in order.
 */
export interface Network {
  /**
   * Sends a request to the peer `to` at `address` and resolves with its answer, or null when
   * the peer chose not to answer. Rejects when the peer cannot be reached or does not answer
   * within `timeoutMs`.
   */
  send(
    to: NodeId,
    address: string,
    message: RequestMessage,
    timeoutMs: number,
  ): Promise<ResponseMessage | null>;
  /**
   * Sends one chunk of a snapshot stream and resolves with the follower's answer. Rejects like
   * `send`; the sender then resumes from the last offset the follower acknowledged.
   */
  sendSnapshotChunk(
    to: NodeId,
    address: string,
    chunk: SnapshotChunk,
    timeoutMs: number,
  ): Promise<SnapshotChunkResponse>;
}

/**
 * One piece of a snapshot streamed from the leader to a follower (§7, thesis §5.3). `snapshot`
 * carries the InstallSnapshot metadata (the leader's term, sender, addressee, last included index
 * and term, membership); `data` is the bytes at `offset`. The last chunk has `done: true`; the
 * follower steps `snapshot` into its core only then, once every byte is durable aside.
 */
export interface SnapshotChunk {
  readonly snapshot: InstallSnapshotRequest;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
}

/** The follower's answer to a {@link SnapshotChunk}. */
export interface SnapshotChunkResponse {
  /** The follower's current term (a higher one tells the leader to step down, §5.1). */
  readonly term: number;
  readonly from: NodeId;
  readonly to: NodeId;
  /**
   * How many bytes of this snapshot the follower holds durably: where the next chunk must start.
   * It may be lower than the chunk's end (the follower lost or restarted its copy); the leader
   * then resends from it.
   */
  readonly offset: number;
  /** For the last chunk: the core's answer once the install is durable (or its rejection). */
  readonly answer: InstallSnapshotResponse | null;
}

/** What a transport calls when a request arrives for the local node (the `Raft` class). */
export interface RpcHandler {
  /**
   * Steps a peer's request into the node and resolves with its answer (null: none is due). The
   * answer to a message the node must persist first (entries, a vote) comes once it is durable.
   * Rejects when the node is stopped or the message is addressed to another node.
   */
  handle(message: RequestMessage): Promise<ResponseMessage | null>;
  /**
   * Writes a snapshot chunk aside and resolves with the bytes held durably; for the last chunk,
   * once the snapshot is installed. Rejects when the node has no snapshotStore, is stopped, or
   * the chunk is addressed to another node or malformed.
   */
  handleSnapshotChunk(chunk: SnapshotChunk): Promise<SnapshotChunkResponse>;
}
