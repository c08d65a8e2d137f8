/**
 * The LogStore contract: what every store (memory, SQLite, …) must do, as node:test tests.
 *
 *   logStoreContract("memory", () => ({ store: new MemoryLogStore() }));
 *
 * Each test makes a fresh store through the factory and closes (and disposes) it at the end.
 * Entries must read back exactly as written: payloads as `Uint8Array`, membership objects with
 * the same fields.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Entry, HardState, Membership, NodeId } from "../../src/core/types.ts";
import type { LogStore, LogWrite, StoredState } from "../../src/storage/log-store.ts";

/** A store under test, and how to get at its data again. */
export interface LogStoreFixture {
  readonly store: LogStore;
  /**
   * Opens the same durable data again after `store.close()` (a restart). Without it the reopen
   * test passes without checking anything.
   */
  readonly reopen?: () => Promise<LogStore>;
  /** Removes whatever the fixture created (files, directories). Called once, at the end. */
  readonly dispose?: () => Promise<void>;
}

/** Makes a fresh, empty store for one test. */
export type LogStoreFactory = () => LogStoreFixture | Promise<LogStoreFixture>;

// ---------------------------------------------------------------------------------------------
// Entry builders

const encoder = new TextEncoder();

/** A command entry whose payload is `text`, UTF-8 encoded. */
export function command(index: number, term: number, text = `cmd ${index}`): Entry {
  return { index, term, kind: "command", data: encoder.encode(text) };
}

/** A blank (no-op) entry. */
export function blank(index: number, term: number): Entry {
  return { index, term, kind: "blank" };
}

/** A membership with `mem://id` addresses. */
export function membershipOf(voters: readonly NodeId[], learners: readonly NodeId[] = []) {
  const addresses: Record<NodeId, string> = {};
  for (const id of [...voters, ...learners]) addresses[id] = `mem://${id}`;
  return { voters, learners, addresses } satisfies Membership;
}

/** A membership entry. */
export function config(index: number, term: number, membership: Membership): Entry {
  return { index, term, kind: "membership", membership };
}

/** Command entries for `terms[0]` at `firstIndex`, `terms[1]` at firstIndex + 1, … */
export function commands(terms: readonly number[], firstIndex = 1): Entry[] {
  return terms.map((term, i) => command(firstIndex + i, term));
}

// ---------------------------------------------------------------------------------------------

interface Snapshot {
  readonly state: StoredState;
  readonly entries: Entry[];
}

async function snapshot(store: LogStore): Promise<Snapshot> {
  const state = await store.load();
  return { state, entries: await store.entries(state.snapshotIndex + 1, state.lastIndex) };
}

const empty: StoredState = {
  hardState: { term: 0, votedFor: null },
  snapshotIndex: 0,
  snapshotTerm: 0,
  lastIndex: 0,
  lastTerm: 0,
  memberships: [],
};

