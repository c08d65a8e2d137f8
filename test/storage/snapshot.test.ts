/**
 * Snapshot stores: the shared contract on the memory store and on the SQLite store of the running
 * runtime, the SQLite schema migration, a child process killed with SIGKILL while it writes a
 * snapshot, and reading a 64 MB snapshot without holding it in memory.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { MemorySnapshotStore } from "../../src/storage/memory-snapshot.ts";
import type { SnapshotStore } from "../../src/storage/snapshot-store.ts";
import type { SqliteLogStore } from "../../src/storage/sqlite.ts";
import { loadAdapter, runtime } from "../helpers/runtime.ts";
import { runAndKill } from "./run-and-kill.ts";
import {
  ByteStream,
  checkBytes,
  commitSnapshot,
  metaAt,
  snapshotStoreContract,
} from "./snapshot-contract.ts";

const { openSqliteDatabase, openSqliteLogStore } = await loadAdapter();

/** The log's snapshot store, closing the log (and so the connection) on close. */
function snapshotsOf(log: SqliteLogStore): SnapshotStore {
  const store = log.snapshots;
  return {
    current: () => store.current(),
    read: (meta, fromOffset) => store.read(meta, fromOffset),
    begin: (meta) => store.begin(meta),
    close: () => log.close(),
  };
}

snapshotStoreContract("MemorySnapshotStore", () => {
  const store = new MemorySnapshotStore();
  return {
    store,
    reopen: async () => store.clone(),
    storedBytes: () => store.storedBytes,
  };
});

snapshotStoreContract(`SqliteSnapshotStore on ${runtime}`, async () => {
  const dir = await mkdtemp(join(tmpdir(), "keel-snapshot-"));
  const path = join(dir, "log.db");
  let log = await openSqliteLogStore(path, { synchronous: "normal" });
  return {
    store: snapshotsOf(log),
    reopen: async () => {
      log = await openSqliteLogStore(path, { synchronous: "normal" });
      return snapshotsOf(log);
    },
    storedBytes: () => log.snapshots.storedBytes(),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
});

describe(`SqliteSnapshotStore on ${runtime}`, () => {
  let dir = "";
  let files = 0;
  const newPath = () => join(dir, `store-${++files}.db`);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "keel-snapshot-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("migrates a version 1 file, keeping its log", async () => {
    const path = newPath();
    let log = await openSqliteLogStore(path);
    await log.write({ hardState: { term: 1, votedFor: "a" }, entries: [] });
    await log.close();
    // Back to version 1: what an older Keel wrote.
    const db = await openSqliteDatabase(path);
    db.exec("DROP TABLE snapshot");
    db.exec("DROP TABLE snapshot_chunk");
    db.exec("PRAGMA user_version = 1");
    db.close();
    log = await openSqliteLogStore(path);
    try {
      assert.deepEqual((await log.load()).hardState, { term: 1, votedFor: "a" });
      assert.equal(await log.snapshots.current(), null);
      await commitSnapshot(log.snapshots, metaAt(5, 1), 1, 1000);
      await checkBytes(log.snapshots, 1, 1000);
    } finally {
      await log.close();
    }
  });

  it("the snapshot store rejects once the log store is closed", async () => {
    const log = await openSqliteLogStore(newPath());
    const writer = await log.snapshots.begin(metaAt(1, 1));
    await log.close();
    await assert.rejects(log.snapshots.current(), /closed/);
    await assert.rejects(writer.write(new Uint8Array(1)), /closed/);
  });

  it("a child killed with SIGKILL mid-write leaves the previous snapshot intact", {
    timeout: 60_000,
  }, async () => {
    const path = newPath();
    const previous = metaAt(10, 1);
    const log = await openSqliteLogStore(path);
    await commitSnapshot(log.snapshots, previous, 11, 1_000_000);
    await log.close();

    const child = join(dirname(fileURLToPath(import.meta.url)), "snapshot-crash-child.ts");
    const killAt = 1_500_000;
    const { acked, signal, stderr } = await runAndKill(child, [path], killAt);
    assert.equal(signal, "SIGKILL", `the child was killed (stderr: ${stderr})`);
    assert.ok(acked >= killAt, `the child acknowledged ${acked} bytes`);

    const again = await openSqliteLogStore(path);
    try {
      assert.deepEqual(await again.snapshots.current(), { meta: previous, size: 1_000_000 });
      await checkBytes(again.snapshots, 11, 1_000_000);
      // The pending snapshot resumes at a durable offset at least as far as acknowledged, and
      // what it holds is the child's bytes.
      const writer = await again.snapshots.begin(metaAt(20, 2));
      assert.ok(writer.offset >= acked, `resumes at ${writer.offset}, ${acked} acknowledged`);
      const source = new ByteStream(22);
      source.take(writer.offset);
      await writer.write(source.take(12_345));
      await writer.commit();
      await checkBytes(again.snapshots, 22, writer.offset);
    } finally {
      await again.close();
    }
  });

  // Deno's RSS grows by the whole size while reading: the chunks node:sqlite returns are garbage
  // that its GC does not reclaim during the loop (and gc() is not exposed to force it), so the
  // measurement says nothing about what the store holds there. Node and Bun measure reliably.
  it("reads a 64 MB snapshot chunk by chunk without holding it in memory", {
    timeout: 60_000,
    skip: runtime === "deno" ? "RSS is not a reliable measure on Deno (see comment)" : false,
  }, async () => {
    const size = 64 * 1024 * 1024;
    const log = await openSqliteLogStore(newPath(), { synchronous: "off" });
    try {
      const writer = await log.snapshots.begin(metaAt(1, 1));
      const chunk = new ByteStream(64).take(1024 * 1024);
      for (let i = 0; i < 64; i++) await writer.write(chunk);
      await writer.commit();
      // Bun's collector may leave read chunks unreclaimed for the whole loop when other suites
      // ran in the process first; collecting on purpose frees garbage, never what a store holds.
      const collect = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc;
      collect?.(true);
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      let bytes = 0;
      for await (const piece of log.snapshots.read()) {
        bytes += piece.length;
        if ((bytes & 0x7fffff) === 0) collect?.(true);
        if ((bytes & 0xfffff) === 0) peak = Math.max(peak, process.memoryUsage().rss);
      }
      assert.equal(bytes, size);
      const growth = peak - baseline;
      // Holding the snapshot would grow RSS by its whole size; GC lag on a busy machine by less.
      assert.ok(growth < (size * 3) / 4, `memory grew by ${(growth / 2 ** 20).toFixed(1)} MB`);
    } finally {
      await log.close();
    }
  });
});
