/**
 * The snapshot streams on their own, against a scripted follower and a fake driver: where a
 * stream resumes, when it gives up, how it reacts to a higher term and to a cancel, and which
 * partial copies a receiver resumes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Message, NodeId, Role } from "../../src/core/types.ts";
import {
  SnapshotReceiver,
  SnapshotSenders,
  SnapshotSlot,
  type TransferHost,
} from "../../src/driver/snapshot-transfer.ts";
import type { Network, SnapshotChunk, SnapshotChunkResponse } from "../../src/net/network.ts";
import { MemorySnapshotStore } from "../../src/storage/memory-snapshot.ts";
import type { SnapshotMeta } from "../../src/storage/snapshot-store.ts";

const membership = { voters: ["l", "f"], learners: [], addresses: { l: "mem://l", f: "mem://f" } };
const meta: SnapshotMeta = { index: 50, term: 2, membership };
const SIZE = 1000;

type Input = Parameters<TransferHost["step"]>[0];

/** A fake driver: records what the streams step, answers installSnapshot with `reply`. */
function fakeHost(
  store: MemorySnapshotStore,
  network: Network,
  overrides: Partial<TransferHost> = {},
) {
  const stepped: Input[] = [];
  const messages: Message[] = [];
  let reported!: (input: Input) => void;
  const report = new Promise<Input>((resolve) => {
    reported = resolve;
  });
  const host: TransferHost = {
    id: "l",
    store,
    network,
    slot: new SnapshotSlot(),
    chunkBytes: 100,
    window: 2,
    rpcTimeoutMs: 50,
    installTimeoutMs: 50,
    retryMinMs: 1,
    retryMaxMs: 4,
    maxAttempts: 3,
    term: () => 3,
    role: (): Role => "leader",
    stopped: () => false,
    addressOf: (peer: NodeId) => `mem://${peer}`,
    step: (input) => {
      stepped.push(input);
      reported(input);
    },
    stepMessage: async (message) => {
      messages.push(message);
      return null;
    },
    fail: (what, error) => {
      throw new Error(`${what}: ${String(error)}`);
    },
    debug: () => {},
    ...overrides,
  };
  return { host, stepped, messages, report };
}

async function storeWithSnapshot(): Promise<MemorySnapshotStore> {
  const store = new MemorySnapshotStore({ chunkBytes: 64 });
  const writer = await store.begin(meta);
  await writer.write(new Uint8Array(SIZE).map((_, i) => i % 251));
  await writer.commit();
  return store;
}

/** A follower scripted chunk by chunk: `answer` decides each response (or throws). */
function scripted(answer: (chunk: SnapshotChunk, n: number) => SnapshotChunkResponse | Error) {
  const chunks: SnapshotChunk[] = [];
  const network: Network = {
    send: () => Promise.reject(new Error("not used")),
    sendSnapshotChunk: async (_to, _address, chunk) => {
      chunks.push(chunk);
      const result = answer(chunk, chunks.length - 1);
      if (result instanceof Error) throw result;
      return result;
    },
  };
  return { network, chunks };
}

const held = (offset: number, term = 3): SnapshotChunkResponse => ({
  term,
  from: "f",
  to: "l",
  offset,
  answer: null,
});

