/** The in-memory LogStore: the shared contract, plus failure injection, close/reopen and clone. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InjectedStorageError, MemoryLogStore } from "../../src/storage/memory.ts";
import { command, commands, config, logStoreContract, membershipOf } from "./contract.ts";

logStoreContract("MemoryLogStore, reopened on the same instance", () => {
  const store = new MemoryLogStore();
  return { store, reopen: async () => store };
});

logStoreContract("MemoryLogStore, reopened as a clone", () => {
  const store = new MemoryLogStore();
  return { store, reopen: async () => store.clone() };
});

describe("MemoryLogStore failure injection", () => {
  it("failAfterWrites: n writes succeed, then every call rejects", async () => {
    const store = new MemoryLogStore({ failAfterWrites: 2 });
    await store.write({ entries: commands([1]) });
    await store.write({ entries: commands([1], 2) });
    await assert.rejects(store.write({ entries: commands([1], 3) }), InjectedStorageError);
    await assert.rejects(store.load(), InjectedStorageError);
    await assert.rejects(store.entries(1, 2), InjectedStorageError);
    await assert.rejects(store.purge(1), InjectedStorageError);
    await assert.rejects(store.write({ entries: [] }), InjectedStorageError);
    await store.close(); // closing a failed store still succeeds
    assert.equal(store.lastIndex, 2, "the failed write was not applied");
    assert.equal(store.writeCount, 2);

    store.recover();
    const state = await store.load();
    assert.equal(state.lastIndex, 2);
    await store.write({ entries: commands([1], 3) });
    assert.equal(store.lastIndex, 3);
  });

  it("failAfterWrites counts from the moment it is called and takes the test's error", async () => {
    const store = new MemoryLogStore();
    await store.write({ entries: commands([1]) });
    const disk = new Error("disk full");
    store.failAfterWrites(1, disk);
    await store.write({ entries: commands([1], 2) });
    await assert.rejects(store.write({ entries: commands([1], 3) }), disk);
    await assert.rejects(store.load(), disk);
  });

  it("an invalid write does not count toward failAfterWrites", async () => {
    const store = new MemoryLogStore({ failAfterWrites: 1 });
    await assert.rejects(store.write({ entries: commands([1], 2) }), RangeError);
    await store.write({ entries: commands([1]) });
    await assert.rejects(store.write({ entries: [] }), InjectedStorageError);
  });

  it("fail() makes every later call reject at once", async () => {
    const store = new MemoryLogStore();
    await store.write({ entries: commands([1]) });
    store.fail();
    await assert.rejects(store.entries(1, 1), InjectedStorageError);
    await assert.rejects(store.write({ entries: commands([1], 2) }), InjectedStorageError);
    store.recover();
    assert.equal((await store.load()).lastIndex, 1);
  });

  it("rejects a negative failAfterWrites", () => {
    assert.throws(() => new MemoryLogStore({ failAfterWrites: -1 }), RangeError);
  });
});

describe("MemoryLogStore close, reopen and clone", () => {
  it("after close only load works, and reopens the store with its data", async () => {
    const store = new MemoryLogStore();
    await store.write({ hardState: { term: 1, votedFor: "a" }, entries: commands([1]) });
    await store.close();
    assert.equal(store.closed, true);
    await assert.rejects(store.write({ entries: commands([1], 2) }), /closed/);
    await assert.rejects(store.entries(1, 1), /closed/);
    await assert.rejects(store.purge(1), /closed/);
    const state = await store.load();
    assert.equal(store.closed, false);
    assert.deepEqual(state.hardState, { term: 1, votedFor: "a" });
    await store.write({ entries: commands([1], 2) });
    assert.equal(store.lastIndex, 2);
  });

  it("a clone is independent of the original (late writes of a crashed node are lost)", async () => {
    const store = new MemoryLogStore();
    const members = membershipOf(["a", "b"]);
    await store.write({ hardState: { term: 1, votedFor: "a" }, entries: [config(1, 1, members)] });
    const copy = store.clone();
    await store.write({ hardState: { term: 2, votedFor: null }, entries: commands([2], 2) });
    await copy.write({ truncateFrom: 1, entries: commands([1]) });

    const original = await store.load();
    assert.equal(original.lastIndex, 2);
    assert.deepEqual(original.memberships, [{ index: 1, membership: members }]);
    const cloned = await copy.load();
    assert.deepEqual(cloned.hardState, { term: 1, votedFor: "a" });
    assert.equal(cloned.lastIndex, 1);
    assert.deepEqual(cloned.memberships, []);
  });

  it("a clone does not inherit an injected failure", async () => {
    const store = new MemoryLogStore();
    store.fail();
    const copy = store.clone();
    assert.equal((await copy.load()).lastIndex, 0);
  });
});

describe("MemoryLogStore bookkeeping", () => {
  it("counts writes and entries; first and last index follow purge and truncation", async () => {
    const store = new MemoryLogStore();
    assert.equal(store.firstIndex, 1);
    assert.equal(store.lastIndex, 0);
    await store.write({ entries: commands([1, 1, 1]) });
    await store.write({ truncateFrom: 3, entries: commands([2, 2], 3) });
    await store.purge(2);
    assert.equal(store.writeCount, 2);
    assert.equal(store.entriesWritten, 5);
    assert.equal(store.firstIndex, 3);
    assert.equal(store.lastIndex, 4);
    assert.deepEqual(store.hardState, { term: 0, votedFor: null });
  });

  it("resolves on the microtask queue: many writes finish before a timer fires", async () => {
    const store = new MemoryLogStore();
    let timerFired = false;
    const timer = setTimeout(() => {
      timerFired = true;
    }, 0);
    for (let i = 1; i <= 1000; i++) await store.write({ entries: commands([1], i) });
    assert.equal(timerFired, false);
    clearTimeout(timer);
    assert.equal(store.lastIndex, 1000);
  });

  it("keeps the last two memberships cheaply across many appends and truncations", async () => {
    const store = new MemoryLogStore();
    const a = membershipOf(["a"]);
    const ab = membershipOf(["a", "b"]);
    await store.write({ entries: [config(1, 1, a)] });
    for (let i = 2; i <= 2000; i += 2) {
      await store.write({ entries: [command(i, 1), config(i + 1, 1, i % 4 === 0 ? ab : a)] });
    }
    const memberships = async () => (await store.load()).memberships;
    assert.deepEqual(await memberships(), [
      { index: 1999, membership: a },
      { index: 2001, membership: ab },
    ]);
    await store.write({ truncateFrom: 1000, entries: [] });
    assert.deepEqual(await memberships(), [
      { index: 997, membership: ab },
      { index: 999, membership: a },
    ]);
    await store.purge(998);
    await store.write({ truncateFrom: 999, entries: [] });
    assert.deepEqual(await memberships(), [
      { index: 995, membership: a },
      { index: 997, membership: ab },
    ]);
  });
});
