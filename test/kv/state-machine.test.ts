/**
 * The KV state machine's snapshot and restore, without a cluster: a snapshot restores to the
 * same map and session table, is of the state when it was taken even while applies go on, spans
 * chunks (multi-byte text included), and a stream that is not a KV snapshot is refused.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeResponse,
  encodeCommand,
  type KvCommand,
  KvStateMachine,
} from "../../examples/kv/state-machine.ts";
import type { Entry } from "../../src/core/types.ts";

const membership = { voters: ["n1"], learners: [], addresses: {} };

let nextIndex = 1;
function entry(command: KvCommand): Entry {
  return { index: nextIndex++, term: 1, kind: "command", data: encodeCommand(command) };
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk.slice());
  return chunks;
}

async function* replay(chunks: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

describe("KvStateMachine snapshots", () => {
  it("restores the map and the session table; a retried write is answered from it", async () => {
    const machine = new KvStateMachine();
    machine.apply([
      entry({ op: "put", key: "a", value: "1" }),
      entry({ op: "put", key: "b", value: "ünïcødé ✓" }),
      entry({ op: "delete", key: "a" }),
      entry({ op: "put", key: "c", value: "3", client: "c1", seq: 4 }),
    ]);
    const first = machine.apply([
      entry({ op: "cas", key: "c", expected: "3", value: "4", client: "c1", seq: 5 }),
    ]);
    const index = machine.appliedIndex;
    const chunks = await collect(machine.snapshot());
    const copy = new KvStateMachine();
    await copy.restore({ index, term: 1, membership }, replay(chunks));
    assert.equal(copy.appliedIndex, index);
    assert.equal(copy.get("a"), undefined);
    assert.equal(copy.get("b"), "ünïcødé ✓");
    assert.equal(copy.get("c"), "4");
    assert.equal(copy.size, machine.size);
    assert.equal(copy.sessionCount, 1);
    // The cas again with the same seq: answered with the first answer, not applied twice.
    const retry = entry({ op: "cas", key: "c", expected: "3", value: "4", client: "c1", seq: 5 });
    const [again] = copy.apply([retry]);
    assert.deepEqual(decodeResponse(again as Uint8Array), decodeResponse(first[0] as Uint8Array));
    assert.equal(copy.get("c"), "4");
  });

  it("is of the state when taken, though applies go on while it streams; it spans chunks", async () => {
    const machine = new KvStateMachine();
    const big = "é".repeat(5000); // two bytes each: chunk boundaries fall inside characters
    const puts: Entry[] = [];
    for (let i = 0; i < 100; i++)
      puts.push(entry({ op: "put", key: `k${i}`, value: `${i}${big}` }));
    machine.apply(puts);
    const index = machine.appliedIndex;
    const stream = machine.snapshot();
    machine.apply([
      entry({ op: "put", key: "k0", value: "changed" }),
      entry({ op: "delete", key: "k1" }),
    ]);
    const chunks = await collect(stream);
    assert.ok(chunks.length > 1, `${chunks.length} chunks`);
    // Split differently on the way in: at every 1000 bytes.
    const whole = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      whole.set(chunk, at);
      at += chunk.length;
    }
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < whole.length; i += 1000) pieces.push(whole.subarray(i, i + 1000));
    const copy = new KvStateMachine();
    await copy.restore({ index, term: 1, membership }, replay(pieces));
    assert.equal(copy.size, 100);
    assert.equal(copy.get("k0"), `0${big}`);
    assert.equal(copy.get("k1"), `1${big}`);
  });

  it("refuses a stream that is not a KV snapshot, keeping its state", async () => {
    const machine = new KvStateMachine();
    machine.apply([entry({ op: "put", key: "kept", value: "yes" })]);
    const junk = replay([new TextEncoder().encode('["d","x","y"]\n')]);
    await assert.rejects(machine.restore({ index: 99, term: 1, membership }, junk), /not a KV/);
    assert.equal(machine.get("kept"), "yes");
    await assert.rejects(machine.restore({ index: 99, term: 1, membership }, replay([])), /empty/);
  });
});
