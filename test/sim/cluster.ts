/**
 * A simulated cluster that drives the core's `step` directly. One event queue ordered by
 * (simulated time, sequence), one seeded PRNG: a seed replays the same event trace.
 *
 * Storage model: storage effects join a per-node FIFO disk queue and complete after a random
 * delay; only then do they reach the durable store (and appendLog reports `persisted`). A send
 * with `afterPersist` waits until every storage effect emitted before it is durable. A crash
 * drops unfinished writes, held messages, timers and memory; a restart recovers from the store.
 */
import {
  activeConfig,
  allMembers,
  type CreateOptions,
  type Effect,
  type Entry,
  type Input,
  type InstallSnapshotRequest,
  type Membership,
  type Message,
  type NodeId,
  type RaftState,
  type StepResult,
} from "../../mod.ts";
import { SafetyChecker, SafetyViolation } from "./checks.ts";
import { Client } from "./client.ts";
import { describeEffect, describeInput, describeMessage } from "./describe.ts";
import { kindCode, type SimEvent } from "./events.ts";
import {
  afterElection,
  afterLeaderCommit,
  afterWrite,
  injectFault,
  isolateNode,
  mayCrash,
} from "./faults.ts";
import { calmLinks, Network } from "./network.ts";
import {
  crashNode,
  createNode,
  type DiskOp,
  describeNode,
  rebootNode,
  type SimNode,
} from "./node.ts";
import { commandId, encodeCommand } from "./payload.ts";
import { fingerprint } from "./purity.ts";
import { EventQueue } from "./queue.ts";
import type { Random } from "./random.ts";
import type { Scenario } from "./scenario.ts";
import type { SimSnapshot, StorageEffect } from "./storage.ts";

/** The core under test: the real one, or a mutant copy. */
export interface Core {
  createState(options: CreateOptions): RaftState;
  step(state: RaftState, input: Input): StepResult;
}

export interface SimStats {
  crashes: number;
  partitions: number;
  elections: number;
  maxTerm: number;
  proposals: number;
  accepted: number;
  truncations: number;
  loads: number;
  dropped: number;
  /** Linearizable reads served. */
  reads: number;
  /** Membership changes and transfers asked for, and those accepted. */
  changes: number;
  transfers: number;
  adminAccepted: number;
  /** Snapshots built, streams started, installs, purges. */
  snapshots: number;
  streams: number;
  installs: number;
  purges: number;
}

export class Cluster {
  readonly nodes: SimNode[];
  readonly checker = new SafetyChecker();
  readonly network: Network;
  readonly stats: SimStats = {
    crashes: 0,
    partitions: 0,
    elections: 0,
    maxTerm: 0,
    proposals: 0,
    accepted: 0,
    truncations: 0,
    loads: 0,
    dropped: 0,
    reads: 0,
    changes: 0,
    transfers: 0,
    adminAccepted: 0,
    snapshots: 0,
    streams: 0,
    installs: 0,
    purges: 0,
  };
  /** Ids of snapshot streams. */
  private streamSeq = 0;
  now = 0;
  /** Events that did something (stale timers and events of dead incarnations are not counted). */
  events = 0;
  /** Steps of any node so far. */
  private steps = 0;
  trace = 0x811c9dc5;
  /** Chaos is injected only while true; heal() ends the fault phase. */
  faults = true;
  /** Bumped by every partition; a scheduled mend heals only the latest one. */
  private partitionEpoch = 0;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly byId = new Map<NodeId, number>();
  private readonly membership: Membership;
  private readonly client: Client;
  /** Set when the node stepped by propose() accepted the proposal. */
  private proposalAccepted = false;
  /** Commands numbered from here were proposed after the heal. */
  private healFirstCommand = Number.POSITIVE_INFINITY;
  /** Index of the first post-heal command applied anywhere; 0 until there is one. */
  private livenessIndex = 0;

