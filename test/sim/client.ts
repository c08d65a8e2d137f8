/**
 * The simulated client: unique commands, sent to the node it believes leads (learned from
 * rejections and role changes) or to a random node. Like a real client it bounds its
 * outstanding commands, so the offered load cannot outrun replication forever.
 */
import type { Random } from "./random.ts";

export class Client {
  /** Index of the node believed to lead, or null. */
  leaderHint: number | null = null;
  nextCommand = 1;
  nextRequest = 1;
  /** Each outstanding proposal: its last command, its size, when the client gives up on it. */
  private outstanding: {
    readonly last: number;
    readonly size: number;
    readonly expires: number;
  }[] = [];
  /** Commands in outstanding proposals. */
  private count = 0;

  constructor(
    private readonly rng: Random,
    private readonly size: number,
    private readonly maxOutstanding: number,
    private readonly timeoutMs: number,
  ) {}

  /** How many more commands may be sent now; `applied` says whether a command was applied. */
  room(now: number, applied: (command: number) => boolean): number {
    const kept = this.outstanding.filter((p) => p.expires > now && !applied(p.last));
    if (kept.length !== this.outstanding.length) {
      this.outstanding = kept;
      this.count = kept.reduce((sum, p) => sum + p.size, 0);
    }
    return this.maxOutstanding - this.count;
  }

  target(): number {
    const hint = this.leaderHint;
    return hint !== null && this.rng.chance(0.8) ? hint : this.rng.int(0, this.size - 1);
  }

  /** Records an accepted proposal of `size` commands ending with command `last`. */
  accepted(last: number, size: number, now: number): void {
    this.outstanding.push({ last, size, expires: now + this.timeoutMs });
    this.count += size;
  }
}
