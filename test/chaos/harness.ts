/**
 * One chaos run, Jepsen style: a 5-node cluster of the example service as real processes with a
 * fault-injecting proxy on every peer link (cluster.ts, proxy.ts), concurrent clients recording a
 * history (clients.ts), a seeded nemesis (nemesis.ts) and a leadership observer (observer.ts).
 * After the faults, everything is healed, the cluster must converge, every key is read once more,
 * and the history goes to the linearizability checker (checker.ts). `runChaos` returns the
 * report; `formatReport` prints it. test/chaos/run.ts is the command line, chaos.test.ts the short
 * seeded run of `npm test`.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { RuntimeName } from "../helpers/runtime.ts";
import { Random } from "../sim/random.ts";
import { checkLinearizable, formatOperation, type Verdict } from "./checker.ts";
import { Clients } from "./clients.ts";
import { ChaosCluster, type Status } from "./cluster.ts";
import type { Operation } from "./history.ts";
import { FAULT_KINDS, type FaultEvent, type FaultKind, Nemesis } from "./nemesis.ts";
import { type LeaderChange, LeaderObserver } from "./observer.ts";

export interface ChaosOptions {
  readonly seed: number;
  /** The runtime the nodes run on (default node; the harness itself runs on Node). */
  readonly runtime?: RuntimeName;
  /** How long the nemesis injects faults (it always completes one round of every kind). */
  readonly durationMs: number;
  readonly clients?: number;
  readonly keys?: number;
  /** Bound of each client operation, redirects included. */
  readonly clientTimeoutMs?: number;
  readonly holdMs?: readonly [number, number];
  readonly quietMs?: readonly [number, number];
  /**
   * Each node snapshots and compacts its log every this many applied entries (low, so restarted
   * and re-added nodes catch up by InstallSnapshot through the proxies); 0: never. Default 300.
   */
  readonly snapshotThreshold?: number;
  /** Log entries kept behind a snapshot. Default 10. */
  readonly snapshotTrailingEntries?: number;
  /** Budget of the checker's search. */
  readonly checkTimeLimitMs?: number;
  /** Progress lines (nemesis steps, phases). */
  readonly log?: (line: string) => void;
}

export interface ChaosReport {
  readonly seed: number;
  readonly runtime: RuntimeName;
  /** Wall-clock length of the run, faults to verdict. */
  readonly elapsedMs: number;
  /** Operations by kind, then by outcome. */
  readonly operations: Record<string, Record<string, number>>;
  /** Why operations ended `unknown`, with counts. */
  readonly unknownReasons: Record<string, number>;
  readonly faults: Record<FaultKind, number>;
  readonly faultEvents: readonly FaultEvent[];
  readonly nemesisNotes: readonly string[];
  readonly leaders: readonly LeaderChange[];
  /** Connections each directed link's proxy accepted (`n1->n2` → count): peers used them. */
  readonly links: Record<string, number>;
  /** Snapshots the nodes logged: built (and the log compacted), installed from a leader. */
  readonly snapshots: { readonly built: number; readonly installed: number };
  /** Election safety violations seen by the observer. */
  readonly leaderConflicts: readonly string[];
  /** Node exits the harness did not cause. */
  readonly crashes: readonly string[];
  /** Answers outside the service's contract. */
  readonly unexpected: readonly string[];
  /** Whether the healed cluster converged (one leader, 5 voters, all applied). */
  readonly converged: boolean;
  readonly convergence: string;
  /** Keys whose final read never succeeded. */
  readonly unreadKeys: readonly string[];
  /** Acknowledged writes the final reads show lost (see `lostWrites`). */
  readonly lostWrites: readonly string[];
  readonly acknowledgedWrites: number;
  readonly verdict: Verdict;
  readonly checkMs: number;
  /** True when nothing is wrong: linearizable, converged, no crash, no loss, no conflict. */
  readonly ok: boolean;
  /** The run's directory (data and node logs), kept when the run is not ok. */
  readonly dir: string;
}

