/**
 * Child process of the SQLite crash test: `<runtime> sqlite-crash-child.ts <file> <synchronous>`
 * opens the store with the runtime's adapter and runs the crash workload, printing `ack <step>`
 * once a step is durable (its write and purge resolved), until it is killed.
 */
import process from "node:process";
import type { SqliteSynchronous } from "../../src/storage/sqlite.ts";
import { loadAdapter } from "../helpers/runtime.ts";
import { applyStep, CrashWorkload } from "./sqlite-crash-workload.ts";

const [path, synchronous] = process.argv.slice(-2) as [string, SqliteSynchronous];
const { openSqliteLogStore } = await loadAdapter();
const store = await openSqliteLogStore(path, { synchronous });
const workload = new CrashWorkload();
const maxSteps = 100_000; // far more than the test waits for; it kills the process long before
for (let i = 0; i < maxSteps; i++) {
  const step = workload.next();
  await applyStep(store, step);
  process.stdout.write(`ack ${step.step}\n`);
}
await store.close();