  constructor(
    private readonly core: Core,
    readonly scenario: Scenario,
    readonly rng: Random,
    private readonly log?: (line: string) => void,
  ) {
    const ids = [...scenario.voters, ...scenario.learners, ...scenario.spares];
    this.membership = { voters: scenario.voters, learners: scenario.learners, addresses: {} };
    this.network = new Network(ids.length, scenario.links);
    this.client = new Client(
      rng,
      ids.length,
      scenario.maxOutstanding,
      2 * scenario.config.electionTimeoutMaxMs,
    );
    this.nodes = ids.map((id, index) => {
      this.byId.set(id, index);
      return createNode(id, index, scenario.founders.includes(id));
    });
  }

  /** Queues an event; one in the past runs now (after those already queued for now). */
  schedule(time: number, event: SimEvent): void {
    this.queue.push(Math.max(time, this.now), event);
  }

  /** Schedules the boot of every node, the client and the first fault. */
  start(): void {
    for (const node of this.nodes) {
      this.schedule(this.rng.int(0, 20), { kind: "boot", node: node.index, inc: 0 });
    }
    this.schedule(this.rng.int(0, this.scenario.clientGapMs), { kind: "client" });
    this.schedule(this.rng.int(0, 2 * this.scenario.chaosGapMs), { kind: "chaos" });
  }

  /** Runs the next event; false if nothing is left to run. */
  runOne(): boolean {
    for (;;) {
      const next = this.queue.pop();
      if (!next) return false;
      const ev = next.item;
      if (!this.isCurrent(ev)) continue;
      this.now = next.time;
      this.events++;
      const node = "node" in ev ? ev.node : "to" in ev ? ev.to : 15;
      this.mix(this.now);
      this.mix(kindCode[ev.kind] * 16 + node);
      this.handle(ev);
      return true;
    }
  }

  private isCurrent(ev: SimEvent): boolean {
    switch (ev.kind) {
      case "boot": {
        const node = this.nodes[ev.node] as SimNode;
        return !node.up && node.inc === ev.inc;
      }
      case "timer": {
        const node = this.nodes[ev.node] as SimNode;
        return node.up && node.inc === ev.inc && node.timerGen[ev.timer] === ev.generation;
      }
      case "disk":
      case "applied":
      case "unreachable":
      case "streamDone":
      case "crash":
      case "isolate": {
        const node = this.nodes[ev.node] as SimNode;
        return node.up && node.inc === ev.inc;
      }
      case "chaos":
        return this.faults;
      case "mend":
        return this.faults && ev.epoch === this.partitionEpoch;
      default:
        return true;
    }
  }

  private mix(value: number): void {
    this.trace = Math.imul(this.trace ^ (value | 0), 0x01000193) >>> 0;
  }

