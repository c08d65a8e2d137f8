/**
 * The simulated network between nodes (by index): partitions as a matrix of blocked links, and
 * per-message loss, duplication and random delays (which also reorder messages).
 */
import type { Random } from "./random.ts";

export interface LinkParams {
  readonly lossRate: number;
  readonly dupRate: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  /** Chance of an outlier delay, up to longDelayMaxMs: old messages arriving very late. */
  readonly longDelayRate: number;
  readonly longDelayMaxMs: number;
}

export const calmLinks = (maxDelayMs: number): LinkParams => ({
  lossRate: 0,
  dupRate: 0,
  minDelayMs: 1,
  maxDelayMs,
  longDelayRate: 0,
  longDelayMaxMs: maxDelayMs,
});

export class Network {
  /** blocked[from][to]: messages from `from` to `to` are dropped. */
  private readonly blocked: boolean[][];
  params: LinkParams;

  constructor(
    private readonly size: number,
    params: LinkParams,
  ) {
    this.blocked = Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
    this.params = params;
  }

  isBlocked(from: number, to: number): boolean {
    return (this.blocked[from] as boolean[])[to] as boolean;
  }

  /** Cuts every link between the two sides of `side` (true/false per node). */
  split(side: readonly boolean[]): void {
    for (let i = 0; i < this.size; i++) {
      for (let j = 0; j < this.size; j++) {
        if (side[i] !== side[j]) (this.blocked[i] as boolean[])[j] = true;
      }
    }
  }

  /** One-way isolation: `node` can no longer send (outbound) or no longer receive. */
  isolate(node: number, outbound: boolean): void {
    for (let other = 0; other < this.size; other++) {
      if (other === node) continue;
      if (outbound) (this.blocked[node] as boolean[])[other] = true;
      else (this.blocked[other] as boolean[])[node] = true;
    }
  }

  healPartitions(): void {
    for (const row of this.blocked) row.fill(false);
  }

  /** Delivery delays for one message: none if it is lost, two if it is duplicated. */
  fate(rng: Random, from: number, to: number): number[] {
    if (this.isBlocked(from, to) || rng.chance(this.params.lossRate)) return [];
    const delays = [this.delay(rng)];
    if (rng.chance(this.params.dupRate)) delays.push(this.delay(rng));
    return delays;
  }

  private delay(rng: Random): number {
    const p = this.params;
    if (rng.chance(p.longDelayRate)) return rng.int(p.maxDelayMs, p.longDelayMaxMs);
    return rng.int(p.minDelayMs, p.maxDelayMs);
  }
}
