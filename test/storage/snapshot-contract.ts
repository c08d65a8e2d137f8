/**
 * The SnapshotStore contract: what every snapshot store (memory, SQLite, …) must do.
 *
 *   snapshotStoreContract("memory", () => ({ store: new MemorySnapshotStore() }));
 *
 * Snapshot bytes come from a seeded PRNG ({@link ByteStream}), so a test writes and checks
 * megabytes without ever holding them whole.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SnapshotMeta, SnapshotStore } from "../../src/storage/snapshot-store.ts";
import { DEFAULT_SNAPSHOT_CHUNK_BYTES } from "../../src/storage/snapshot-store.ts";
import { membershipOf } from "./contract.ts";

/** A store under test. */
export interface SnapshotStoreFixture {
  readonly store: SnapshotStore;
  /** Opens the same durable data again after `store.close()` (a restart). */
  readonly reopen?: () => Promise<SnapshotStore>;
  /** Bytes the store holds for all its snapshots, current and pending. */
  readonly storedBytes?: () => number;
  /** Removes whatever the fixture created. */
  readonly dispose?: () => Promise<void>;
}

export type SnapshotStoreFactory = () => SnapshotStoreFixture | Promise<SnapshotStoreFixture>;

/** Snapshot metadata at `index` in `term`. */
export function metaAt(index: number, term: number): SnapshotMeta {
  return { index, term, membership: membershipOf(["a", "b", "c"], [`l${index}`]) };
}

/** A deterministic byte stream (mulberry32): the same bytes for the same seed, on every runtime. */
export class ByteStream {
  #state: number;
  #word = 0;
  /** Bytes of #word not yet handed out (0..4). */
  #left = 0;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** The next `n` bytes: the stream does not depend on how it is cut into takes. */
  take(n: number): Uint8Array {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      if (this.#left === 0) {
        this.#state = (this.#state + 0x6d2b79f5) >>> 0;
        let t = this.#state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        this.#word = (t ^ (t >>> 14)) >>> 0;
        this.#left = 4;
      }
      bytes[i] = this.#word & 0xff;
      this.#word >>>= 8;
      this.#left--;
    }
    return bytes;
  }
}

/** Irregular chunk sizes (1 B .. ~200 KiB) adding up to `size`. */
export function* chunkSizes(size: number, seed = 7): Generator<number> {
  let state = seed;
  let left = size;
  while (left > 0) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const n = Math.min(left, 1 + (state % 200_000));
    left -= n;
    yield n;
  }
}

/** Writes `size` bytes of stream `seed` to `writer` in irregular chunks. */
export async function writeBytes(
  writer: { write(chunk: Uint8Array): Promise<void> },
  seed: number,
  size: number,
): Promise<void> {
  const source = new ByteStream(seed);
  for (const n of chunkSizes(size, seed)) await writer.write(source.take(n));
}

/**
 * Reads the current snapshot (from `fromOffset`) and checks it is `size` bytes of stream `seed`,
 * in chunks of at most `maxChunk` bytes. Returns the number of chunks.
 */
export async function checkBytes(
  store: SnapshotStore,
  seed: number,
  size: number,
  options: { meta?: SnapshotMeta; fromOffset?: number; maxChunk?: number } = {},
): Promise<number> {
  const { meta, fromOffset = 0, maxChunk = DEFAULT_SNAPSHOT_CHUNK_BYTES } = options;
  const source = new ByteStream(seed);
  if (fromOffset > 0) source.take(fromOffset);
  let position = fromOffset;
  let chunks = 0;
  for await (const chunk of store.read(meta, fromOffset)) {
    assert.ok(chunk instanceof Uint8Array, "chunks are Uint8Arrays");
    assert.ok(chunk.length > 0 && chunk.length <= maxChunk, `chunk of ${chunk.length} bytes`);
    const expected = source.take(chunk.length);
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== expected[i]) assert.fail(`byte ${position + i} differs`);
    }
    position += chunk.length;
    chunks++;
  }
  assert.equal(position, size, "the whole snapshot was read");
  return chunks;
}

/** Writes and commits snapshot `meta` of `size` bytes of stream `seed`. */
export async function commitSnapshot(
  store: SnapshotStore,
  meta: SnapshotMeta,
  seed: number,
  size: number,
): Promise<void> {
  const writer = await store.begin(meta);
  await writeBytes(writer, seed, size);
  await writer.commit();
}

