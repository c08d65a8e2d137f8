/**
 * The WAL synced off the event loop (`syncWal`, src/storage/wal-sync.ts, adapters/wal-sync.ts):
 * nothing the SQLite store acknowledges before a sync that started after its commit completed;
 * commits made during a sync share the next one; a failed sync fails the store; closing waits
 * for the last sync. Then the adapters' sync on a real file: the file it syncs is the store's
 * own WAL.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { walSyncFor } from "../../adapters/wal-sync.ts";
import type { SqliteDatabase } from "../../src/storage/sqlite.ts";
import { SqliteLogStore } from "../../src/storage/sqlite.ts";
import type { SqliteWalSync } from "../../src/storage/wal-sync.ts";
import { loadAdapter, runtime } from "../helpers/runtime.ts";
import { commands } from "./contract.ts";
import { metaAt } from "./snapshot-contract.ts";

const { openSqliteDatabase, openSqliteLogStore } = await loadAdapter();

/** A WAL sync the test completes by hand: each call waits until `finish` settles it. */
class ManualSync implements SqliteWalSync {
  readonly calls: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  closed = 0;
  sync(): Promise<void> {
    return new Promise((resolve, reject) => this.calls.push({ resolve, reject }));
  }
  async close(): Promise<void> {
    this.closed++;
  }
  /** Completes sync number `n` (1-based), or fails it with `error`. */
  finish(n: number, error?: Error): void {
    const call = this.calls[n - 1];
    assert.ok(call, `sync ${n} was never started (${this.calls.length} so far)`);
    if (error) call.reject(error);
    else call.resolve();
  }
}

/** Tracks whether `promise` settled, without letting a rejection go unhandled. */
function watch<T>(promise: Promise<T>): { settled: () => string; promise: Promise<T> } {
  let state = "pending";
  promise.then(
    () => {
      state = "resolved";
    },
    (error: Error) => {
      state = `rejected: ${error.message}`;
    },
  );
  return { settled: () => state, promise };
}

