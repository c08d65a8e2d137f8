/**
 * Watches the cluster's leadership by polling every node's /status: the leader the nemesis aims
 * at, the leader changes the report counts, and a free check of election safety (§5.2: at most
 * one leader per term) — two nodes claiming the same term's leadership is a violation.
 */
import type { ChaosCluster, ChaosNode, Status } from "./cluster.ts";

export interface LeaderChange {
  /** Milliseconds since the observer started. */
  readonly at: number;
  readonly term: number;
  readonly leader: string;
}

export class LeaderObserver {
  readonly changes: LeaderChange[] = [];
  /** Election safety violations: `term T: n1 and n3 both lead`. */
  readonly conflicts: string[] = [];
  readonly #leaders = new Map<number, string>();
  #current: Status | null = null;
  #latest = new Map<string, Status>();
  #running: Promise<void> | null = null;
  #stopping = false;
  readonly #startedAt = performance.now();

  constructor(
    readonly cluster: ChaosCluster,
    readonly pollMs = 200,
  ) {}

  start(): void {
    this.#running ??= this.#loop();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#running;
  }

  /** The leader of the highest term seen in the latest poll, if it still runs. */
  leader(): ChaosNode | null {
    const current = this.#current;
    if (current === null) return null;
    const node = this.cluster.node(current.id);
    return node.child !== null && !node.paused ? node : null;
  }

  /** The latest /status seen from each node. */
  latest(id: string): Status | undefined {
    return this.#latest.get(id);
  }

  /** Polls once now (the loop also calls it). */
  async poll(): Promise<void> {
    const statuses = await Promise.all(this.cluster.nodes.map((n) => this.cluster.status(n, 500)));
    let best: Status | null = null;
    for (const s of statuses) {
      if (s === null) continue;
      this.#latest.set(s.id, s);
      if (s.role !== "leader") continue;
      const known = this.#leaders.get(s.term);
      if (known === undefined) {
        this.#leaders.set(s.term, s.id);
        this.changes.push({ at: performance.now() - this.#startedAt, term: s.term, leader: s.id });
      } else if (known !== s.id) {
        this.conflicts.push(`term ${s.term}: ${known} and ${s.id} both lead`);
      }
      if (best === null || s.term > best.term) best = s;
    }
    this.#current = best;
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      await this.poll();
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }
}