const IDS = ["n1", "n2", "n3", "n4", "n5"];
const SECRET = "chaos-secret";
const CONVERGE_MS = 60_000;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {});
  const rng = new Random(options.seed);
  const dir = await mkdtemp(join(tmpdir(), "keel-chaos-"));
  const cluster = await ChaosCluster.create(
    dir,
    IDS,
    SECRET,
    [
      "--snapshot-threshold",
      String(options.snapshotThreshold ?? 300),
      "--snapshot-trailing-entries",
      String(options.snapshotTrailingEntries ?? 10),
    ],
    options.runtime ?? "node",
  );
  // No node outlives the harness, however it ends.
  const killAll = () => cluster.killAllNow();
  process.once("exit", killAll);
  let ok = false;
  try {
    for (const node of cluster.nodes) cluster.start(node);
    const observer = new LeaderObserver(cluster);
    const first = await converge(cluster, observer, CONVERGE_MS, false);
    if (!first.converged) throw new Error(`the cluster did not form: ${first.detail}`);
    log(`cluster up in ${dir}; leader ${first.leader}`);

    const started = performance.now();
    observer.start();
    const clients = new Clients({
      nodes: cluster.nodes.map((n) => n.url),
      clients: options.clients ?? 12,
      keys: options.keys ?? 30,
      timeoutMs: options.clientTimeoutMs ?? 2500,
      rng,
    });
    clients.start();
    const nemesis = new Nemesis(
      cluster,
      observer,
      rng,
      {
        holdMs: options.holdMs ?? [1500, 6000],
        quietMs: options.quietMs ?? [1000, 4000],
        adminDeadlineMs: 30_000,
      },
      log,
    );
    await nemesis.run(options.durationMs);

    log("healing every fault");
    await nemesis.healAll();
    const restored = await nemesis.restoreMembership();
    if (!restored) nemesis.notes.push("the full membership could not be restored");
    await clients.stop();
    const settled = await converge(cluster, observer, CONVERGE_MS, true);
    log(`converged: ${settled.converged} (${settled.detail})`);

    const finals = new Map<string, Operation>();
    const finalClient = options.clients ?? 12;
    for (const key of clients.keys) {
      const op = await clients.finalRead(finalClient, key, 20_000);
      if (op !== undefined) finals.set(key, op);
    }
    await observer.stop();

    const history = clients.history;
    const lost = lostWrites(history, finals);
    log(`checking ${history.length} operations`);
    const checkStart = performance.now();
    const verdict = checkLinearizable(history, {
      timeLimitMs: options.checkTimeLimitMs ?? 300_000,
    });
    const checkMs = performance.now() - checkStart;

    await cluster.close();
    const snapshots = {
      built: await cluster.countLogLines("snapshot built"),
      installed: await cluster.countLogLines("snapshot installed"),
    };
    const crashes = cluster.nodes.flatMap((n) => n.crashes.map((c) => `${n.id} ${c}`));
    const report: ChaosReport = {
      seed: options.seed,
      runtime: options.runtime ?? "node",
      elapsedMs: performance.now() - started,
      operations: countOperations(history),
      unknownReasons: countUnknown(history),
      faults: Object.fromEntries(
        FAULT_KINDS.map((kind) => [kind, nemesis.injected.get(kind) ?? 0]),
      ) as Record<FaultKind, number>,
      faultEvents: nemesis.events,
      nemesisNotes: nemesis.notes,
      leaders: observer.changes,
      snapshots,
      links: Object.fromEntries(
        [...cluster.links].map(([name, proxy]) => [name, proxy.stats.accepted]),
      ),
      leaderConflicts: observer.conflicts,
      crashes,
      unexpected: clients.unexpected,
      converged: settled.converged,
      convergence: settled.detail,
      unreadKeys: clients.keys.filter((key) => !finals.has(key)),
      lostWrites: lost.lost,
      acknowledgedWrites: lost.acknowledged,
      verdict,
      checkMs,
      ok:
        verdict.ok === true &&
        settled.converged &&
        crashes.length === 0 &&
        lost.lost.length === 0 &&
        observer.conflicts.length === 0 &&
        finals.size === clients.keys.length,
      dir,
    };
    ok = report.ok;
    // For a failed run: the whole history beside the node logs (Infinity as null in JSON).
    if (!ok) await writeFile(join(dir, "history.json"), JSON.stringify(history));
    return report;
  } finally {
    await cluster.close();
    process.removeListener("exit", killAll);
    if (ok) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Waits until every node runs and answers, agrees on one leader in one term, the leader's
 * configuration has every node as a voter (when `fullMembership`), and every node has applied
 * what the leader committed.
 */
async function converge(
  cluster: ChaosCluster,
  observer: LeaderObserver,
  boundMs: number,
  fullMembership: boolean,
): Promise<{ converged: boolean; leader: string | null; detail: string }> {
  const deadline = performance.now() + boundMs;
  let detail = "";
  while (performance.now() < deadline) {
    await observer.poll();
    const statuses = await Promise.all(cluster.nodes.map((n) => cluster.status(n)));
    const all = statuses.filter((s): s is Status => s !== null);
    const leader = all.find((s) => s.role === "leader");
    detail = statuses
      .map((s, i) =>
        s === null
          ? `${cluster.nodes[i]?.id} down`
          : `${s.id} ${s.role} t${s.term} c${s.commitIndex} a${s.lastApplied}`,
      )
      .join(", ");
    const agreed =
      leader !== undefined &&
      all.length === cluster.nodes.length &&
      leader.commitIndex > 0 &&
      all.every(
        (s) =>
          s.leader === leader.id && s.term === leader.term && s.lastApplied >= leader.commitIndex,
      ) &&
      (!fullMembership ||
        (leader.membership.voters.length === cluster.nodes.length &&
          leader.membership.learners.length === 0));
    if (agreed) return { converged: true, leader: leader.id, detail };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { converged: false, leader: null, detail };
}

/**
 * Acknowledged writes the final reads show lost. Values are unique, so the final value names the
 * write V that made it; an acknowledged write W invoked after V had completed came after V in
 * real time, yet V's value survived: W was lost. A final value nobody wrote, or an absent key
 * after an acknowledged write (the workload never deletes), is a loss too. The checker finds these
 * as well; this counts them plainly.
 */
export function lostWrites(
  history: readonly Operation[],
  finals: ReadonlyMap<string, Operation>,
): { lost: string[]; acknowledged: number } {
  const lost: string[] = [];
  let acknowledged = 0;
  const writesByKey = new Map<string, Operation[]>();
  for (const op of history) {
    if (op.call.kind === "read") continue;
    let list = writesByKey.get(op.key);
    if (list === undefined) {
      list = [];
      writesByKey.set(op.key, list);
    }
    list.push(op);
    if (op.outcome.status === "ok") acknowledged++;
  }
  for (const [key, final] of finals) {
    if (final.outcome.status !== "ok") continue;
    const value = final.outcome.value ?? null;
    const writes = writesByKey.get(key) ?? [];
    const acked = writes.filter((w) => w.outcome.status === "ok");
    if (value === null) {
      if (writes.some((w) => w.call.kind === "write" && w.call.value === null)) continue;
      for (const w of acked) lost.push(`${key}: absent at the end, ${formatOperation(w)}`);
      continue;
    }
    const writer = writes.find(
      (w) => w.call.kind !== "read" && w.call.value === value && w.outcome.status !== "fail",
    );
    if (writer === undefined) {
      lost.push(`${key}: final value ${JSON.stringify(value)} was never written`);
      continue;
    }
    for (const w of acked) {
      if (w !== writer && w.invokedAt > writer.completedAt) {
        lost.push(
          `${key}: final ${JSON.stringify(value)} (#${writer.id}) hides ${formatOperation(w)}`,
        );
      }
    }
  }
  return { lost, acknowledged };
}

function countOperations(history: readonly Operation[]): Record<string, Record<string, number>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const op of history) {
    const kind = op.call.kind;
    const byOutcome = counts[kind] ?? { ok: 0, fail: 0, unknown: 0 };
    counts[kind] = byOutcome;
    byOutcome[op.outcome.status] = (byOutcome[op.outcome.status] ?? 0) + 1;
  }
  return counts;
}

