/** One simulated node: its durable store, and what it loses in a crash. */
import type { Entry, Message, NodeId, RaftState, TimerName } from "../../mod.ts";
import { DurableStore, type SimSnapshot, type StorageEffect } from "./storage.ts";

export type DiskOp =
  | { readonly kind: "write"; readonly effect: StorageEffect }
  | {
      readonly kind: "read";
      readonly peer: NodeId;
      readonly fromIndex: number;
      readonly toIndex: number;
    }
  /** A snapshot being written (buildSnapshot); reported by snapshotBuilt when durable. */
  | { readonly kind: "build"; readonly snapshot: SimSnapshot };

export interface SimNode {
  readonly id: NodeId;
  readonly index: number;
  readonly founder: boolean;
  readonly store: DurableStore;
  up: boolean;
  /** Incarnation: bumped at every boot, so events of an earlier life are ignored. */
  inc: number;
  // Everything below is volatile: reset at every boot.
  state: RaftState | undefined;
  /** Disk operations not yet complete, oldest first. */
  disk: DiskOp[];
  diskBusyUntil: number;
  writesEmitted: number;
  writesDone: number;
  /** afterPersist sends waiting until writesDone reaches their barrier. */
  held: { readonly barrier: number; readonly message: Message }[];
  /** The log as the effects emitted so far describe it (all of it, not the core's window). */
  shadow: Entry[];
  /** The state machine's last applied index (it is rebuilt from the snapshot at every boot). */
  applied: number;
  /** The state machine's state: the entries it applied, index 1 first. */
  appliedEntries: Entry[];
  /** The latest snapshot received from a leader, written aside until the core installs it. */
  incoming: SimSnapshot | null;
  /** Leader: the snapshot stream running to each peer (its id); a newer one replaces it. */
  streams: Map<NodeId, number>;
  applyBusyUntil: number;
  /** The generation each timer was last armed with; -1 when cancelled. */
  timerGen: Record<TimerName, number>;
  /** The term this life won an election in and whether any message of that term left. */
  won: { term: number; announced: boolean } | null;
}

export function createNode(id: NodeId, index: number, founder: boolean): SimNode {
  return {
    id,
    index,
    founder,
    store: new DurableStore(),
    up: false,
    inc: 0,
    state: undefined,
    disk: [],
    diskBusyUntil: 0,
    writesEmitted: 0,
    writesDone: 0,
    held: [],
    shadow: [],
    applied: 0,
    appliedEntries: [],
    incoming: null,
    streams: new Map(),
    applyBusyUntil: 0,
    timerGen: { election: -1, heartbeat: -1 },
    won: null,
  };
}

/** A new incarnation: memory starts over from what the store holds. */
export function rebootNode(node: SimNode, now: number): void {
  node.up = true;
  node.inc++;
  node.state = undefined;
  node.disk = [];
  node.diskBusyUntil = now;
  node.writesEmitted = 0;
  node.writesDone = 0;
  node.held = [];
  node.shadow = node.store.entries.slice();
  const snapshot = node.store.snapshot;
  node.appliedEntries = snapshot ? snapshot.applied.slice() : [];
  node.applied = snapshot?.index ?? 0;
  node.incoming = null;
  node.streams = new Map();
  node.applyBusyUntil = now;
  node.timerGen = { election: -1, heartbeat: -1 };
  node.won = null;
}

/** A crash: unfinished writes and held messages are lost (timers die with the incarnation). */
export function crashNode(node: SimNode): void {
  node.up = false;
  node.disk = [];
  node.held = [];
  node.streams = new Map();
  node.incoming = null;
}

export function describeNode(node: SimNode): string {
  const s = node.state;
  if (!node.up || !s) return `${node.id}: down (durable log ${node.store.entries.length})`;
  return (
    `${node.id}: ${s.role} t${s.term} leader=${s.leaderId} last=${s.log.lastIndex}/t${s.log.lastTerm} ` +
    `commit=${s.commitIndex} applied=${node.applied}`
  );
}
