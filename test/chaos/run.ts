/**
 * The chaos run from the command line:
 *
 *   npm run chaos -- [--minutes N] [--seed S] [--clients C] [--keys K] [--runtime node|bun|deno]
 *
 * The harness runs on Node; `--runtime` picks the runtime of the five nodes (default node).
 * Prints the seed first (a run's fault schedule replays from it), the nemesis's steps as they
 * happen, then the report. Exit code 0 when the history is linearizable and nothing else went
 * wrong, 1 on a violation (or a crash, a lost write, a cluster that did not converge), 2 on bad
 * arguments.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { runtime } from "../helpers/runtime.ts";
import { formatReport, runChaos } from "./harness.ts";

function usage(problem: string): never {
  process.stderr.write(
    `${problem}\nusage: run.ts [--minutes N] [--seed S] [--clients C] [--keys K] [--runtime node|bun|deno]\n`,
  );
  process.exit(2);
}

let values: Record<string, string | undefined>;
try {
  ({ values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      minutes: { type: "string", default: "2" },
      seed: { type: "string" },
      clients: { type: "string", default: "12" },
      keys: { type: "string", default: "30" },
      runtime: { type: "string", default: "node" },
    },
    strict: true,
  }));
} catch (error) {
  usage((error as Error).message);
}

const minutes = Number(values.minutes);
if (!(minutes > 0 && Number.isFinite(minutes))) usage(`--minutes ${values.minutes}: not > 0`);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
if (!Number.isSafeInteger(seed) || seed < 0) usage(`--seed ${values.seed}: not an integer ≥ 0`);
const clients = Number(values.clients);
const keys = Number(values.keys);
if (!Number.isInteger(clients) || clients < 1) usage(`--clients ${values.clients}: not ≥ 1`);
if (!Number.isInteger(keys) || keys < 1) usage(`--keys ${values.keys}: not ≥ 1`);

const nodeRuntime = values.runtime;
if (nodeRuntime !== "node" && nodeRuntime !== "bun" && nodeRuntime !== "deno") {
  usage(`--runtime ${nodeRuntime}: not node, bun or deno`);
}
if (runtime !== "node") usage(`the harness runs on Node (this is ${runtime}); use --runtime`);

const started = Date.now();
const log = (line: string) => {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[${t}s] ${line}\n`);
};
process.stdout.write(
  `chaos: seed ${seed}, ${minutes} min, ${clients} clients, ${keys} keys, nodes on ${nodeRuntime}\n`,
);
// An interrupted run still leaves no process behind: runChaos kills its nodes on exit.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

const report = await runChaos({
  seed,
  durationMs: minutes * 60_000,
  clients,
  keys,
  runtime: nodeRuntime,
  log,
});
process.stdout.write(`${formatReport(report)}\n`);
process.exitCode = report.ok ? 0 : 1;
