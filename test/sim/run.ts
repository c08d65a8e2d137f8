/**
 * `npm run sim -- --seeds N --steps M [--seed S] [--from S] [--verbose]`: runs the simulator over
 * many seeds, prints progress and rates, and exits non-zero on the first failing seed.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import * as core from "../../mod.ts";
import { runSeed, SimFailure } from "./simulate.ts";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "100" },
    steps: { type: "string", default: "2000" },
    seed: { type: "string" },
    from: { type: "string", default: "1" },
    verbose: { type: "boolean", default: false },
  },
});

function integer(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be an integer`);
  return value;
}

const steps = integer("steps", values.steps);
const single = values.seed !== undefined;
const from = single ? integer("seed", values.seed) : integer("from", values.from);
const count = single ? 1 : integer("seeds", values.seeds);
const log = values.verbose ? (line: string) => console.log(line) : undefined;

const started = performance.now();
let lastReport = started;
let events = 0;
let elections = 0;
let crashes = 0;
let committed = 0;
let snapshots = 0;
let installs = 0;
for (let seed = from; seed < from + count; seed++) {
  try {
    const result = runSeed(core, seed, { steps, log });
    events += result.events;
    elections += result.stats.elections;
    crashes += result.stats.crashes;
    committed += result.commitIndex;
    snapshots += result.stats.snapshots;
    installs += result.stats.installs;
    if (single) {
      console.log(
        `seed=${seed} ok events=${result.events} simulated=${result.simulatedMs}ms ` +
          `trace=${result.trace} commit=${result.commitIndex} ${JSON.stringify(result.stats)}`,
      );
    }
  } catch (error) {
    if (!(error instanceof SimFailure)) throw error;
    console.error(`FAIL ${error.message}`);
    console.error(`nodes: ${error.nodes}`);
    if (error.cause) console.error(error.cause);
    console.error(`replay: npm run sim -- --seed ${seed} --steps ${steps} --verbose`);
    process.exit(1);
  }
  const now = performance.now();
  if (!single && (now - lastReport > 1000 || seed === from + count - 1)) {
    lastReport = now;
    const seconds = (now - started) / 1000;
    const done = seed - from + 1;
    console.log(
      `seeds ${done}/${count}  events ${events}  ${(done / seconds).toFixed(1)} seeds/s  ` +
        `${Math.round(events / seconds)} events/s`,
    );
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `ok: ${count} seed(s) from ${from}, ${events} events in ${seconds.toFixed(2)}s ` +
    `(${(count / seconds).toFixed(1)} seeds/s, ${Math.round(events / seconds)} events/s); ` +
    `${elections} elections, ${crashes} crashes, ${committed} entries committed, ` +
    `${snapshots} snapshots built, ${installs} installed`,
);
