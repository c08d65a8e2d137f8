/**
 * Synthetic register histories for the checker's tests and its benchmark: clients run operations
 * against a real sequential register per key, each taking effect at one instant between its
 * invocation and completion (so the history is linearizable by construction), with unknown
 * outcomes that took effect late or never. Seeded: the same seed gives the same history.
 */
import { Random } from "../sim/random.ts";
import type { Call, Operation, Outcome } from "./history.ts";

export interface SyntheticOptions {
  readonly seed: number;
  readonly keys: number;
  readonly clients: number;
  readonly opsPerClient: number;
  /** Probability that an operation's answer is lost (outcome unknown). Default 0.02. */
  readonly unknownRate?: number;
}

interface Pending {
  readonly id: number;
  readonly client: number;
  readonly key: string;
  readonly call: Call;
  readonly invokedAt: number;
  readonly completedAt: number;
  /** When it takes effect; Infinity: never. */
  readonly effectAt: number;
  readonly unknown: boolean;
}

export function syntheticHistory(opts: SyntheticOptions): Operation[] {
  const rng = new Random(opts.seed);
  const unknownRate = opts.unknownRate ?? 0.02;
  const keys = Array.from({ length: opts.keys }, (_, k) => `k${k}`);
  const pending: Pending[] = [];
  // Values each client saw per key, so its cas operations often expect the current value.
  const seen = new Map<string, string | null>();
  let id = 0;
  for (let client = 0; client < opts.clients; client++) {
    let t = rng.next() * 5;
    for (let n = 0; n < opts.opsPerClient; n++) {
      const key = rng.pick(keys);
      const value = `c${client}-${n}`;
      const roll = rng.next();
      const call: Call =
        roll < 0.45
          ? { kind: "read" }
          : roll < 0.75
            ? { kind: "write", value }
            : roll < 0.8
              ? { kind: "write", value: null }
              : {
                  kind: "cas",
                  expected: rng.chance(0.8) ? (seen.get(`${client}/${key}`) ?? null) : `c0-${n}`,
                  value,
                };
      const invokedAt = t;
      const duration = 0.5 + rng.next() * rng.pick([1, 4, 20]);
      const completedAt = invokedAt + duration;
      const unknown = rng.chance(unknownRate);
      // An unknown operation takes effect in its interval, much later, or never.
      const effectAt = !unknown
        ? invokedAt + rng.next() * duration
        : rng.pick([invokedAt + rng.next() * duration, completedAt + rng.next() * 200, Infinity]);
      pending.push({ id: id++, client, key, call, invokedAt, completedAt, effectAt, unknown });
      if (call.kind !== "read") seen.set(`${client}/${key}`, call.value);
      t = completedAt + rng.next() * 2;
    }
  }

  // Apply every operation at its instant to one register per key.
  const register = new Map<string, string | null>();
  const outcomes = new Map<number, Outcome>();
  const byEffect = [...pending].sort((a, b) => a.effectAt - b.effectAt || a.id - b.id);
  for (const p of byEffect) {
    if (p.effectAt === Infinity) break;
    const state = register.get(p.key) ?? null;
    let outcome: Outcome;
    if (p.call.kind === "read") outcome = { status: "ok", value: state };
    else if (p.call.kind === "write") {
      register.set(p.key, p.call.value);
      outcome = { status: "ok" };
    } else if (state === p.call.expected) {
      register.set(p.key, p.call.value);
      outcome = { status: "ok" };
    } else outcome = { status: "fail", current: state };
    outcomes.set(p.id, outcome);
  }
  return pending.map((p) => ({
    id: p.id,
    client: p.client,
    key: p.key,
    call: p.call,
    invokedAt: p.invokedAt,
    completedAt: p.unknown ? Infinity : p.completedAt,
    outcome: p.unknown
      ? { status: "unknown", reason: "timeout" }
      : (outcomes.get(p.id) ?? { status: "unknown", reason: "never applied" }),
  }));
}