/** Registers the contract's tests for the stores `factory` makes. */
export function snapshotStoreContract(name: string, factory: SnapshotStoreFactory): void {
  const withStore = (body: (fixture: SnapshotStoreFixture) => Promise<void>) => async () => {
    const fixture = await factory();
    try {
      await body(fixture);
    } finally {
      await fixture.store.close();
      await fixture.dispose?.();
    }
  };
  const MB = 1024 * 1024;

  describe(`SnapshotStore contract: ${name}`, () => {
    it(
      "an empty store has no snapshot",
      withStore(async ({ store, storedBytes }) => {
        assert.equal(await store.current(), null);
        await assert.rejects(async () => {
          for await (const _ of store.read()) assert.fail("no bytes expected");
        }, /no snapshot/);
        if (storedBytes) assert.equal(storedBytes(), 0);
      }),
    );

    it(
      "writes in chunks and reads back the same bytes in bounded chunks",
      withStore(async ({ store }) => {
        const meta = metaAt(100, 3);
        const size = 4 * MB + 123;
        await commitSnapshot(store, meta, 1, size);
        const current = await store.current();
        assert.deepEqual(current, { meta, size });
        const chunks = await checkBytes(store, 1, size, { meta });
        assert.ok(chunks >= size / DEFAULT_SNAPSHOT_CHUNK_BYTES, `${chunks} chunks`);
        // From an offset in the middle of a chunk (a sender resuming).
        await checkBytes(store, 1, size, { fromOffset: 3 * MB + 77 });
        await checkBytes(store, 1, size, { fromOffset: size });
        await assert.rejects(async () => {
          for await (const _ of store.read(metaAt(99, 3))) assert.fail("wrong snapshot");
        }, /not 99\/3/);
        await assert.rejects(async () => {
          for await (const _ of store.read(meta, size + 1)) assert.fail("beyond the end");
        }, RangeError);
        // An empty snapshot is a snapshot too.
        const empty = await store.begin(metaAt(101, 3));
        await empty.commit();
        assert.deepEqual(await store.current(), { meta: metaAt(101, 3), size: 0 });
        await checkBytes(store, 1, 0);
      }),
    );

    it(
      "resumes after a failure from the reported offset, skipping resent bytes",
      withStore(async ({ store, reopen }) => {
        const meta = metaAt(50, 2);
        const size = 2 * MB + 5;
        const source = new ByteStream(2);
        const all = source.take(size); // small enough to hold here, to resend slices of it
        let writer = await store.begin(meta);
        assert.equal(writer.offset, 0);
        await writer.write(all.subarray(0, 700_000));
        await writer.write(all.subarray(700_000, 1_000_000));
        // The stream breaks; the follower may even restart.
        let current = store;
        if (reopen !== undefined) {
          await store.close();
          current = await reopen();
        }
        const stale = writer;
        writer = await current.begin(meta);
        assert.equal(writer.offset, 1_000_000, "resumes at the durable offset");
        await assert.rejects(stale.write(all.subarray(1_000_000, 1_000_010)), /superseded|closed/);
        // The leader resends from an older acknowledged offset: the overlap is skipped.
        await writer.write(all.subarray(900_000, 1_200_000), 900_000);
        assert.equal(writer.offset, 1_200_000);
        await writer.write(all.subarray(0, 10), 0);
        assert.equal(writer.offset, 1_200_000, "a fully resent chunk writes nothing");
        await assert.rejects(writer.write(all.subarray(1_300_000), 1_300_000), RangeError);
        await writer.write(all.subarray(1_200_000));
        assert.equal(await current.current(), null, "nothing is current before commit");
        await writer.commit();
        assert.deepEqual(await current.current(), { meta, size });
        await checkBytes(current, 2, size);
        await assert.rejects(writer.write(all.subarray(0, 1)), /superseded|ended/);
        if (current !== store) await current.close();
      }),
    );

    it(
      "begin with other metadata discards the pending snapshot",
      withStore(async ({ store, storedBytes }) => {
        const first = await store.begin(metaAt(10, 1));
        await writeBytes(first, 3, 300_000);
        const second = await store.begin(metaAt(11, 1));
        assert.equal(second.offset, 0);
        await assert.rejects(first.commit(), /superseded/);
        if (storedBytes) assert.equal(storedBytes(), 0, "the discarded data is deleted");
        await writeBytes(second, 4, 1000);
        await second.commit();
        await checkBytes(store, 4, 1000);
      }),
    );

    it(
      "abort leaves the previous snapshot current",
      withStore(async ({ store, storedBytes }) => {
        const meta = metaAt(20, 1);
        await commitSnapshot(store, meta, 5, 500_000);
        const writer = await store.begin(metaAt(40, 2));
        await writeBytes(writer, 6, 400_000);
        assert.deepEqual(await store.current(), { meta, size: 500_000 });
        await writer.abort();
        await assert.rejects(writer.commit(), /superseded|ended/);
        assert.deepEqual(await store.current(), { meta, size: 500_000 });
        await checkBytes(store, 5, 500_000);
        if (storedBytes) assert.equal(storedBytes(), 500_000, "the aborted data is deleted");
        const again = await store.begin(metaAt(40, 2));
        assert.equal(again.offset, 0, "an aborted snapshot does not resume");
      }),
    );

    it(
      "a newer commit replaces the old snapshot and frees its data",
      withStore(async ({ store, storedBytes }) => {
        const old = metaAt(20, 1);
        await commitSnapshot(store, old, 7, 1 * MB);
        const newer = metaAt(60, 2);
        const writer = await store.begin(newer);
        await writeBytes(writer, 8, 700_000);
        if (storedBytes) assert.equal(storedBytes(), MB + 700_000);
        // A reader of the old snapshot that is overtaken by the commit fails, never mixes.
        const reading = store.read(old)[Symbol.asyncIterator]();
        assert.equal((await reading.next()).done, false);
        await writer.commit();
        await assert.rejects(async () => {
          while (!(await reading.next()).done) {
            // drain
          }
        }, /newer snapshot/);
        assert.deepEqual(await store.current(), { meta: newer, size: 700_000 });
        await checkBytes(store, 8, 700_000);
        if (storedBytes) assert.equal(storedBytes(), 700_000, "the old snapshot's data is gone");
        await assert.rejects(async () => {
          for await (const _ of store.read(old)) assert.fail("old snapshot");
        }, /not 20\/1/);
      }),
    );

    it(
      "reopening keeps the current snapshot and the pending one",
      withStore(async ({ store, reopen }) => {
        if (reopen === undefined) return;
        const meta = metaAt(30, 4);
        await commitSnapshot(store, meta, 9, 1_500_000);
        const writer = await store.begin(metaAt(35, 4));
        await writeBytes(writer, 10, 250_000);
        await store.close();
        const again = await reopen();
        try {
          assert.deepEqual(await again.current(), { meta, size: 1_500_000 });
          await checkBytes(again, 9, 1_500_000);
          const resumed = await again.begin(metaAt(35, 4));
          assert.equal(resumed.offset, 250_000);
        } finally {
          await again.close();
        }
      }),
    );
  });
}