describe("SnapshotSenders", () => {
  it("opens with an empty chunk and resumes from the offset the follower holds", async () => {
    const store = await storeWithSnapshot();
    const { network, chunks } = scripted((chunk) => {
      if (chunk.offset === 0 && chunk.data.length === 0) return held(700); // kept from before
      const end = chunk.offset + chunk.data.length;
      if (!chunk.done) return held(end);
      return {
        ...held(end),
        answer: {
          type: "installSnapshotResponse",
          term: 3,
          from: "f",
          to: "l",
          success: true,
          matchIndex: 50,
        },
      };
    });
    const { host, messages, report } = fakeHost(store, network);
    new SnapshotSenders(host).start("f", 50, 2);
    assert.deepEqual(await report, { type: "snapshotSent", peer: "f", index: 50, success: true });
    assert.deepEqual(
      chunks.map((c) => [c.offset, c.data.length, c.done]),
      [
        [0, 0, false],
        [700, 100, false],
        [800, 100, false],
        [900, 100, true],
      ],
    );
    assert.equal(chunks[3]?.data[99], 999 % 251, "the bytes at their offsets");
    assert.equal(messages[0]?.type, "installSnapshotResponse", "the answer is stepped");
  });

  it("gives up after maxAttempts failed chunks in a row, reporting failure", async () => {
    const store = await storeWithSnapshot();
    const { network, chunks } = scripted((chunk, n) =>
      n === 0
        ? held(0)
        : chunk.offset === 100
          ? new Error("lost")
          : held(chunk.offset + chunk.data.length),
    );
    const { host, report } = fakeHost(store, network);
    new SnapshotSenders(host).start("f", 50, 2);
    assert.deepEqual(await report, { type: "snapshotSent", peer: "f", index: 50, success: false });
    // Each failure resends from the acknowledged offset (100), never from the start.
    assert.equal(chunks.filter((c) => c.offset === 100).length, 3);
    assert.deepEqual(
      chunks.filter((c) => c.offset === 0).map((c) => c.data.length),
      [0, 100],
    );
  });

  it("an answer with a higher term is stepped and ends the stream", async () => {
    const store = await storeWithSnapshot();
    const { network, chunks } = scripted(() => held(0, 7));
    const { host, messages, report } = fakeHost(store, network);
    new SnapshotSenders(host).start("f", 50, 2);
    assert.equal((await report).success, false);
    assert.equal(chunks.length, 1);
    assert.deepEqual(messages, [
      {
        type: "installSnapshotResponse",
        term: 7,
        from: "f",
        to: "l",
        success: false,
        matchIndex: 0,
      },
    ]);
  });

  it("a cancelled stream stops sending and reports nothing", async () => {
    const store = await storeWithSnapshot();
    let cancel = () => {};
    let cancelled!: () => void;
    const done = new Promise<void>((resolve) => {
      cancelled = resolve;
    });
    const { network, chunks } = scripted((_chunk, n) => {
      if (n === 2) {
        cancel();
        cancelled();
      }
      return new Error("lost");
    });
    const { host, stepped } = fakeHost(store, network, { maxAttempts: 100 });
    const senders = new SnapshotSenders(host);
    cancel = () => senders.cancel("f");
    senders.start("f", 50, 2);
    await done;
    await senders.idle();
    assert.equal(chunks.length, 3);
    assert.deepEqual(stepped, []);
    assert.deepEqual(senders.active, []);
  });

  it("a snapshot that is no longer the current one is not sent", async () => {
    const store = await storeWithSnapshot();
    const { network, chunks } = scripted(() => held(0));
    const { host, report } = fakeHost(store, network);
    new SnapshotSenders(host).start("f", 40, 2);
    assert.equal((await report).success, false);
    assert.equal(chunks.length, 0);
  });
});

describe("SnapshotReceiver", () => {
  const chunk = (from: NodeId, term: number, offset: number, length: number): SnapshotChunk => ({
    snapshot: {
      type: "installSnapshot",
      term,
      from,
      to: "f",
      lastIncludedIndex: 50,
      lastIncludedTerm: 2,
      membership,
    },
    offset,
    data: new Uint8Array(length).fill(term),
    done: false,
  });

  it("resumes a copy for the same sender and term only", async () => {
    const store = new MemorySnapshotStore();
    let term = 3;
    const { host } = fakeHost(store, scripted(() => held(0)).network, {
      id: "f",
      term: () => term,
      role: () => "follower",
    });
    const receiver = new SnapshotReceiver(host);
    assert.equal((await receiver.handle(chunk("a", 3, 0, 40))).offset, 40);
    assert.equal((await receiver.handle(chunk("a", 3, 0, 0))).offset, 40, "resumed");
    // Another leader (a later term) with the same snapshot: its bytes may differ, start over.
    term = 4;
    assert.equal((await receiver.handle(chunk("b", 4, 40, 10))).offset, 0, "not resumed");
    assert.equal((await receiver.handle(chunk("b", 4, 0, 30))).offset, 30);
    assert.equal(store.storedBytes, 30);
    // The older term's chunks are stale now: answered, not written.
    const stale = await receiver.handle(chunk("a", 3, 40, 10));
    assert.deepEqual(stale, { term: 4, from: "f", to: "a", offset: 0, answer: null });
    assert.equal(store.storedBytes, 30);
  });
});
