/** Tunables of the core. Every limit is named with its unit. */
export interface RaftConfig {
  /** Election timeouts are drawn uniformly from [min, max) (§5.2). */
  readonly electionTimeoutMinMs: number;
  readonly electionTimeoutMaxMs: number;
  /** Leader heartbeat period; well under electionTimeoutMinMs (§5.7 timing requirement). */
  readonly heartbeatIntervalMs: number;
  /** PreVote (thesis §9.6): a partitioned node cannot raise the term of a healthy cluster. */
  readonly preVote: boolean;
  /** CheckQuorum (thesis §6.2): a leader that has not heard from a quorum steps down. */
  readonly checkQuorum: boolean;
  /** AppendEntries batches in flight per follower in the replicate state. */
  readonly maxInflight: number;
  /** Entries per AppendEntries. */
  readonly maxBatchEntries: number;
  /** Payload bytes per AppendEntries (a single larger entry is still sent alone). */
  readonly maxBatchBytes: number;
  /** Applied, durable entries kept in memory for followers that lag a little. */
  readonly maxWindowEntries: number;
  /** Entries handed to the state machine since the last snapshot that trigger one; 0: never. */
  readonly snapshotThreshold: number;
  /** Log entries kept before a snapshot's index when the log is compacted (for slow followers). */
  readonly snapshotTrailingEntries: number;
}

/** The defaults {@link resolveConfig} fills in. */
export const defaultConfig: RaftConfig = {
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  heartbeatIntervalMs: 50,
  preVote: true,
  checkQuorum: true,
  maxInflight: 64,
  maxBatchEntries: 4096,
  maxBatchBytes: 1 << 20,
  maxWindowEntries: 8192,
  snapshotThreshold: 10_000,
  snapshotTrailingEntries: 1000,
};

/**
 * Fills defaults and rejects configurations that cannot work.
 *
 * @throws RangeError naming the offending field.
 */
export function resolveConfig(partial: Partial<RaftConfig> = {}): RaftConfig {
  const config = { ...defaultConfig, ...partial };
  const positive: (keyof RaftConfig)[] = [
    "electionTimeoutMinMs",
    "heartbeatIntervalMs",
    "maxInflight",
    "maxBatchEntries",
    "maxBatchBytes",
  ];
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      throw new RangeError(`config.${key} must be a positive integer, got ${String(value)}`);
    }
  }
  for (const key of ["maxWindowEntries", "snapshotThreshold", "snapshotTrailingEntries"] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 0) {
      throw new RangeError(`config.${key} must be a non-negative integer`);
    }
  }
  if (config.electionTimeoutMaxMs <= config.electionTimeoutMinMs) {
    throw new RangeError("config.electionTimeoutMaxMs must exceed electionTimeoutMinMs");
  }
  if (config.heartbeatIntervalMs >= config.electionTimeoutMinMs) {
    throw new RangeError("config.heartbeatIntervalMs must be below electionTimeoutMinMs");
  }
  return config;
}
