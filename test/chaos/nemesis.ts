/**
 * The nemesis: faults on a seeded schedule, one at a time, each held for a while, then healed,
 * then a quiet spell. The schedule draws kinds in rounds: each round is a seeded shuffle of every
 * kind, so a run that completes a round has injected each kind at least once.
 *
 * | kind               | fault                                                                |
 * |--------------------|----------------------------------------------------------------------|
 * | kill               | `kill -9` of one or two nodes (the leader half the time), restarted   |
 * |                    | from their data after the hold; half the time the leader compacts its |
 * |                    | log meanwhile (POST /admin/snapshot), so they catch up by a snapshot  |
 * | pause              | SIGSTOP of one or two nodes (the leader half the time), then SIGCONT  |
 * | partition-split    | a majority/minority split (3 | 2), both ways                          |
 * | partition-leader   | the leader isolated from everyone, both ways                         |
 * | partition-bridge   | two pairs cut from each other; the fifth node sees both (a bridge)   |
 * | partition-oneway   | one node's outgoing or incoming links cut, the other direction open  |
 * | transfer-leader    | POST /admin/transfer-leader on the leader (to a random voter or any) |
 * | membership         | a voter removed (POST /admin/membership), then re-added as a learner  |
 * |                    | (POST /admin/learners) and made a voter again                         |
 *
 * Partitions refuse connections or black-hole them (seeded choice); see proxy.ts.
 */
import type { Random } from "../sim/random.ts";
import type { ChaosCluster, ChaosNode, Status } from "./cluster.ts";
import type { LeaderObserver } from "./observer.ts";
import type { LinkMode } from "./proxy.ts";

