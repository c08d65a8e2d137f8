/** A Raft node on a real SQLite file, as the end-to-end, fuzz and file-backed driver tests run it. */
import { Raft, type RaftOptions } from "../../src/driver/raft.ts";
import type { SqliteLogStore } from "../../src/storage/sqlite.ts";
import { loadAdapter } from "./runtime.ts";

/**
 * Opens the SQLite file at `path` (synchronous "full", as a durable node runs) and starts a Raft
 * node with its log and snapshots in it. The caller shuts the node down, then closes the store.
 */
export async function startSqliteRaft(
  path: string,
  options: Omit<RaftOptions, "logStore" | "snapshotStore">,
): Promise<{ raft: Raft; store: SqliteLogStore }> {
  const { openSqliteLogStore } = await loadAdapter();
  const store = await openSqliteLogStore(path, { synchronous: "full" });
  const raft = new Raft({ ...options, logStore: store, snapshotStore: store.snapshots });
  await raft.start();
  return { raft, store };
}