/** Registers the contract tests for the stores `makeStore` creates. */
export function logStoreContract(name: string, makeStore: LogStoreFactory): void {
  /**
   * Runs `body` on a fresh store, then closes the store (the reopened one, if the body reported
   * one through `reopened`) and disposes of the fixture.
   */
  async function withStore(
    body: (
      store: LogStore,
      fixture: LogStoreFixture,
      reopened: (store: LogStore) => void,
    ) => Promise<void>,
  ): Promise<void> {
    const fixture = await makeStore();
    let current = fixture.store;
    try {
      await body(current, fixture, (store) => {
        current = store;
      });
    } catch (error) {
      // The store may be closed already: report the test's failure, not a failing close.
      await current.close().catch(() => {});
      await fixture.dispose?.();
      throw error;
    }
    await current.close();
    await fixture.dispose?.();
  }

  describe(`LogStore contract: ${name}`, () => {
    it("a new store loads an empty log at term 0", () =>
      withStore(async (store) => {
        const state = await store.load();
        assert.deepEqual(
          {
            hardState: state.hardState,
            snapshotIndex: state.snapshotIndex,
            snapshotTerm: state.snapshotTerm,
            lastIndex: state.lastIndex,
            lastTerm: state.lastTerm,
            memberships: state.memberships,
          },
          empty,
        );
        assert.deepEqual(await store.entries(1, 0), []);
        await assert.rejects(store.entries(1, 1));
      }));

    it("appended entries read back exactly, across writes", () =>
      withStore(async (store) => {
        const members = membershipOf(["a", "b", "c"]);
        const log = [blank(1, 1), command(2, 1, "x"), config(3, 1, members), command(4, 2, "")];
        await store.write({ entries: log.slice(0, 2) });
        await store.write({ entries: log.slice(2) });
        const read = await store.entries(1, 4);
        assert.deepEqual(read, log);
        assert.ok((read[1] as { data: unknown }).data instanceof Uint8Array);
        assert.deepEqual(await store.entries(2, 3), log.slice(1, 3));
        assert.deepEqual(await store.entries(4, 4), log.slice(3));
        const state = await store.load();
        assert.equal(state.lastIndex, 4);
        assert.equal(state.lastTerm, 2);
        assert.deepEqual(state.memberships, [{ index: 3, membership: members }]);
        await assert.rejects(store.entries(3, 5), "a range past the last index");
        await assert.rejects(store.entries(0, 2), "index 0 is never an entry");
      }));

    it("a write with no entries and no hard state changes nothing", () =>
      withStore(async (store) => {
        await store.write({ entries: commands([1, 1]) });
        const before = await snapshot(store);
        await store.write({ entries: [] });
        assert.deepEqual(await snapshot(store), before);
      }));

    it("truncateFrom deletes a suffix; entries then follow what remains", () =>
      withStore(async (store) => {
        await store.write({ entries: commands([1, 1, 2, 2, 2]) });
        await store.write({ truncateFrom: 3, entries: commands([3, 3], 3) });
        assert.deepEqual(await store.entries(1, 4), [...commands([1, 1]), ...commands([3, 3], 3)]);
        await assert.rejects(store.entries(5, 5));
        let state = await store.load();
        assert.equal(state.lastIndex, 4);
        assert.equal(state.lastTerm, 3);

        await store.write({ truncateFrom: 4, entries: [] });
        state = await store.load();
        assert.equal(state.lastIndex, 3);
        assert.equal(state.lastTerm, 3);

        await store.write({ truncateFrom: 4, entries: commands([4], 4) });
        assert.equal((await store.load()).lastTerm, 4, "truncateFrom = lastIndex + 1 is a no-op");

        await store.write({ truncateFrom: 1, entries: [] });
        state = await store.load();
        assert.equal(state.lastIndex, 0);
        assert.equal(state.lastTerm, 0);
        await store.write({ entries: commands([5], 1) });
        assert.deepEqual(await store.entries(1, 1), commands([5], 1));
      }));

    it("the hard state round-trips, alone or with entries", () =>
      withStore(async (store) => {
        const votedB: HardState = { term: 3, votedFor: "b" };
        await store.write({ hardState: { term: 2, votedFor: null }, entries: [] });
        assert.deepEqual((await store.load()).hardState, { term: 2, votedFor: null });
        await store.write({ hardState: votedB, entries: commands([2]) });
        let state = await store.load();
        assert.deepEqual(state.hardState, votedB);
        assert.equal(state.lastIndex, 1);
        await store.write({ entries: commands([3], 2) });
        assert.deepEqual((await store.load()).hardState, votedB, "kept when not written");
        await store.write({ hardState: { term: 4, votedFor: null }, entries: [] });
        state = await store.load();
        assert.deepEqual(state.hardState, { term: 4, votedFor: null });
      }));

    it("purge deletes a prefix; the log starts after it", () =>
      withStore(async (store) => {
        await store.write({ entries: commands([1, 1, 2, 2, 3, 3]) });
        await store.purge(3);
        await assert.rejects(store.entries(3, 4));
        await assert.rejects(store.entries(1, 1));
        assert.deepEqual(await store.entries(4, 6), commands([2, 3, 3], 4));
        let state = await store.load();
        assert.equal(state.snapshotIndex, 3);
        assert.equal(state.snapshotTerm, 2);
        assert.equal(state.lastIndex, 6);
        assert.equal(state.lastTerm, 3);

        await store.purge(2); // already purged: nothing happens
        assert.deepEqual((await store.load()).snapshotIndex, 3);
        await store.write({ entries: commands([4], 7) });
        assert.deepEqual(await store.entries(4, 7), commands([2, 3, 3, 4], 4));

        await store.purge(7);
        state = await store.load();
        assert.equal(state.snapshotIndex, 7);
        assert.equal(state.snapshotTerm, 4);
        assert.equal(state.lastIndex, 7, "an empty log ends at the snapshot");
        assert.equal(state.lastTerm, 4);
        assert.deepEqual(await store.entries(8, 7), []);
        await store.write({ entries: commands([4], 8) });
        assert.deepEqual(await store.entries(8, 8), commands([4], 8));
        await assert.rejects(store.write({ truncateFrom: 7, entries: [] }), "below the log");
        await assert.rejects(store.purge(9), "beyond the last index");
      }));

    it("reset drops the whole log and its memberships; the log starts after (index, term)", () =>
      withStore(async (store) => {
        const m = membershipOf(["a", "b"]);
        await store.write({
          hardState: { term: 3, votedFor: "a" },
          entries: [config(1, 1, m), ...commands([1, 2, 2], 2)],
        });
        await store.purge(1);
        // Beyond the last index (a snapshot of entries we never had), with another term.
        await store.reset(10, 5);
        let state = await store.load();
        assert.equal(state.snapshotIndex, 10);
        assert.equal(state.snapshotTerm, 5);
        assert.equal(state.lastIndex, 10);
        assert.equal(state.lastTerm, 5);
        assert.deepEqual(state.memberships, []);
        assert.deepEqual(state.hardState, { term: 3, votedFor: "a" }, "the hard state stays");
        await assert.rejects(store.entries(2, 4));
        await store.write({ entries: commands([5, 6], 11) });
        assert.deepEqual(await store.entries(11, 12), commands([5, 6], 11));
        // Below the last index too: what follows it is gone as well.
        await store.reset(11, 5);
        state = await store.load();
        assert.equal(state.lastIndex, 11);
        assert.deepEqual(await store.entries(12, 11), []);
        await assert.rejects(store.reset(-1, 0));
      }));

    it("memberships: the last two, falling back when the latest is truncated", () =>
      withStore(async (store) => {
        const m1 = membershipOf(["a"]);
        const m2 = membershipOf(["a", "b", "c"]);
        const m3 = membershipOf(["a", "b", "c"], ["d"]);
        const c1 = { index: 1, membership: m1 };
        const c3 = { index: 3, membership: m2 };
        const c5 = { index: 5, membership: m3 };
        const memberships = async () => (await store.load()).memberships;
        await store.write({ entries: [config(1, 1, m1), command(2, 1)] });
        assert.deepEqual(await memberships(), [c1]);
        await store.write({ entries: [config(3, 1, m2)] });
        assert.deepEqual(await memberships(), [c1, c3]);
        await store.write({ entries: [command(4, 1), config(5, 2, m3), command(6, 2)] });
        assert.deepEqual(await memberships(), [c3, c5], "the last two, oldest first");

        await store.write({ truncateFrom: 6, entries: [] });
        assert.deepEqual(await memberships(), [c3, c5]);
        await store.write({ truncateFrom: 5, entries: [command(5, 3)] });
        assert.deepEqual(await memberships(), [c1, c3]);
        await store.write({ truncateFrom: 2, entries: [] });
        assert.deepEqual(await memberships(), [c1]);
        await store.write({ truncateFrom: 1, entries: [] });
        assert.deepEqual(await memberships(), []);

        // A truncation and a new configuration in one write.
        await store.write({ entries: [config(1, 4, m1), config(2, 4, m2), command(3, 4)] });
        await store.write({ truncateFrom: 2, entries: [command(2, 5), config(3, 5, m3)] });
        assert.deepEqual(await memberships(), [
          { index: 1, membership: m1 },
          { index: 3, membership: m3 },
        ]);
      }));

    it("memberships do not change when their entries are purged", () =>
      withStore(async (store) => {
        const m1 = membershipOf(["a"]);
        const m2 = membershipOf(["a", "b"]);
        const m3 = membershipOf(["a", "b", "c"]);
        const c1 = { index: 1, membership: m1 };
        const c2 = { index: 2, membership: m2 };
        const c4 = { index: 4, membership: m3 };
        const memberships = async () => (await store.load()).memberships;
        await store.write({ entries: [config(1, 1, m1), config(2, 1, m2), command(3, 1)] });
        await store.purge(1);
        assert.deepEqual(await memberships(), [c1, c2]);
        await store.purge(2);
        assert.deepEqual(await memberships(), [c1, c2]);
        await store.write({ truncateFrom: 3, entries: [command(3, 2)] });
        assert.deepEqual(await memberships(), [c1, c2]);
        await store.write({ entries: [config(4, 2, m3)] });
        assert.deepEqual(await memberships(), [c2, c4]);
        await store.write({ truncateFrom: 4, entries: [] });
        assert.deepEqual(await memberships(), [c1, c2], "the purged one comes back");
        await store.write({ entries: [config(4, 2, m3), command(5, 2)] });
        await store.purge(5);
        assert.deepEqual(await memberships(), [c2, c4]);
        assert.equal((await store.load()).lastIndex, 5);
      }));

    it("an invalid write is rejected and changes nothing", () =>
      withStore(async (store) => {
        await store.write({ hardState: { term: 3, votedFor: "a" }, entries: commands([1, 2, 3]) });
        const before = await snapshot(store);
        const invalid: [string, LogWrite][] = [
          ["a gap after the last entry", { entries: commands([3], 5) }],
          ["an overlap without truncation", { entries: commands([3], 3) }],
          ["entries that are not contiguous", { entries: [command(4, 3), command(6, 3)] }],
          ["entries out of order", { entries: [command(5, 3), command(4, 3)] }],
          ["a term below the entry before", { entries: commands([2], 4) }],
          ["a term going down within the batch", { entries: commands([4, 3], 4) }],
          ["truncateFrom 0", { truncateFrom: 0, entries: [] }],
          ["truncateFrom past lastIndex + 1", { truncateFrom: 5, entries: [] }],
          [
            "entries not right after the truncation",
            { truncateFrom: 2, entries: commands([3], 3) },
          ],
          ["a hard state term going back", { hardState: { term: 2, votedFor: null }, entries: [] }],
          [
            "a vote changed within its term",
            { hardState: { term: 3, votedFor: "b" }, entries: [] },
          ],
          [
            "a valid hard state with invalid entries",
            { hardState: { term: 5, votedFor: null }, entries: commands([5], 6) },
          ],
          [
            "a valid truncation with invalid entries",
            { truncateFrom: 2, entries: [command(2, 3), command(4, 3)] },
          ],
        ];
        for (const [what, write] of invalid) {
          await assert.rejects(store.write(write), Error, what);
          assert.deepEqual(await snapshot(store), before, `${what} left the store unchanged`);
        }
        await store.write({ entries: commands([4], 4) });
        assert.equal((await store.load()).lastIndex, 4, "the store still works");
      }));

    it("reopening after close keeps the data", () =>
      withStore(async (store, fixture, reopened) => {
        if (fixture.reopen === undefined) return;
        const members = membershipOf(["a", "b"]);
        await store.write({
          hardState: { term: 2, votedFor: "a" },
          entries: [config(1, 1, members), ...commands([1, 2], 2)],
        });
        await store.write({ truncateFrom: 3, entries: commands([2, 2], 3) });
        await store.purge(1);
        const before = await snapshot(store);
        await store.close();

        const again = await fixture.reopen();
        reopened(again);
        assert.deepEqual(await snapshot(again), before);
        await again.write({ hardState: { term: 3, votedFor: null }, entries: commands([3], 5) });
        assert.deepEqual(await again.entries(2, 5), commands([1, 2, 2, 3], 2));
      }));
  });
}
