/** How a node reaches its peers. */
import type { Message, NodeId } from "../core/types.ts";

/** A request message: one that a peer answers. */
export type RequestMessage = Extract<
  Message,
  { type: "appendEntries" | "heartbeat" | "requestVote" | "timeoutNow" }
>;

/**
 * InstallSnapshot and its answer do not travel as plain messages: the snapshot is streamed in
 * chunks by a route of its own (not there yet), whose end the receiving driver steps as an
 * installSnapshot message. Kept off the message wire for now.
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
  send(
    to: NodeId,
    address: string,
    message: RequestMessage,
    timeoutMs: number,
  ): Promise<ResponseMessage | null>;
}

/** What a transport calls when a request arrives for the local node (the `Raft` class). */
export interface RpcHandler {
  handle(message: RequestMessage): Promise<ResponseMessage | null>;
}
