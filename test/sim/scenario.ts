/** The random shape of one simulation: cluster, core configuration, network, disk, fault rates. */
import type { NodeId, RaftConfig } from "../../mod.ts";
import { defaultConfig } from "../../mod.ts";
import type { LinkParams } from "./network.ts";
import type { Random } from "./random.ts";

/** Fault kinds; each scenario weighs them differently (swarm testing), some not at all. */
export const faultKinds = [
  "crash",
  "split",
  "isolate",
  "isolateLeader",
  "links",
  "burst",
  "membership",
  "transfer",
  "snapshot",
] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface Scenario {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Nodes in no initial configuration, for membership changes to add. */
  readonly spares: readonly NodeId[];
  /** Members given `initialize` at boot; the others join when the leader replicates to them. */
  readonly founders: readonly NodeId[];
  readonly config: RaftConfig;
  readonly links: LinkParams;
  readonly maxDiskDelayMs: number;
  /** Chance that a disk operation stalls (up to 10x maxDiskDelayMs), like a slow fsync. */
  readonly diskStallRate: number;
  readonly maxApplyDelayMs: number;
  /** Mean gap between client proposals. */
  readonly clientGapMs: number;
  /** Share of client requests that are linearizable reads (ReadIndex). */
  readonly readRate: number;
  /** Commands the client keeps in flight at most. */
  readonly maxOutstanding: number;
  /** Mean gap between injected faults. */
  readonly chaosGapMs: number;
  /** Relative weight of each fault kind. */
  readonly faultWeights: Readonly<Record<FaultKind, number>>;
  /** Chance that a storage write is followed by a crash of its node while it is in flight. */
  readonly crashOnWriteRate: number;
  /** Chance that a new leader is crashed or cut off soon after its election. */
  readonly leaderDisruptRate: number;
}

export function randomLinks(rng: Random, electionTimeoutMaxMs: number): LinkParams {
  return {
    lossRate: rng.pick([0, 0, 0.01, 0.05, 0.1, 0.2]),
    dupRate: rng.pick([0, 0, 0.01, 0.05, 0.1]),
    minDelayMs: 1,
    maxDelayMs: rng.int(2, 30),
    longDelayRate: rng.pick([0, 0.005, 0.02]),
    longDelayMaxMs: 2 * electionTimeoutMaxMs,
  };
}

function randomConfig(rng: Random): RaftConfig {
  const electionTimeoutMinMs = rng.int(100, 300);
  const electionTimeoutMaxMs = electionTimeoutMinMs + rng.int(50, 300);
  const windowRoll = rng.next();
  return {
    electionTimeoutMinMs,
    electionTimeoutMaxMs,
    heartbeatIntervalMs: rng.int(
      Math.floor(electionTimeoutMinMs / 6),
      Math.floor(electionTimeoutMinMs / 3),
    ),
    preVote: rng.chance(0.5),
    checkQuorum: rng.chance(0.5),
    maxInflight: rng.int(1, 8),
    // Small batches most of the time: they split a leader's appends across messages.
    maxBatchEntries: rng.pick([1, 1, 2, 3, 4, 8, 16, 64, rng.int(1, 64)]),
    maxBatchBytes: rng.chance(0.2) ? rng.int(64, 512) : defaultConfig.maxBatchBytes,
    // A small window makes lagging followers go through loadEntries.
    maxWindowEntries:
      windowRoll < 0.5
        ? rng.int(0, 32)
        : windowRoll < 0.75
          ? rng.int(33, 256)
          : defaultConfig.maxWindowEntries,
    // Compaction often, so installs and purged logs happen among the other events (§7).
    snapshotThreshold: rng.pick([0, 5, 10, 20, 50, rng.int(1, 100)]),
    snapshotTrailingEntries: rng.pick([0, 0, 1, 5, 20, rng.int(0, 50)]),
  };
}

export function makeScenario(rng: Random): Scenario {
  const voterCount = rng.pick([3, 3, 4, 5]);
  const voters = Array.from({ length: voterCount }, (_, i) => `n${i + 1}`);
  const learners = rng.chance(0.3) ? ["l1"] : [];
  // 5 to 7 nodes in all; the spares join only through membership changes.
  const total = Math.max(voterCount + learners.length, rng.int(5, 7));
  const spares = Array.from(
    { length: total - voterCount - learners.length },
    (_, i) => `s${i + 1}`,
  );
  let founders: NodeId[] = [...voters, ...learners];
  if (rng.chance(0.3)) {
    // Only a majority of voters bootstraps; the rest learn the configuration by replication.
    const quorum = (voterCount >> 1) + 1;
    founders = voters.filter(() => rng.chance(0.5));
    for (const id of voters)
      if (founders.length < quorum && !founders.includes(id)) founders.push(id);
  }
  const config = randomConfig(rng);
  const faultWeights = {} as Record<FaultKind, number>;
  for (const kind of faultKinds) faultWeights[kind] = rng.chance(0.6) ? rng.int(1, 4) : 0;
  if (faultKinds.every((kind) => faultWeights[kind] === 0)) faultWeights.crash = 1;
  // Membership changes in most scenarios, often among the most frequent events.
  if (rng.chance(0.8)) faultWeights.membership = rng.int(2, 8);
  return {
    voters,
    learners,
    spares,
    founders,
    config,
    links: randomLinks(rng, config.electionTimeoutMaxMs),
    maxDiskDelayMs: rng.int(0, 50),
    diskStallRate: rng.pick([0, 0.01, 0.05]),
    maxApplyDelayMs: rng.int(0, 5),
    clientGapMs: rng.int(5, 60),
    maxOutstanding: rng.int(1, 64),
    readRate: rng.pick([0.05, 0.15, 0.3]),
    chaosGapMs: rng.int(config.electionTimeoutMinMs >> 2, 2 * config.electionTimeoutMaxMs),
    faultWeights,
    crashOnWriteRate: rng.pick([0, 0.002, 0.005, 0.01]),
    leaderDisruptRate: rng.pick([0, 0.3, 0.6, 0.9]),
  };
}

export function describeScenario(s: Scenario): string {
  const c = s.config;
  return (
    `voters=${s.voters.join(",")} learners=${s.learners.join(",") || "-"} ` +
    `spares=${s.spares.join(",") || "-"} founders=${s.founders.join(",")} ` +
    `election=${c.electionTimeoutMinMs}..${c.electionTimeoutMaxMs}ms heartbeat=${c.heartbeatIntervalMs}ms ` +
    `preVote=${c.preVote} checkQuorum=${c.checkQuorum} maxInflight=${c.maxInflight} ` +
    `maxBatchEntries=${c.maxBatchEntries} maxBatchBytes=${c.maxBatchBytes} window=${c.maxWindowEntries} ` +
    `snapshot=${c.snapshotThreshold}/trail${c.snapshotTrailingEntries} ` +
    `loss=${s.links.lossRate} dup=${s.links.dupRate} delay<=${s.links.maxDelayMs}ms ` +
    `disk<=${s.maxDiskDelayMs}ms stall=${s.diskStallRate} clientGap=${s.clientGapMs}ms ` +
    `reads=${s.readRate} outstanding<=${s.maxOutstanding} chaosGap=${s.chaosGapMs}ms ` +
    `crashOnWrite=${s.crashOnWriteRate} leaderDisrupt=${s.leaderDisruptRate} ` +
    `faults=${JSON.stringify(s.faultWeights)}`
  );
}
