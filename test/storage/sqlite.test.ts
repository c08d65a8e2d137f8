/**
 * The SQLite LogStore of the running runtime (better-sqlite3 on Node, bun:sqlite on Bun,
 * node:sqlite on Deno): the shared contract, the connection's settings, behaviour identical to
 * the memory store on a random workload, a large batch, a real disk-full failure, and a child
 * process killed with SIGKILL while it writes.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import type { Entry, HardState } from "../../src/core/types.ts";
import type { LogStore, LogWrite } from "../../src/storage/log-store.ts";
import { MemoryLogStore } from "../../src/storage/memory.ts";
import type { SqliteDatabase, SqliteSynchronous } from "../../src/storage/sqlite.ts";
import { SqliteLogStore } from "../../src/storage/sqlite.ts";
import { loadAdapter, runtime } from "../helpers/runtime.ts";
import { blank, command, commands, config, logStoreContract, membershipOf } from "./contract.ts";
import { runAndKill } from "./run-and-kill.ts";
import { applyStep, CrashWorkload } from "./sqlite-crash-workload.ts";

const { openSqliteDatabase, openSqliteLogStore } = await loadAdapter();

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "keel-sqlite-"));
}

/** Everything a store holds, for comparisons. */
async function contents(store: LogStore) {
  const state = await store.load();
  return { state, entries: await store.entries(state.snapshotIndex + 1, state.lastIndex) };
}

/** A column of the one row a pragma returns. */
function pragma(db: SqliteDatabase, name: string): unknown {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>;
  return row[name];
}