function countUnknown(history: readonly Operation[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const op of history) {
    if (op.outcome.status !== "unknown") continue;
    counts[op.outcome.reason] = (counts[op.outcome.reason] ?? 0) + 1;
  }
  return counts;
}

/** The report as text. */
export function formatReport(r: ChaosReport): string {
  const lines: string[] = [];
  const total = Object.values(r.operations).reduce(
    (sum, o) => sum + Object.values(o).reduce((a, b) => a + b, 0),
    0,
  );
  lines.push(
    `chaos run, seed ${r.seed}, nodes on ${r.runtime}: ${(r.elapsedMs / 1000).toFixed(0)} s, ${total} operations`,
  );
  lines.push("operations      ok    fail  unknown");
  for (const [kind, o] of Object.entries(r.operations)) {
    const cell = (n: number | undefined) => String(n ?? 0).padStart(7);
    lines.push(`  ${kind.padEnd(8)}${cell(o.ok)}${cell(o.fail)}${cell(o.unknown)}`);
  }
  const reasons = Object.entries(r.unknownReasons).sort((a, b) => b[1] - a[1]);
  if (reasons.length > 0) {
    lines.push(`unknown because: ${reasons.map(([why, n]) => `${why} ${n}`).join(", ")}`);
  }
  lines.push(
    `faults: ${Object.entries(r.faults)
      .map(([kind, n]) => `${kind} ${n}`)
      .join(", ")}`,
  );
  const terms = r.leaders.map((l) => `${l.leader}@t${l.term}`).join(" ");
  lines.push(
    `leaders: ${r.leaders.length} elected, ${Math.max(0, r.leaders.length - 1)} changes (${terms})`,
  );
  const connections = Object.values(r.links).reduce((a, b) => a + b, 0);
  const used = Object.values(r.links).filter((n) => n > 0).length;
  lines.push(
    `peer links: ${used} of ${Object.keys(r.links).length} used, ${connections} connections through the proxies`,
  );
  lines.push(
    `snapshots: ${r.snapshots.built} built, ${r.snapshots.installed} installed from a leader`,
  );
  for (const note of r.nemesisNotes) lines.push(`nemesis note: ${note}`);
  lines.push(`converged after healing: ${r.converged ? "yes" : "NO"} (${r.convergence})`);
  if (r.unreadKeys.length > 0) lines.push(`final read failed for: ${r.unreadKeys.join(", ")}`);
  lines.push(
    `acknowledged writes: ${r.acknowledgedWrites}, lost: ${r.lostWrites.length}` +
      " (final reads against every acknowledged write; the checker covers this too)",
  );
  for (const lost of r.lostWrites.slice(0, 20)) lines.push(`  LOST ${lost}`);
  for (const conflict of r.leaderConflicts) lines.push(`ELECTION SAFETY: ${conflict}`);
  for (const crash of r.crashes) lines.push(`CRASH (not caused by the nemesis): ${crash}`);
  for (const answer of r.unexpected.slice(0, 20)) lines.push(`unexpected answer: ${answer}`);
  const v = r.verdict;
  const check = `(${v.ops} operations on ${v.keys} keys, checked in ${(r.checkMs / 1000).toFixed(1)} s)`;
  if (v.ok === true) {
    lines.push(`verdict: linearizable ${check}`);
  } else if (v.ok === "unknown") {
    lines.push(`verdict: UNDECIDED ${check}: ${v.reason}`);
  } else {
    lines.push(`verdict: NOT LINEARIZABLE ${check}: ${v.reason}`);
    lines.push(`smallest non-linearizable window on key ${JSON.stringify(v.key)}:`);
    for (const op of v.window) lines.push(`  ${formatOperation(op)}`);
  }
  lines.push(r.ok ? "result: OK" : `result: FAILED (data and node logs kept in ${r.dir})`);
  return lines.join("\n");
}
