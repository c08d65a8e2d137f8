/**
 * `npm run mutate -- [--seeds N] [--from S] [--steps M] [--only NAME] [--rate] [--verbose]`:
 * copies src/core/ to a temporary directory, applies one mutation at a time, and runs the
 * simulator against the mutant until a seed fails (with --rate: over every seed, counting).
 * Every mutant must be caught; the control (no mutation) must survive every seed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { Core } from "./cluster.ts";
import {
  disableInlineAssertions,
  disableInvariants,
  type Edit,
  type Mutation,
  mutations,
} from "./mutations.ts";
import { runSeed, SimFailure } from "./simulate.ts";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "2000" },
    from: { type: "string", default: "1" },
    steps: { type: "string", default: "2000" },
    only: { type: "string" },
    /** Run every seed and report how many catch the mutant, instead of stopping at the first. */
    rate: { type: "boolean", default: false },
    /** Print the event trace of each mutant's first failing seed. */
    verbose: { type: "boolean", default: false },
  },
});
const seeds = Number(values.seeds);
const from = Number(values.from);
const steps = Number(values.steps);
const coreDir = fileURLToPath(new URL("../../src/core/", import.meta.url));

function applyEdit(dir: string, edit: Edit, mutation: string): void {
  const path = join(dir, edit.file);
  const text = readFileSync(path, "utf8");
  const at = text.indexOf(edit.search);
  if (at < 0 || text.indexOf(edit.search, at + 1) >= 0) {
    throw new Error(
      `mutation ${mutation}: ${at < 0 ? "not found" : "found twice"} in ${edit.file}: ${edit.search}`,
    );
  }
  writeFileSync(path, text.slice(0, at) + edit.replace + text.slice(at + edit.search.length));
}

/** A copy of the core with the mutation's edits applied, loaded as a module. */
async function loadMutant(mutation: Mutation): Promise<{ core: Core; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "keel-mutant-"));
  for (const file of readdirSync(coreDir)) {
    if (file.endsWith(".ts")) writeFileSync(join(dir, file), readFileSync(join(coreDir, file)));
  }
  for (const edit of [disableInvariants, ...mutation.edits]) applyEdit(dir, edit, mutation.name);
  for (const file of readdirSync(dir)) {
    const path = join(dir, file);
    writeFileSync(path, disableInlineAssertions(readFileSync(path, "utf8")));
  }
  const core = (await import(pathToFileURL(join(dir, "mod.ts")).href)) as Core;
  return { core, dir };
}

interface Outcome {
  failure?: SimFailure;
  /** Seeds that failed (all of them with --rate, else at most one). */
  caught: number;
  events: number;
}

function hunt(core: Core): Outcome {
  const outcome: Outcome = { caught: 0, events: 0 };
  for (let seed = from; seed < from + seeds; seed++) {
    try {
      outcome.events += runSeed(core, seed, { steps }).events;
    } catch (error) {
      if (!(error instanceof SimFailure)) throw error;
      outcome.events += error.event;
      outcome.caught++;
      outcome.failure ??= error;
      if (!values.rate) break;
    }
  }
  return outcome;
}

const control: Mutation = { name: "control", description: "no mutation", edits: [] };
const selected = mutations.filter((m) => values.only === undefined || m.name === values.only);
if (selected.length === 0) throw new Error(`no mutation named ${values.only}`);
let ok = true;
for (const mutation of [control, ...selected]) {
  const { core, dir } = await loadMutant(mutation);
  const started = performance.now();
  const result = hunt(core);
  if (values.verbose && result.failure) {
    const log = (line: string) => console.log(line);
    try {
      runSeed(core, result.failure.seed, { steps, log });
    } catch (error) {
      console.log(String(error));
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  rmSync(dir, { recursive: true, force: true });
  const f = result.failure;
  if (f) {
    if (mutation === control) ok = false;
    const rate = values.rate ? `, caught by ${result.caught}/${seeds} seeds` : "";
    console.log(
      `${mutation === control ? "FAIL" : "caught"} ${mutation.name}: seed=${f.seed} event=${f.event} ` +
        `check="${f.check}" (${result.events} events, ${seconds}s${rate})\n    ${f.message}`,
    );
  } else {
    if (mutation !== control) ok = false;
    console.log(
      `${mutation === control ? "ok" : "SURVIVED"} ${mutation.name}: no failure in ${seeds} seeds ` +
        `(${result.events} events, ${seconds}s)`,
    );
  }
}
process.exit(ok ? 0 : 1);