  private handle(ev: SimEvent): void {
    switch (ev.kind) {
      case "boot":
        this.boot(this.nodes[ev.node] as SimNode);
        return;
      case "deliver": {
        const to = this.nodes[ev.to] as SimNode;
        if (!to.up || this.network.isBlocked(ev.from, ev.to)) {
          this.verbose(`drop ${describeMessage(ev.message)}`);
          this.dropped(ev.from, ev.to);
          return;
        }
        this.step(to, { type: "message", message: ev.message });
        return;
      }
      case "timer":
        this.step(this.nodes[ev.node] as SimNode, {
          type: "timeout",
          timer: ev.timer,
          generation: ev.generation,
        });
        return;
      case "disk":
        this.completeDisk(this.nodes[ev.node] as SimNode);
        return;
      case "applied":
        this.step(this.nodes[ev.node] as SimNode, { type: "applied", index: ev.index });
        return;
      case "unreachable":
        this.step(this.nodes[ev.node] as SimNode, { type: "unreachable", peer: ev.peer });
        return;
      case "stream":
        this.deliverSnapshot(ev);
        return;
      case "streamDone":
        this.step(this.nodes[ev.node] as SimNode, {
          type: "snapshotSent",
          peer: ev.peer,
          index: ev.index,
          success: ev.success,
        });
        return;
      case "mend":
        this.network.healPartitions();
        this.verbose("partition heals");
        return;
      case "isolate":
        if (this.faults) isolateNode(this, this.nodes[ev.node] as SimNode);
        return;
      case "crash":
        if (mayCrash(this)) this.crash(this.nodes[ev.node] as SimNode, ev.downMs);
        return;
      case "client":
        // After the heal the client only probes: liveness is about recovery, not throughput.
        if (!this.faults) this.propose(1);
        else if (this.rng.chance(this.scenario.readRate)) this.read();
        else this.propose(this.rng.int(1, 3));
        // Without a known leader the client backs off, as a real one would.
        this.schedule(
          this.now +
            this.rng.int(
              1,
              this.faults && this.client.leaderHint !== null
                ? 2 * this.scenario.clientGapMs
                : this.scenario.config.electionTimeoutMinMs,
            ),
          ev,
        );
        return;
      case "chaos":
        injectFault(this);
        this.schedule(this.now + this.rng.int(1, 2 * this.scenario.chaosGapMs), ev);
        return;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Node lifecycle

  private boot(node: SimNode): void {
    rebootNode(node, this.now);
    const restored = node.store.isEmpty ? undefined : node.store.restored();
    const snapshot = node.store.snapshot;
    if (snapshot) this.checker.snapshot(node.id, "restores from", snapshot.index, snapshot.applied);
    this.verbose(`${node.id} boots (inc ${node.inc}, durable log ${node.store.entries.length})`);
    try {
      node.state = this.core.createState({
        id: node.id,
        config: this.scenario.config,
        seed: this.rng.uint32(),
        restored,
      });
    } catch (error) {
      throw new SafetyViolation("core threw", `${node.id} createState: ${String(error)}`, error);
    }
    this.step(node, { type: "start" });
    // The application bootstraps founders whose log is empty; the core refuses if it must.
    if (node.founder && node.store.entries.length === 0) {
      this.step(node, { type: "initialize", membership: this.membership });
    }
  }

  /** Crashes a node: memory, unfinished writes, held messages and timers are lost. */
  crash(node: SimNode, downMs: number | undefined): void {
    if (!node.up) return;
    this.verbose(`${node.id} crashes (${node.disk.length} disk ops lost)`);
    const { won } = node;
    if (won && !won.announced && node.store.hardState.term < won.term) {
      this.checker.unelected(node.id, won.term);
    }
    crashNode(node);
    this.stats.crashes++;
    if (this.client.leaderHint === node.index) this.client.leaderHint = null;
    if (downMs !== undefined) {
      this.schedule(this.now + downMs, { kind: "boot", node: node.index, inc: node.inc });
    }
  }

  /** A partition was made (replacing any earlier one): it heals by itself after `durationMs`. */
  partitioned(durationMs: number): void {
    this.stats.partitions++;
    this.schedule(this.now + durationMs, { kind: "mend", epoch: ++this.partitionEpoch });
  }

  restart(node: SimNode): void {
    if (!node.up) this.schedule(this.now, { kind: "boot", node: node.index, inc: node.inc });
  }

  /** Ends the fault phase: no more faults, every node restarted, a calm network. */
  heal(): void {
    this.faults = false;
    this.network.healPartitions();
    this.network.params = calmLinks(this.scenario.links.maxDelayMs);
    for (const node of this.nodes) this.restart(node);
    this.healFirstCommand = this.client.nextCommand;
    this.verbose("heal");
  }

  /**
   * Liveness: exactly one leader, a voter of its own configuration, which is committed and not
   * joint (a change under way is finished); and a command proposed after heal() applied on every
   * member of that configuration (removed nodes and spares are not waited for).
   */
  isLive(): boolean {
    if (this.livenessIndex === 0) return false;
    const leaders = this.nodes.filter((n) => n.up && n.state?.role === "leader");
    const leader = leaders[0]?.state;
    if (leaders.length !== 1 || !leader) return false;
    const active = activeConfig(leader.configs);
    const m = active.membership;
    if (m.outgoing !== undefined || active.index > leader.commitIndex) return false;
    if (!m.voters.includes(leader.id)) return false;
    for (const id of allMembers(m)) {
      const node = this.nodes[this.byId.get(id) as number] as SimNode;
      if (!node.up || node.applied < this.livenessIndex) return false;
    }
    return true;
  }

  /** Steps `node` with an admin input (membership change or leadership transfer). */
  admin(node: SimNode, input: Input): void {
    if (input.type === "changeMembership") this.stats.changes++;
    else this.stats.transfers++;
    const accepted = this.stats.adminAccepted;
    this.step(node, input);
    // A leader cut off right after appending C_old,new leaves the joint entry on a minority,
    // where a wrong joint quorum would let the two halves decide apart (thesis §4.3).
    if (input.type === "changeMembership" && this.stats.adminAccepted > accepted) {
      afterElection(this, node);
    }
  }

  /** Steps `node` with an on-demand snapshot request. */
  triggerSnapshot(node: SimNode): void {
    this.step(node, { type: "triggerSnapshot", requestId: this.client.nextRequest++ });
  }

  nextRequest(): number {
    return this.client.nextRequest++;
  }

  // ------------------------------------------------------------------------------------------
  // Stepping and effects

  private step(node: SimNode, input: Input): void {
    const before = node.state as RaftState;
    let result: StepResult;
    try {
      result = this.core.step(before, input);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new SafetyViolation(
        "core threw",
        `${node.id} on ${describeInput(input)}: ${message}`,
        error,
      );
    }
    // Every 16th step runs twice: the same state and input must give the same result.
    if (++this.steps % 16 === 0) {
      const first = fingerprint(result);
      if (fingerprint(this.core.step(before, input)) !== first) {
        throw new SafetyViolation(
          "pure step",
          `${node.id} on ${describeInput(input)}: stepping the same state again gave another result`,
        );
      }
    }
    const after = result.state;
    node.state = after;
    this.mix(result.effects.length);
    if (this.log) {
      this.verbose(`${node.id} <- ${describeInput(input)}`);
      for (const effect of result.effects) this.log(`    ${describeEffect(effect)}`);
    }
    const elected =
      after.role === "leader" && (before.role !== "leader" || before.term !== after.term);
    if (elected) {
      this.checker.elected(node.id, after.term);
      node.won = { term: after.term, announced: false };
    }
    for (const effect of result.effects) this.execute(node, effect, before, after);
    this.checkStep(node, before, after, elected);
  }

  private checkStep(node: SimNode, before: RaftState, after: RaftState, elected: boolean): void {
    const log = node.shadow;
    const lastTerm = log.length === 0 ? 0 : (log[log.length - 1] as Entry).term;
    if (after.log.lastIndex !== log.length || after.log.lastTerm !== lastTerm) {
      throw new SafetyViolation(
        "effects",
        `${node.id}: effects describe a log ending at ${log.length}/t${lastTerm}, ` +
          `the state's ends at ${after.log.lastIndex}/t${after.log.lastTerm}`,
      );
    }
    if (after.commitIndex < before.commitIndex) {
      throw new SafetyViolation(
        "commit monotonic",
        `${node.id} commit index moved back ${before.commitIndex} -> ${after.commitIndex}`,
      );
    }
    if (after.commitIndex > before.commitIndex) {
      this.checker.commit(node.id, log, before.commitIndex + 1, after.commitIndex, after.term);
      if (after.role === "leader") afterLeaderCommit(this, node);
    }
    if (elected) {
      this.stats.elections++;
      this.checker.complete(node.id, after.term, log);
      afterElection(this, node);
    }
    if (after.term > this.stats.maxTerm) this.stats.maxTerm = after.term;
  }

  private execute(node: SimNode, effect: Effect, before: RaftState, after: RaftState): void {
    switch (effect.type) {
      case "saveHardState":
        this.write(node, effect);
        return;
      case "truncateLog":
        this.checker.truncate(
          node.id,
          node.shadow,
          effect.fromIndex,
          before.commitIndex,
          after.term,
        );
        if (effect.fromIndex <= node.shadow.length) this.stats.truncations++;
        node.shadow.length = Math.min(node.shadow.length, effect.fromIndex - 1);
        this.write(node, effect);
        return;
      case "appendLog":
        for (const entry of effect.entries) {
          this.checker.append(node.id, node.shadow, entry);
          node.shadow.push(entry);
        }
        this.write(node, effect);
        return;
      case "send":
        if (effect.afterPersist && node.writesDone < node.writesEmitted) {
          node.held.push({ barrier: node.writesEmitted, message: effect.message });
        } else {
          this.transmit(node, effect.message);
        }
        return;
      case "apply":
        for (const entry of effect.entries) this.applyEntry(node, entry, after);
        node.applyBusyUntil = Math.max(
          node.applyBusyUntil,
          this.now + this.rng.int(0, this.scenario.maxApplyDelayMs),
        );
        this.schedule(node.applyBusyUntil, {
          kind: "applied",
          node: node.index,
          inc: node.inc,
          index: node.applied,
        });
        return;
      case "armTimer":
        node.timerGen[effect.timer] = effect.generation;
        this.schedule(this.now + effect.afterMs, {
          kind: "timer",
          node: node.index,
          inc: node.inc,
          timer: effect.timer,
          generation: effect.generation,
        });
        return;
      case "cancelTimer":
        node.timerGen[effect.timer] = -1;
        return;
      case "loadEntries":
        this.stats.loads++;
        this.enqueueDisk(node, {
          kind: "read",
          peer: effect.peer,
          fromIndex: effect.fromIndex,
          toIndex: effect.toIndex,
        });
        return;
      case "proposalAccepted":
        this.stats.accepted++;
        this.proposalAccepted = true;
        this.client.leaderHint = node.index;
        return;
      case "readIndexReady":
        this.checker.readServed(node.id, effect.requestId, effect.index, after.commitIndex);
        this.stats.reads++;
        return;
      case "readIndexRejected":
        this.checker.readRejected(effect.requestId);
        this.client.leaderHint = this.indexOf(effect.leaderId);
        return;
      case "proposalRejected":
        this.client.leaderHint = this.indexOf(effect.leaderId);
        return;
      case "roleChanged":
        if (effect.role === "leader") this.client.leaderHint = node.index;
        return;
      case "adminAccepted":
        this.stats.adminAccepted++;
        return;
      case "buildSnapshot":
        this.buildSnapshot(node, effect);
        return;
      case "purgeLog":
        this.stats.purges++;
        this.write(node, effect);
        return;
      case "sendSnapshot":
        this.sendSnapshot(node, effect.peer, effect.index, effect.term, after.term);
        return;
      case "cancelSnapshot":
        node.streams.delete(effect.peer);
        return;
      case "installSnapshot":
        this.installSnapshot(node, effect, before, after);
        return;
      case "snapshotTriggered":
      case "initializeRejected":
      case "adminRejected":
      case "transferAborted":
        return;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots (§7)

  /** The state machine is snapshotted now (it applies synchronously here), then written. */
  private buildSnapshot(node: SimNode, effect: Extract<Effect, { type: "buildSnapshot" }>): void {
    const { index, term, membership } = effect;
    const applied = node.appliedEntries.slice(0, index);
    if (index !== node.applied || applied[index - 1]?.term !== term) {
      throw new SafetyViolation(
        "snapshot",
        `${node.id} snapshots ${index}/t${term}, but its state machine applied up to ${node.applied}`,
      );
    }
    let config: Membership | undefined;
    for (let i = index - 1; i >= 0 && !config; i--) {
      const entry = applied[i] as Entry;
      if (entry.kind === "membership") config = entry.membership;
    }
    if (JSON.stringify(config) !== JSON.stringify(membership)) {
      throw new SafetyViolation(
        "snapshot",
        `${node.id} snapshots ${index} with membership ${JSON.stringify(membership)}, but ` +
          `${JSON.stringify(config)} is in force there`,
      );
    }
    this.checker.snapshot(node.id, "builds", index, applied);
    this.stats.snapshots++;
    this.enqueueDisk(node, { kind: "build", snapshot: { index, term, membership, applied } });
  }

  /** The leader's driver streams its durable snapshot; it arrives whole after a while, or not. */
  private sendSnapshot(
    node: SimNode,
    peer: NodeId,
    index: number,
    term: number,
    leaderTerm: number,
  ): void {
    const id = ++this.streamSeq;
    node.streams.set(peer, id); // replaces (aborts) an earlier stream to that peer
    this.stats.streams++;
    const snapshot = node.store.snapshot;
    const to = this.byId.get(peer) as number;
    if (!snapshot || snapshot.index !== index || snapshot.term !== term) {
      this.schedule(this.now + this.rng.int(1, 10), {
        kind: "streamDone",
        node: node.index,
        inc: node.inc,
        peer,
        index,
        success: false,
      });
      return;
    }
    const message: InstallSnapshotRequest = {
      type: "installSnapshot",
      term: leaderTerm,
      from: node.id,
      to: peer,
      lastIncludedIndex: index,
      lastIncludedTerm: term,
      membership: snapshot.membership,
    };
    // Several round trips of chunks.
    const delay = this.rng.int(1, 4 * this.network.params.maxDelayMs + 20);
    this.schedule(this.now + delay, {
      kind: "stream",
      from: node.index,
      inc: node.inc,
      to,
      id,
      message,
      snapshot,
    });
  }

  /** The last chunk arrives: the follower steps InstallSnapshot; the leader hears how it went. */
  private deliverSnapshot(ev: Extract<SimEvent, { kind: "stream" }>): void {
    const leader = this.nodes[ev.from] as SimNode;
    const peer = ev.message.to;
    if (!leader.up || leader.inc !== ev.inc || leader.streams.get(peer) !== ev.id) {
      this.verbose(`snapshot stream ${ev.id} to ${peer} was aborted`);
      return;
    }
    leader.streams.delete(peer);
    const to = this.nodes[ev.to] as SimNode;
    const success =
      to.up &&
      !this.network.isBlocked(ev.from, ev.to) &&
      !this.rng.chance(Math.min(0.5, 2 * this.network.params.lossRate));
    if (success) {
      to.incoming = ev.snapshot;
      this.step(to, { type: "message", message: ev.message });
    } else {
      this.verbose(`snapshot stream ${ev.id} to ${peer} failed`);
    }
    this.schedule(this.now + this.rng.int(1, this.network.params.maxDelayMs), {
      kind: "streamDone",
      node: leader.index,
      inc: leader.inc,
      peer,
      index: ev.message.lastIncludedIndex,
      success,
    });
  }

  /** The follower installs what it received: its log and state machine, atomically on disk. */
  private installSnapshot(
    node: SimNode,
    effect: Extract<Effect, { type: "installSnapshot" }>,
    before: RaftState,
    after: RaftState,
  ): void {
    const snapshot: SimSnapshot | null = node.incoming;
    const { index, term, discardLog } = effect;
    if (!snapshot || snapshot.index !== index || snapshot.term !== term) {
      throw new SafetyViolation(
        "install",
        `${node.id} installs ${index}/t${term}, a snapshot it never received`,
      );
    }
    if (JSON.stringify(effect.membership) !== JSON.stringify(snapshot.membership)) {
      throw new SafetyViolation("install", `${node.id} installs ${index} with another membership`);
    }
    this.checker.snapshot(node.id, "installs", index, snapshot.applied);
    if (discardLog) {
      this.checker.truncate(node.id, node.shadow, index + 1, before.commitIndex, after.term);
    } else if (node.shadow[index - 1]?.term !== term) {
      throw new SafetyViolation(
        "install",
        `${node.id} keeps its log after ${index}, but its entry there is not of term ${term}`,
      );
    }
    node.shadow = [...snapshot.applied, ...(discardLog ? [] : node.shadow.slice(index))];
    // The state machine takes the snapshot's state, in order with apply.
    node.appliedEntries = snapshot.applied.slice();
    node.applied = index;
    this.stats.installs++;
    this.write(node, { ...effect, snapshot });
  }

  /** The state machine applies one entry: committed, durable, in order, the same everywhere. */
  private applyEntry(node: SimNode, entry: Entry, after: RaftState): void {
    if (entry.index > after.commitIndex) {
      throw new SafetyViolation(
        "apply",
        `${node.id} applies ${entry.index} above commit ${after.commitIndex}`,
      );
    }
    const stored = node.store.entries[entry.index - 1];
    const doomed = node.disk.some(
      (op) =>
        op.kind === "write" &&
        ((op.effect.type === "truncateLog" && op.effect.fromIndex <= entry.index) ||
          (op.effect.type === "installSnapshot" &&
            op.effect.discardLog &&
            op.effect.index < entry.index)),
    );
    if (stored !== entry || doomed) {
      throw new SafetyViolation(
        "apply before durable",
        `${node.id} applies ${entry.index}/t${entry.term} which is not durable in its store`,
      );
    }
    this.checker.apply(node.id, node.applied, entry);
    node.applied = entry.index;
    node.appliedEntries.push(entry);
    if (
      this.livenessIndex === 0 &&
      entry.kind === "command" &&
      commandId(entry.data) >= this.healFirstCommand
    ) {
      this.livenessIndex = entry.index;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Disk

  private write(node: SimNode, effect: StorageEffect): void {
    node.writesEmitted++;
    this.enqueueDisk(node, { kind: "write", effect });
    afterWrite(this, node, effect);
  }

  private enqueueDisk(node: SimNode, op: DiskOp): void {
    node.disk.push(op);
    // A random latency per operation, completing in order (writes are group-committed).
    const stall = this.faults && this.rng.chance(this.scenario.diskStallRate);
    const latency = this.rng.int(0, this.scenario.maxDiskDelayMs * (stall ? 10 : 1));
    node.diskBusyUntil = Math.max(node.diskBusyUntil, this.now + latency);
    this.schedule(node.diskBusyUntil, { kind: "disk", node: node.index, inc: node.inc });
  }

  /** The oldest disk operation completes (FIFO: one sequence of writes per node). */
  private completeDisk(node: SimNode): void {
    const op = node.disk.shift();
    if (!op) throw new Error(`simulator: ${node.id} disk completion without an operation`);
    if (op.kind === "read") {
      const entries = node.store.read(op.fromIndex, op.toIndex);
      this.step(node, { type: "entriesLoaded", peer: op.peer, entries });
      return;
    }
    if (op.kind === "build") {
      node.store.saveSnapshot(op.snapshot);
      const { index, term } = op.snapshot;
      this.step(node, { type: "snapshotBuilt", index, term });
      return;
    }
    if (op.effect.type === "appendLog") {
      const stored = node.store.entries;
      this.exist(node, op.effect.entries, stored.length === 0 ? 0 : (stored.at(-1) as Entry).term);
    }
    node.store.write(op.effect);
    node.writesDone++;
    while (node.held.length > 0 && (node.held[0]?.barrier ?? 0) <= node.writesDone) {
      this.transmit(node, (node.held.shift() as { message: Message }).message);
    }
    if (op.effect.type === "appendLog") {
      const last = op.effect.entries[op.effect.entries.length - 1] as Entry;
      const { epoch } = op.effect;
      this.step(node, { type: "persisted", index: last.index, term: last.term, epoch });
    } else if (op.effect.type === "installSnapshot") {
      const { index, term } = op.effect;
      this.step(node, { type: "snapshotInstalled", index, term });
    }
  }

  // ------------------------------------------------------------------------------------------
  // Network and client

  /** Entries that became real (durable or sent), following an entry of `prevTerm`. */
  private exist(node: SimNode, entries: readonly Entry[], prevTerm: number): void {
    let prev = prevTerm;
    for (const entry of entries) {
      this.checker.exists(node.id, entry, prev);
      prev = entry.term;
    }
  }

  private transmit(node: SimNode, message: Message): void {
    if (message.type === "appendEntries") this.exist(node, message.entries, message.prevLogTerm);
    // Only a leader's requests announce its leadership (a vote denial carrying the new term
    // lets no one act on it).
    const asLeader =
      message.type === "appendEntries" ||
      message.type === "heartbeat" ||
      message.type === "timeoutNow" ||
      message.type === "installSnapshot";
    if (asLeader && node.won?.term === message.term) node.won.announced = true;
    const to = this.byId.get(message.to);
    if (to === undefined || to === node.index) {
      throw new SafetyViolation(
        "send",
        `${node.id} sends to ${message.to}: ${describeMessage(message)}`,
      );
    }
    const delays = this.network.fate(this.rng, node.index, to);
    if (delays.length === 0) {
      this.stats.dropped++;
      if (this.network.isBlocked(node.index, to)) this.dropped(node.index, to);
    }
    for (const delay of delays) {
      this.schedule(this.now + delay, { kind: "deliver", from: node.index, to, message });
    }
  }

  /** A message could not get through: sometimes the sender's transport says so. */
  private dropped(from: number, to: number): void {
    const sender = this.nodes[from] as SimNode;
    if (!sender.up || !this.rng.chance(0.2)) return;
    this.schedule(this.now + this.rng.int(1, 50), {
      kind: "unreachable",
      node: from,
      inc: sender.inc,
      peer: (this.nodes[to] as SimNode).id,
    });
  }

  private indexOf(id: NodeId | null): number | null {
    return id === null ? null : (this.byId.get(id) ?? null);
  }

  /** The client asks for a linearizable read; it must see everything committed by now. */
  private read(): void {
    const node = this.nodes[this.client.target()] as SimNode;
    if (!node.up) return;
    const requestId = this.client.nextRequest++;
    this.checker.readArrived(requestId);
    this.step(node, { type: "readIndex", requestId });
  }

  /** The client proposes up to `count` fresh commands, as many as its limit allows. */
  propose(count: number): void {
    const room = this.client.room(this.now, (id) => this.checker.isApplied(id));
    const size = Math.min(count, room);
    if (size <= 0) return;
    const node = this.nodes[this.client.target()] as SimNode;
    this.stats.proposals++;
    if (!node.up) {
      this.client.leaderHint = null;
      return;
    }
    const commands: Uint8Array[] = [];
    for (let i = 0; i < size; i++)
      commands.push(encodeCommand(this.client.nextCommand++, this.rng));
    this.proposalAccepted = false;
    this.step(node, { type: "propose", requestId: this.client.nextRequest++, commands });
    if (this.proposalAccepted) this.client.accepted(this.client.nextCommand - 1, size, this.now);
  }

  verbose(line: string): void {
    this.log?.(`#${this.events} t=${this.now} ${line}`);
  }

  /** A summary of every node, for failure reports. */
  describeNodes(): string {
    return this.nodes.map(describeNode).join("; ");
  }
}
