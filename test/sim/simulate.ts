/** One seed, start to end: bootstrap, fault phase, heal, and the liveness check. */
import { SafetyViolation } from "./checks.ts";
import { Cluster, type Core, type SimStats } from "./cluster.ts";
import { Random } from "./random.ts";
import { describeScenario, makeScenario } from "./scenario.ts";

export interface SeedResult {
  readonly seed: number;
  readonly events: number;
  readonly simulatedMs: number;
  /** A hash of the event trace: a replay of the seed must give the same one. */
  readonly trace: string;
  readonly commitIndex: number;
  readonly stats: SimStats;
}

/** A failed seed: the message names the seed, the event and the check that fired. */
export class SimFailure extends Error {
  override name = "SimFailure";
  constructor(
    readonly seed: number,
    readonly event: number,
    readonly timeMs: number,
    readonly check: string,
    detail: string,
    readonly nodes: string,
  ) {
    super(`seed=${seed} event=${event} t=${timeMs}ms ${check}: ${detail}`);
  }
}

export interface RunOptions {
  /** Events in the fault phase. */
  readonly steps: number;
  readonly log?: (line: string) => void;
}

const maxHealEvents = 2_000_000;

/**
 * Time for a follower to catch up from an empty log, one batch per round trip, at worst: with
 * maxInflight 1 and tiny batches a long log legitimately takes longer than a few elections.
 */
function catchUpMs(cluster: Cluster): number {
  const { config, links, maxDiskDelayMs, maxApplyDelayMs } = cluster.scenario;
  const longest = Math.max(...cluster.nodes.map((n) => n.store.entries.length));
  const batch = Math.max(
    1,
    Math.min(config.maxBatchEntries, Math.floor(config.maxBatchBytes / 160)),
  );
  const roundTripMs = 2 * links.maxDelayMs + 2 * maxDiskDelayMs + maxApplyDelayMs + 1;
  return Math.ceil(longest / batch) * roundTripMs;
}

export function runSeed(core: Core, seed: number, options: RunOptions): SeedResult {
  const rng = new Random(seed);
  const scenario = makeScenario(rng);
  const cluster = new Cluster(core, scenario, rng, options.log);
  options.log?.(`seed=${seed} ${describeScenario(scenario)}`);
  try {
    cluster.start();
    while (cluster.events < options.steps && cluster.runOne()) {}
    cluster.heal();
    // Liveness: a bounded time after the heal, one leader and a fresh command applied everywhere.
    const healedAt = cluster.now;
    const deadline = healedAt + 20 * scenario.config.electionTimeoutMaxMs + catchUpMs(cluster);
    const eventLimit = cluster.events + maxHealEvents;
    while (!cluster.isLive()) {
      if (!cluster.runOne() || cluster.now > deadline || cluster.events > eventLimit) {
        throw new SafetyViolation(
          "liveness",
          `no single leader with a fresh command applied on every node ` +
            `${cluster.now - healedAt}ms after the heal (allowed ${deadline - healedAt}ms)`,
        );
      }
    }
  } catch (error) {
    const violation = error instanceof SafetyViolation ? error : undefined;
    const failure = new SimFailure(
      seed,
      cluster.events,
      cluster.now,
      violation?.check ?? "simulator error",
      violation?.detail ?? String(error),
      cluster.describeNodes(),
    );
    failure.cause = violation ? violation.cause : error;
    throw failure;
  }
  return {
    seed,
    events: cluster.events,
    simulatedMs: cluster.now,
    trace: cluster.trace.toString(16).padStart(8, "0"),
    commitIndex: cluster.checker.commitIndex,
    stats: cluster.stats,
  };
}