export const FAULT_KINDS = [
  "kill",
  "pause",
  "partition-split",
  "partition-leader",
  "partition-bridge",
  "partition-oneway",
  "transfer-leader",
  "membership",
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultEvent {
  readonly kind: FaultKind;
  /** Milliseconds since the nemesis started. */
  readonly at: number;
  readonly detail: string;
}

export interface NemesisOptions {
  /** How long a fault is held, in ms: [min, max]. */
  readonly holdMs: readonly [number, number];
  /** The quiet spell after a fault is healed, in ms: [min, max]. */
  readonly quietMs: readonly [number, number];
  /** Bound of one admin operation (with its retries) and of a restarted node's start. */
  readonly adminDeadlineMs: number;
}

interface AdminAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export class Nemesis {
  readonly events: FaultEvent[] = [];
  readonly injected = new Map<FaultKind, number>();
  /** Steps that did not go as planned (an admin request that kept failing): not a verdict. */
  readonly notes: string[] = [];
  readonly #startedAt = performance.now();
  readonly #ids: readonly string[];

  constructor(
    readonly cluster: ChaosCluster,
    readonly observer: LeaderObserver,
    readonly rng: Random,
    readonly options: NemesisOptions,
    readonly log: (line: string) => void = () => {},
  ) {
    this.#ids = cluster.nodes.map((n) => n.id);
  }

  /**
   * Injects faults until `durationMs` has passed, and at least one full round of kinds. Every
   * fault is healed when it resolves.
   */
  async run(durationMs: number): Promise<void> {
    const end = performance.now() + durationMs;
    let round = 0;
    for (;;) {
      const kinds = this.#shuffle([...FAULT_KINDS]);
      for (const kind of kinds) {
        if (round > 0 && performance.now() >= end) return;
        await this.inject(kind);
        await this.#restartCrashed();
        await sleep(this.rng.int(...this.options.quietMs));
      }
      round++;
      if (performance.now() >= end) return;
    }
  }

  /** Injects one fault of `kind`, holds it, heals it. */
  async inject(kind: FaultKind): Promise<void> {
    switch (kind) {
      case "kill":
        return this.#kill();
      case "pause":
        return this.#pause();
      case "partition-split": {
        const [a, b] = this.#split(2);
        return this.#partition(kind, a, b, "both");
      }
      case "partition-leader": {
        const leader = this.#leaderOrRandom();
        const rest = this.#ids.filter((id) => id !== leader);
        return this.#partition(kind, [leader], rest, "both");
      }
      case "partition-bridge":
        return this.#bridge();
      case "partition-oneway": {
        const node = this.#leaderOrRandom(0.5);
        const rest = this.#ids.filter((id) => id !== node);
        return this.rng.chance(0.5)
          ? this.#partition(kind, [node], rest, "outgoing")
          : this.#partition(kind, rest, [node], "outgoing");
      }
      case "transfer-leader":
        return this.#transfer();
      case "membership":
        return this.#membership();
    }
  }

  /** Continues every paused node, restarts every dead one, lets every link pass. */
  async healAll(): Promise<void> {
    this.cluster.healNetwork();
    for (const node of this.cluster.nodes) this.cluster.resume(node);
    for (const node of this.cluster.nodes) {
      if (node.child === null) this.cluster.start(node);
    }
    await Promise.all(this.cluster.nodes.map((n) => this.#answers(n)));
  }

  /** A node that died by itself (a crash the report lists) is restarted, so the run goes on. */
  async #restartCrashed(): Promise<void> {
    const dead = this.cluster.nodes.filter((n) => n.child === null);
    for (const node of dead) {
      this.notes.push(`${node.id} was down after a fault (see its crash); restarted`);
      this.cluster.start(node);
    }
    await Promise.all(dead.map((n) => this.#answers(n)));
  }

  /** Makes every node a voter again (a membership fault may have left one out). */
  async restoreMembership(): Promise<boolean> {
    const all = this.#ids;
    const deadline = performance.now() + this.options.adminDeadlineMs;
    while (performance.now() < deadline) {
      const status = await this.#leaderStatus();
      if (status === null) {
        await sleep(200);
        continue;
      }
      const missing = all.filter((id) => !status.membership.voters.includes(id));
      if (missing.length === 0 && status.membership.voters.length === all.length) return true;
      const voters = Object.fromEntries(this.cluster.nodes.map((n) => [n.id, n.url]));
      await this.#admin("/membership", { voters }, deadline);
    }
    return false;
  }

  #record(kind: FaultKind, detail: string): void {
    this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
    const at = performance.now() - this.#startedAt;
    this.events.push({ kind, at, detail });
    this.log(`${(at / 1000).toFixed(1)}s ${kind}: ${detail}`);
  }

  #hold(): Promise<void> {
    return sleep(this.rng.int(...this.options.holdMs));
  }

  /** One or two running nodes; the leader among them with probability `leaderChance`. */
  #victims(leaderChance = 0.5): ChaosNode[] {
    const count = this.rng.chance(0.3) ? 2 : 1;
    const running = this.cluster.nodes.filter((n) => n.child !== null && !n.paused);
    const leader = this.observer.leader();
    const chosen: ChaosNode[] = [];
    if (leader !== null && this.rng.chance(leaderChance)) chosen.push(leader);
    const others = this.#shuffle(running.filter((n) => !chosen.includes(n)));
    while (chosen.length < count && others.length > 0) chosen.push(others.shift() as ChaosNode);
    return chosen;
  }

  async #kill(): Promise<void> {
    const victims = this.#victims();
    let detail = `kill -9 ${this.#describe(victims)}`;
    await Promise.all(victims.map((n) => this.cluster.kill(n)));
    if (this.rng.chance(0.5)) detail += await this.#compactLeader();
    this.#record("kill", detail);
    await this.#hold();
    for (const node of victims) this.cluster.start(node);
    await Promise.all(victims.map((n) => this.#answers(n)));
  }

  /**
   * Has the leader snapshot and compact its log now (POST /admin/snapshot), so a node that was
   * down catches up from the snapshot (§7), streamed through its proxy.
   */
  async #compactLeader(): Promise<string> {
    await this.observer.poll();
    const leader = this.observer.leader();
    if (leader === null) return "; no leader to compact";
    const answer = await this.#post(leader, "/snapshot", {});
    const index =
      answer?.status === 200
        ? `to ${String(answer.body.index)}`
        : `failed (${answer?.status ?? "no answer"})`;
    return `; leader ${leader.id} compacted ${index}`;
  }

  async #pause(): Promise<void> {
    const victims = this.#victims();
    const detail = `SIGSTOP ${this.#describe(victims)}`;
    for (const node of victims) this.cluster.pause(node);
    this.#record("pause", detail);
    await this.#hold();
    for (const node of victims) this.cluster.resume(node);
  }

  /**
   * Cuts the links from every node of `a` to every node of `b` ("outgoing"), or both ways
   * ("both"), holds, heals.
   */
  async #partition(
    kind: FaultKind,
    a: readonly string[],
    b: readonly string[],
    direction: "both" | "outgoing",
  ): Promise<void> {
    const mode: LinkMode = this.rng.chance(0.5) ? "refuse" : "blackhole";
    for (const from of a) {
      for (const to of b) {
        this.cluster.setLink(from, to, mode);
        if (direction === "both") this.cluster.setLink(to, from, mode);
      }
    }
    const arrow = direction === "both" ? "<->" : "->";
    this.#record(kind, `[${a.join(" ")}] ${arrow} [${b.join(" ")}] ${mode}`);
    await this.#hold();
    this.cluster.healNetwork();
  }

  async #bridge(): Promise<void> {
    const order = this.#shuffle([...this.#ids]);
    const bridge = order[2] as string;
    const a = order.slice(0, 2);
    const b = order.slice(3);
    const mode: LinkMode = this.rng.chance(0.5) ? "refuse" : "blackhole";
    for (const x of a) {
      for (const y of b) {
        this.cluster.setLink(x, y, mode);
        this.cluster.setLink(y, x, mode);
      }
    }
    this.#record(
      "partition-bridge",
      `[${a.join(" ")}] <-> [${b.join(" ")}] ${mode}, ${bridge} bridges`,
    );
    await this.#hold();
    this.cluster.healNetwork();
  }

  async #transfer(): Promise<void> {
    const leader = this.observer.leader();
    const status = leader === null ? null : this.observer.latest(leader.id);
    const voters = status?.membership.voters.filter((id) => id !== leader?.id) ?? [];
    const to = voters.length > 0 && this.rng.chance(0.7) ? this.rng.pick(voters) : undefined;
    const target = leader ?? this.rng.pick(this.cluster.nodes);
    const answer = await this.#post(target, "/transfer-leader", to === undefined ? {} : { to });
    const outcome =
      answer === null ? "no answer" : `${answer.status} ${JSON.stringify(answer.body)}`;
    this.#record("transfer-leader", `${target.id} -> ${to ?? "any"}: ${outcome}`);
    await this.#hold();
  }

  /** Removes a voter, holds, re-adds it as a learner, then as a voter. */
  async #membership(): Promise<void> {
    // The previous fault is healed, but the cluster may still be electing or re-adding.
    const wait = performance.now() + this.options.adminDeadlineMs;
    let status = await this.#leaderStatus();
    while (
      performance.now() < wait &&
      (status === null || status.membership.voters.length < this.#ids.length)
    ) {
      await sleep(500);
      status = await this.#leaderStatus();
    }
    if (status === null || status.membership.voters.length < this.#ids.length) {
      this.notes.push("membership: no leader with the full membership; skipped this turn");
      return;
    }
    const leaderId = status.id;
    const victim = this.rng.chance(0.3)
      ? leaderId
      : this.rng.pick(this.#ids.filter((id) => id !== leaderId));
    const node = this.cluster.node(victim);
    const deadline = performance.now() + this.options.adminDeadlineMs;
    const rest = this.#ids.filter((id) => id !== victim);
    const removed = await this.#admin("/membership", { voters: rest }, deadline);
    this.#record(
      "membership",
      `remove ${victim}${victim === leaderId ? " (leader)" : ""}: ${removed?.status ?? "no answer"}`,
    );
    await this.#hold();
    const readd = performance.now() + this.options.adminDeadlineMs;
    const learner = await this.#admin(
      "/learners",
      { id: victim, addr: node.url, blocking: true },
      readd,
    );
    const voters = Object.fromEntries(this.cluster.nodes.map((n) => [n.id, n.url]));
    const promoted = await this.#admin("/membership", { voters }, readd);
    this.log(
      `  membership: ${victim} re-added as learner ${learner?.status ?? "no answer"}, voter ${promoted?.status ?? "no answer"}`,
    );
    if (promoted?.status !== 200) this.notes.push(`membership: re-adding ${victim} did not finish`);
  }

  /**
   * POSTs an admin request to the leader until it is answered 200 or 400 or `deadline` passes:
   * a 421 is followed to the leader it names; 409 (a change in progress), 503, 504 and no answer
   * are retried after a pause (the requests here are idempotent: the same target membership).
   */
  async #admin(path: string, body: unknown, deadline: number): Promise<AdminAnswer | null> {
    let target: ChaosNode | null = null;
    let last: AdminAnswer | null = null;
    while (performance.now() < deadline) {
      target ??= this.observer.leader() ?? this.rng.pick(this.cluster.nodes);
      last = await this.#post(target, path, body);
      if (last !== null && (last.status === 200 || last.status === 400)) return last;
      if (last?.status === 421 && typeof last.body.leaderId === "string") {
        target = this.cluster.node(last.body.leaderId);
        continue;
      }
      target = null;
      await sleep(300);
    }
    return last;
  }

  async #post(node: ChaosNode, path: string, body: unknown): Promise<AdminAnswer | null> {
    try {
      const response = await fetch(`${node.url}/admin${path}`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: `Bearer ${this.cluster.secret}`,
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { text };
      }
      return { status: response.status, body: parsed };
    } catch {
      return null;
    }
  }

  /** The status of a leader that answers, polled until one does or 2 s pass. */
  async #leaderStatus(): Promise<Status | null> {
    const deadline = performance.now() + 2000;
    while (performance.now() < deadline) {
      await this.observer.poll();
      const leader = this.observer.leader();
      if (leader !== null) {
        const status = await this.cluster.status(leader);
        if (status?.role === "leader") return status;
      }
      await sleep(100);
    }
    return null;
  }

  /** Waits until a (re)started node answers /status. */
  async #answers(node: ChaosNode): Promise<void> {
    const deadline = performance.now() + this.options.adminDeadlineMs;
    while (performance.now() < deadline) {
      if ((await this.cluster.status(node)) !== null) return;
      await sleep(100);
    }
    this.notes.push(
      `${node.id} did not answer within ${this.options.adminDeadlineMs} ms of its start`,
    );
  }

  #leaderOrRandom(chance = 1): string {
    const leader = this.observer.leader();
    return leader !== null && this.rng.chance(chance) ? leader.id : this.rng.pick(this.#ids);
  }

  /** Splits the nodes in two groups, the first of `size`. */
  #split(size: number): [string[], string[]] {
    const order = this.#shuffle([...this.#ids]);
    return [order.slice(0, size), order.slice(size)];
  }

  #describe(nodes: readonly ChaosNode[]): string {
    const leader = this.observer.leader();
    return nodes.map((n) => (n === leader ? `${n.id} (leader)` : n.id)).join(" ");
  }

  #shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i);
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
