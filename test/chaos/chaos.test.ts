/**
 * A short seeded chaos run (harness.ts): 5 processes of the example service, a fault-injecting
 * proxy on every peer link, 12 clients, and a nemesis that injects every fault kind at least once
 * (kill -9, SIGSTOP, four kinds of partition, leadership transfer, membership change). The
 * history must be linearizable, no acknowledged write lost, and the healed cluster must converge.
 *
 * It runs once, under the Node test runner: the harness spawns its own node processes. Longer
 * runs: `npm run chaos -- --minutes N --seed S`.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { runtime } from "../helpers/runtime.ts";
import { formatReport, runChaos } from "./harness.ts";
import { FAULT_KINDS } from "./nemesis.ts";

const SEED = 20261122;

const skip =
  runtime === "node"
    ? false
    : `spawns its own Node processes: it runs once, under the Node test runner (this is ${runtime})`;

it(`a seeded chaos run (seed ${SEED}) is linearizable and injects every kind of fault`, {
  skip,
  timeout: 300_000,
}, async () => {
  const steps: string[] = [];
  const report = await runChaos({
    seed: SEED,
    durationMs: 80_000,
    log: (line) => steps.push(line),
  });
  const text = formatReport(report);
  if (!report.ok) console.error(`${steps.join("\n")}\n${text}`);

  assert.equal(report.verdict.ok, true, text);
  assert.deepEqual(report.lostWrites, [], text);
  assert.deepEqual(report.leaderConflicts, [], text);
  assert.deepEqual(report.crashes, [], text);
  assert.equal(report.converged, true, text);
  assert.deepEqual(report.unreadKeys, [], text);
  for (const kind of FAULT_KINDS) assert.ok(report.faults[kind] >= 1, `no ${kind} fault\n${text}`);
  // The history is worth checking: every kind of operation succeeded many times.
  for (const kind of ["read", "write", "cas"]) {
    assert.ok((report.operations[kind]?.ok ?? 0) >= 20, `too few ${kind}s succeeded\n${text}`);
  }
  assert.ok(report.leaders.length >= 2, `the leader never changed\n${text}`);
  // Peers talk through the proxies only: every leader reached its peers through its links (at
  // least the three other voters while a membership fault left one node out).
  const ids = ["n1", "n2", "n3", "n4", "n5"];
  for (const { leader } of report.leaders) {
    const reached = ids.filter((peer) => (report.links[`${leader}->${peer}`] ?? 0) > 0);
    assert.ok(reached.length >= 3, `${leader} reached only ${reached.join(" ")}\n${text}`);
  }
  assert.ok(report.ok, text);
});
