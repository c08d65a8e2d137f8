/** The events of the simulator's queue. Events naming a node and an incarnation die with it. */
import type { InstallSnapshotRequest, Message, NodeId, TimerName } from "../../mod.ts";
import type { SimSnapshot } from "./storage.ts";

export type SimEvent =
  | { readonly kind: "boot"; readonly node: number; readonly inc: number }
  | {
      readonly kind: "deliver";
      readonly from: number;
      readonly to: number;
      readonly message: Message;
    }
  | {
      readonly kind: "timer";
      readonly node: number;
      readonly inc: number;
      readonly timer: TimerName;
      readonly generation: number;
    }
  /** The oldest operation of the node's disk queue completes. */
  | { readonly kind: "disk"; readonly node: number; readonly inc: number }
  | {
      readonly kind: "applied";
      readonly node: number;
      readonly inc: number;
      readonly index: number;
    }
  | {
      readonly kind: "unreachable";
      readonly node: number;
      readonly inc: number;
      readonly peer: NodeId;
    }
  | { readonly kind: "crash"; readonly node: number; readonly inc: number; readonly downMs: number }
  | { readonly kind: "isolate"; readonly node: number; readonly inc: number }
  /** The partition of this epoch heals (unless a newer one replaced it). */
  | { readonly kind: "mend"; readonly epoch: number }
  /** The whole snapshot of stream `id` reached the follower (unless the stream was aborted). */
  | {
      readonly kind: "stream";
      readonly from: number;
      readonly inc: number;
      readonly to: number;
      readonly id: number;
      readonly message: InstallSnapshotRequest;
      readonly snapshot: SimSnapshot;
    }
  /** The leader's driver reports how stream `id` to `peer` ended. */
  | {
      readonly kind: "streamDone";
      readonly node: number;
      readonly inc: number;
      readonly peer: NodeId;
      readonly index: number;
      readonly success: boolean;
    }
  | { readonly kind: "client" }
  | { readonly kind: "chaos" };

/** A number per kind, for the trace hash. */
export const kindCode: Readonly<Record<SimEvent["kind"], number>> = {
  boot: 1,
  deliver: 2,
  timer: 3,
  disk: 4,
  applied: 5,
  unreachable: 6,
  client: 7,
  chaos: 8,
  crash: 9,
  mend: 10,
  isolate: 11,
  stream: 12,
  streamDone: 13,
};
