// Storage: a node on the SQLite store of its runtime (better-sqlite3 on Node, bun:sqlite on Bun,
// node:sqlite on Deno), stopped and restarted from the same file.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Entry, MemoryNetwork, Raft, type StateMachine } from "../../../mod.ts";

// In your project: import { openSqliteLogStore } from "keel/node" (or "keel/bun", "keel/deno").
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const { openSqliteLogStore } = (await import(
  `../../../adapters/${runtime}.ts`
)) as typeof import("../../../adapters/node.ts");

/** Keeps the commands it applied, in memory: after a restart the log is replayed into it. */
class Journal implements StateMachine {
  readonly lines: string[] = [];
  apply(entries: readonly Entry[]): Uint8Array[] {
    for (const entry of entries) {
      if (entry.kind === "command") this.lines.push(new TextDecoder().decode(entry.data));
    }
    return entries.map(() => new Uint8Array());
  }
  lastApplied(): number {
    return 0;
  }
}

const dir = mkdtempSync(join(tmpdir(), "keel-guide-"));
const path = join(dir, "n1.db");

async function runNode(commands: string[]): Promise<Journal> {
  // "full" (the default) fsyncs every write before it resolves: what the node acknowledged
  // survives a power loss. "normal" survives a killed process only; "off" is for tests.
  const logStore = await openSqliteLogStore(path, { synchronous: "full" });
  const journal = new Journal();
  const network = new MemoryNetwork();
  const raft = new Raft({
    id: "n1",
    logStore,
    stateMachine: journal,
    network: network.endpoint("n1"),
  });
  network.register("mem://n1", raft);
  await raft.start(); // loads the log and replays it into the state machine
  if (raft.metrics.current.membership.voters.length === 0)
    await raft.initialize({ n1: "mem://n1" });
  await raft.metrics.waitFor((m) => m.role === "leader", { timeoutMs: 10_000 });
  for (const command of commands) await raft.write(new TextEncoder().encode(command));
  await raft.ensureLinearizable(); // everything committed so far is applied
  const { term, lastLogIndex } = raft.metrics.current;
  console.log(`term ${term}, last index ${lastLogIndex}, journal: ${journal.lines.join(", ")}`);
  await raft.shutdown();
  network.close();
  await logStore.close(); // the store is yours to close, after the node stopped
  return journal;
}

await runNode(["first", "second"]);
await runNode(["third"]); // the same file: the first two come back from SQLite
rmSync(dir, { recursive: true, force: true });