/** Lets the store's macrotask (its group commit) and the promise callbacks after it run. */
async function turn(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

function synchronousPragma(db: SqliteDatabase): number {
  return Number((db.prepare("PRAGMA synchronous").get() as { synchronous: number }).synchronous);
}

describe(`SqliteLogStore with the WAL synced off the event loop, on ${runtime}`, () => {
  let dir = "";
  let files = 0;
  const newPath = () => join(dir, `wal-${++files}.db`);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "keel-wal-sync-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function open(synchronous?: "full" | "normal") {
    const sync = new ManualSync();
    const db = await openSqliteDatabase(newPath());
    const store = new SqliteLogStore(db, { syncWal: sync, ...(synchronous && { synchronous }) });
    return { sync, db, store };
  }

  it("commits without SQLite's own sync (NORMAL) with 'full', and leaves 'normal' alone", async () => {
    const full = await open();
    assert.equal(synchronousPragma(full.db), 1);
    const normal = await open("normal");
    assert.equal(synchronousPragma(normal.db), 1);
    // With "normal" a write resolves without any sync: none is ever started.
    await normal.store.write({ entries: commands([1]) });
    assert.equal(normal.sync.calls.length, 0);
    await normal.store.close();
    assert.equal(normal.sync.closed, 1, "the store closes the sync it was given");
    await full.store.close();
  });

  it("a write resolves only after a sync that started after its commit", async () => {
    const { sync, store } = await open();
    const first = watch(store.write({ entries: commands([1]) }));
    await turn();
    assert.equal(sync.calls.length, 1, "the commit started a sync");
    assert.equal(first.settled(), "pending", "not acknowledged before the sync completes");

    // Committed while sync 1 runs, which may have started before its frames were written.
    const second = watch(store.write({ entries: commands([1], 2) }));
    const third = watch(store.write({ entries: commands([1], 3) }));
    await turn();
    assert.equal(sync.calls.length, 1, "one sync at a time");
    sync.finish(1);
    await turn();
    assert.equal(first.settled(), "resolved");
    assert.equal(second.settled(), "pending", "sync 1 does not cover a later commit");
    assert.equal(third.settled(), "pending");
    assert.equal(sync.calls.length, 2, "the commits made during sync 1 share sync 2");
    sync.finish(2);
    await turn();
    assert.equal(second.settled(), "resolved");
    assert.equal(third.settled(), "resolved");
    assert.equal((await store.load()).lastIndex, 3);
    await store.close();
  });

  it("purge, reset and every snapshot commit wait for the sync too", async () => {
    const { sync, store } = await open();
    const write = store.write({ entries: commands([1, 1, 1]) });
    await turn();
    sync.finish(1);
    await write;

    const purge = watch(store.purge(1));
    await turn();
    assert.equal(purge.settled(), "pending");
    sync.finish(2);
    await purge.promise;

    const begin = watch(store.snapshots.begin(metaAt(3, 1)));
    await turn();
    assert.equal(begin.settled(), "pending");
    sync.finish(3);
    const writer = await begin.promise;
    const chunk = watch(writer.write(new Uint8Array([1, 2, 3])));
    await turn();
    assert.equal(chunk.settled(), "pending");
    sync.finish(4);
    await chunk.promise;
    const commit = watch(writer.commit());
    await turn();
    assert.equal(commit.settled(), "pending");
    sync.finish(5);
    await commit.promise;

    const reset = watch(store.reset(3, 1));
    await turn();
    assert.equal(reset.settled(), "pending");
    sync.finish(6);
    await reset.promise;
    assert.equal(sync.calls.length, 6);
    await store.close();
  });

  it("a failed sync rejects what waited for it and fails the store, never retrying", async () => {
    const { sync, store } = await open();
    const written = watch(store.write({ entries: commands([1]) }));
    await turn();
    const waiting = watch(store.write({ entries: commands([1], 2) }));
    await turn();
    sync.finish(1, new Error("EIO: i/o error, fsync"));
    await turn();
    assert.equal(written.settled(), "rejected: EIO: i/o error, fsync");
    assert.equal(waiting.settled(), "rejected: EIO: i/o error, fsync");
    await assert.rejects(store.write({ entries: commands([1], 3) }), /EIO/);
    await assert.rejects(store.entries(1, 1), /EIO/);
    await assert.rejects(store.snapshots.begin(metaAt(1, 1)), /EIO/);
    assert.equal(sync.calls.length, 1, "no sync after a failed one");
    await store.close();
    assert.equal(sync.closed, 1);
  });

  it("close waits for the last sync, then closes the sync and the file", async () => {
    const { sync, store } = await open();
    const written = watch(store.write({ entries: commands([1]) }));
    const closed = watch(store.close());
    await turn();
    assert.equal(closed.settled(), "pending", "close waits for the sync in flight");
    assert.equal(sync.closed, 0);
    sync.finish(1);
    await closed.promise;
    assert.equal(written.settled(), "resolved");
    assert.equal(sync.closed, 1);
  });
});

describe(`the adapters' WAL sync (adapters/wal-sync.ts) on ${runtime}`, () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "keel-wal-file-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** The files this process holds open, from /proc (Linux). */
  async function openFiles(): Promise<string[]> {
    const fds = await readdir("/proc/self/fd");
    const targets = await Promise.all(
      fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")),
    );
    return targets;
  }

  it("is used on Linux only, for a file path", () => {
    assert.equal(walSyncFor(":memory:"), undefined);
    assert.equal(walSyncFor(""), undefined);
    assert.equal(walSyncFor("file:log.db?mode=rwc"), undefined);
    assert.equal(walSyncFor(join(dir, "log.db")) !== undefined, process.platform === "linux");
  });

  it("syncs the store's own WAL file, which it holds open until the store closes", {
    skip: process.platform !== "linux" && "the adapters sync the WAL themselves on Linux only",
  }, async () => {
    const path = join(dir, "own.db");
    const store = await openSqliteLogStore(path);
    await store.write({ entries: commands([1, 1]) });
    assert.ok((await openFiles()).includes(`${path}-wal`), "the WAL is open for syncing");
    await store.close();
    assert.ok(!(await openFiles()).includes(`${path}-wal`), "and closed with the store");
    const again = await openSqliteLogStore(path);
    assert.equal((await again.load()).lastIndex, 2);
    await again.close();
  });

  it("rejects when there is no WAL to sync (the store then fails rather than acknowledging)", {
    skip: process.platform !== "linux" && "Linux only",
  }, async () => {
    const sync = walSyncFor(join(dir, "missing.db")) as SqliteWalSync;
    await assert.rejects(sync.sync(), /ENOENT|No such file|not found/i);
    await sync.close();
  });
});