logStoreContract(`SqliteLogStore on ${runtime}`, async () => {
  const dir = await tempDir();
  const path = join(dir, "log.db");
  return {
    store: await openSqliteLogStore(path),
    reopen: () => openSqliteLogStore(path),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
});

describe(`SqliteLogStore on ${runtime}`, () => {
  let dir = "";
  let files = 0;
  /** A fresh file name in the suite's directory. */
  const newPath = () => join(dir, `store-${++files}.db`);
  before(async () => {
    dir = await tempDir();
  });
  after(() => rm(dir, { recursive: true, force: true }));

  describe("the connection", () => {
    const cases: [SqliteSynchronous | undefined, number][] = [
      [undefined, 2],
      ["full", 2],
      ["normal", 1],
      ["off", 0],
    ];
    for (const [synchronous, value] of cases) {
      it(`synchronous ${synchronous ?? "(default)"} sets PRAGMA synchronous = ${value}, in WAL mode`, async () => {
        const db = await openSqliteDatabase(newPath());
        const store = new SqliteLogStore(db, synchronous === undefined ? {} : { synchronous });
        try {
          assert.equal(pragma(db, "synchronous"), value);
          assert.equal(String(pragma(db, "journal_mode")).toLowerCase(), "wal");
          assert.equal(String(pragma(db, "locking_mode")).toLowerCase(), "exclusive");
          assert.equal(
            pragma(db, "fullfsync"),
            synchronous === "normal" || synchronous === "off" ? 0 : 1,
          );
        } finally {
          await store.close();
        }
      });
    }

    it("rejects an unknown synchronous mode and closes the connection", async () => {
      const path = newPath();
      await assert.rejects(
        openSqliteLogStore(path, { synchronous: "extra" as SqliteSynchronous }),
        RangeError,
      );
      const store = await openSqliteLogStore(path);
      await store.close();
    });

    it("holds the file exclusively until closed", async () => {
      const path = newPath();
      const store = await openSqliteLogStore(path);
      await store.write({ entries: commands([1]) });
      await assert.rejects(openSqliteLogStore(path), /locked/);
      assert.equal((await store.load()).lastIndex, 1, "the first store is unaffected");
      await store.close();
      const again = await openSqliteLogStore(path);
      assert.equal((await again.load()).lastIndex, 1);
      await again.close();
    });

    it("refuses a file that is not a Keel log, or from a newer Keel", async () => {
      const foreign = newPath();
      let db = await openSqliteDatabase(foreign);
      db.exec("CREATE TABLE t (x)");
      db.close();
      await assert.rejects(openSqliteLogStore(foreign), /not a Keel log/);

      const newer = newPath();
      await (await openSqliteLogStore(newer)).close();
      db = await openSqliteDatabase(newer);
      db.exec("PRAGMA user_version = 99");
      db.close();
      await assert.rejects(openSqliteLogStore(newer), /schema version 99/);
    });

    it("after close every call rejects; closing again does nothing", async () => {
      const store = await openSqliteLogStore(newPath());
      await store.write({ entries: commands([1]) });
      await store.close();
      await assert.rejects(store.load(), /closed/);
      await assert.rejects(store.write({ entries: commands([1], 2) }), /closed/);
      await assert.rejects(store.entries(1, 1), /closed/);
      await assert.rejects(store.purge(1), /closed/);
      await store.close();
    });
  });

  describe("entries", () => {
    it("rejects entries it cannot store, leaving the store unchanged", async () => {
      const store = await openSqliteLogStore(newPath());
      try {
        await store.write({ hardState: { term: 1, votedFor: "a" }, entries: commands([1]) });
        const before = await contents(store);
        const invalid: [string, LogWrite][] = [
          ["an unknown kind", { entries: [{ index: 2, term: 1, kind: "other" } as never] }],
          [
            "a command without bytes",
            { entries: [{ index: 2, term: 1, kind: "command", data: "text" } as never] },
          ],
          [
            "a vote that is not a string",
            { hardState: { term: 2, votedFor: 7 as never }, entries: [] },
          ],
          [
            "valid entries before an invalid one",
            { entries: [command(2, 1), { index: 3, term: 1 } as never] },
          ],
        ];
        for (const [what, write] of invalid) {
          await assert.rejects(store.write(write), TypeError, what);
          assert.deepEqual(await contents(store), before, `${what} left the store unchanged`);
        }
      } finally {
        await store.close();
      }
    });

    it("a batch of 10,000 entries round-trips, also after reopening", async () => {
      const path = newPath();
      const members = membershipOf(["a", "b", "c"], ["d"]);
      const joint = { ...membershipOf(["a", "b", "d"]), outgoing: ["a", "b", "c"] };
      const log: Entry[] = [];
      for (let index = 1; index <= 10_000; index++) {
        const term = 1 + Math.floor(index / 1000);
        if (index % 997 === 0) log.push(config(index, term, index % 2 === 0 ? members : joint));
        else if (index % 101 === 0) log.push(blank(index, term));
        else {
          const data = new Uint8Array(index % 300);
          for (let i = 0; i < data.length; i++) data[i] = (index * 31 + i) & 0xff;
          log.push({ index, term, kind: "command", data });
        }
      }
      let store = await openSqliteLogStore(path);
      try {
        await store.write({ hardState: { term: 11, votedFor: "b" }, entries: log });
        const read = await store.entries(1, 10_000);
        assert.deepEqual(read, log);
        for (const entry of read) {
          if (entry.kind === "command") {
            assert.equal(Object.getPrototypeOf(entry.data), Uint8Array.prototype);
          }
        }
        assert.deepEqual(await store.entries(4000, 4100), log.slice(3999, 4100));
        await store.close();

        store = await openSqliteLogStore(path);
        const state = await store.load();
        assert.equal(state.lastIndex, 10_000);
        assert.equal(state.lastTerm, 11);
        assert.deepEqual(state.hardState, { term: 11, votedFor: "b" });
        assert.deepEqual(state.memberships, [
          { index: 9 * 997, membership: joint },
          { index: 10 * 997, membership: members },
        ]);
        assert.deepEqual(await store.entries(1, 10_000), log);
      } finally {
        await store.close();
      }
    });

    it("memberships survive reopening after purges and truncations", async () => {
      const path = newPath();
      const a = membershipOf(["a"]);
      const ab = membershipOf(["a", "b"]);
      let store = await openSqliteLogStore(path, { synchronous: "normal" });
      await store.write({ entries: [config(1, 1, a)] });
      for (let i = 2; i <= 2000; i += 2) {
        await store.write({ entries: [command(i, 1), config(i + 1, 1, i % 4 === 0 ? ab : a)] });
      }
      await store.purge(998);
      await store.write({ truncateFrom: 999, entries: [] });
      const expected = [
        { index: 995, membership: a },
        { index: 997, membership: ab },
      ];
      assert.deepEqual((await store.load()).memberships, expected);
      await store.close();
      store = await openSqliteLogStore(path);
      const state = await store.load();
      assert.deepEqual(state.memberships, expected);
      assert.equal(state.snapshotIndex, 998);
      assert.equal(state.lastIndex, 998);
      await store.close();
    });
  });

  it("behaves like the memory store on a random workload", async () => {
    const sqlite = await openSqliteLogStore(newPath(), { synchronous: "off" });
    const memory = new MemoryLogStore();
    const random = mulberry32(4242);
    const pick = (n: number) => Math.floor(random() * n);
    const members = [
      membershipOf(["a"]),
      membershipOf(["a", "b", "c"]),
      membershipOf(["b"], ["c"]),
    ];
    let accepted = 0;
    let rejected = 0;
    try {
      for (let op = 0; op < 400; op++) {
        const { state } = await contents(memory);
        const { snapshotIndex: first, lastIndex: last, hardState } = state;
        const action = pick(10);
        let run: (store: LogStore) => Promise<unknown>;
        if (action < 6) {
          // A write, valid most of the time.
          const truncateFrom = pick(3) === 0 ? first + pick(last - first + 3) : undefined;
          const start = truncateFrom !== undefined ? Math.min(truncateFrom, last + 1) : last + 1;
          let term = Math.max(state.lastTerm, 1) + pick(2) - (pick(8) === 0 ? 1 : 0);
          const entries: Entry[] = [];
          const count = pick(6);
          for (let i = 0; i < count; i++) {
            const index = start + i + (pick(30) === 0 ? 1 : 0);
            term += pick(4) === 0 ? 1 : 0;
            const kind = pick(6);
            if (kind === 0) entries.push(config(index, term, members[pick(3)] as never));
            else if (kind === 1) entries.push(blank(index, term));
            else entries.push(command(index, term, `op ${op} #${i}`));
          }
          let next: HardState | undefined;
          if (pick(2) === 0) {
            const voters = [null, "a", "b"];
            next = {
              term: hardState.term + pick(3) - (pick(10) === 0 ? 1 : 0),
              votedFor: voters[pick(3)] as string | null,
            };
          }
          const write: LogWrite = { truncateFrom, entries, hardState: next };
          run = (store) => store.write(write);
        } else if (action < 8) {
          const upTo = first + pick(last - first + 3) - 1;
          run = (store) => store.purge(upTo);
        } else {
          const from = first + pick(last - first + 2);
          const to = from + pick(last - from + 3) - 1;
          run = (store) => store.entries(from, to);
        }
        const [fromMemory, fromSqlite] = await Promise.allSettled([run(memory), run(sqlite)]);
        assert.equal(fromSqlite.status, fromMemory.status, `operation ${op}`);
        if (fromMemory.status === "fulfilled" && fromSqlite.status === "fulfilled") {
          assert.deepEqual(fromSqlite.value, fromMemory.value, `operation ${op} result`);
          accepted++;
        } else {
          const reason = (result: PromiseSettledResult<unknown>) =>
            result.status === "rejected" ? String(result.reason) : "";
          assert.equal(reason(fromSqlite), reason(fromMemory), `operation ${op} error`);
          rejected++;
        }
        assert.deepEqual(await contents(sqlite), await contents(memory), `after operation ${op}`);
      }
      assert.ok(accepted > 100 && rejected > 20, `accepted ${accepted}, rejected ${rejected}`);
    } finally {
      await sqlite.close();
    }
  });

  it("a failed transaction (disk full) rolls back and fails the store", async () => {
    const path = newPath();
    const db = await openSqliteDatabase(path);
    const store = new SqliteLogStore(db);
    await store.write({ hardState: { term: 1, votedFor: "a" }, entries: commands([1, 1]) });
    const before = await contents(store);
    // A real SQLITE_FULL: the file may not grow beyond its current size.
    db.exec(`PRAGMA max_page_count = ${Number(pragma(db, "page_count"))}`);
    const big = { index: 3, term: 2, kind: "command", data: new Uint8Array(1 << 20) } as const;
    const failure = await store
      .write({ hardState: { term: 2, votedFor: null }, entries: [big] })
      .then(
        () => assert.fail("the write should fail"),
        (error: unknown) => error,
      );
    assert.match(String(failure), /full/i);
    await assert.rejects(store.load(), (error) => error === failure, "the store is failed");
    await assert.rejects(store.entries(1, 1), (error) => error === failure);
    await store.close();
    const again = await openSqliteLogStore(path);
    assert.deepEqual(await contents(again), before, "the failed write left no trace");
    await again.close();
  });

  it("a failed snapshot transaction (disk full) fails the snapshot store and the log store", async () => {
    const path = newPath();
    const db = await openSqliteDatabase(path);
    const store = new SqliteLogStore(db);
    await store.write({ hardState: { term: 1, votedFor: "a" }, entries: commands([1, 1]) });
    const meta = { index: 2, term: 1, membership: { voters: ["a"], learners: [], addresses: {} } };
    const writer = await store.snapshots.begin(meta);
    db.exec(`PRAGMA max_page_count = ${Number(pragma(db, "page_count"))}`);
    const failure = await writer.write(new Uint8Array(1 << 20)).then(
      () => assert.fail("the write should fail"),
      (error: unknown) => error,
    );
    assert.match(String(failure), /full/i);
    await assert.rejects(store.snapshots.current(), (error) => error === failure);
    await assert.rejects(store.load(), (error) => error === failure, "the log store failed too");
    await store.close();
    const again = await openSqliteLogStore(path);
    assert.equal(await again.snapshots.current(), null);
    await again.close();
  });

  describe("crash consistency: a child process killed with SIGKILL while writing", () => {
    const child = join(dirname(fileURLToPath(import.meta.url)), "sqlite-crash-child.ts");
    for (const synchronous of ["full", "normal"] as const) {
      it(`synchronous ${synchronous}: every acknowledged step is there, and nothing half-done`, {
        timeout: 60_000,
      }, async () => {
        const path = newPath();
        const killAfter = 40;
        const { acked, signal, stderr } = await runAndKill(child, [path, synchronous], killAfter);
        assert.equal(signal, "SIGKILL", `the child was killed (stderr: ${stderr})`);
        assert.ok(acked >= killAfter, `the child acknowledged ${acked} steps`);

        const store = await openSqliteLogStore(path);
        try {
          const found = await contents(store);
          const written = found.state.hardState.term; // step b writes term b
          assert.ok(written >= acked, `step ${written} on disk, ${acked} acknowledged`);
          // Replay the workload on the memory store: the file must hold exactly the state after
          // the last committed write, or after that step's purge too.
          const memory = new MemoryLogStore();
          const workload = new CrashWorkload();
          const candidates: unknown[] = [];
          for (let i = 1; i <= written; i++) {
            await applyStep(memory, workload.next(), async () => {
              if (i === written) candidates.push(await contents(memory));
            });
          }
          candidates.push(await contents(memory));
          assert.ok(
            candidates.some((candidate) => isDeepStrictEqual(found, candidate)),
            `the file holds the state after step ${written} (written) or its purge`,
          );
          // The store keeps working after the crash.
          await store.write({ hardState: { term: written + 1, votedFor: null }, entries: [] });
        } finally {
          await store.close();
        }
      });
    }
  });
});

/** A small seeded PRNG (mulberry32): the same sequence on every runtime. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
