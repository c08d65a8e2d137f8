/**
 * The chaos report's plain count of lost acknowledged writes (harness.ts `lostWrites`), on
 * hand-made histories: the final read names the surviving write, and an acknowledged write that
 * began after that one had completed was lost; unknown writes may land any time, so they excuse.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runtime } from "../helpers/runtime.ts";
import { lostWrites } from "./harness.ts";
import type { Call, Operation, Outcome } from "./history.ts";

let nextId = 0;
function op(call: Call, invokedAt: number, completedAt: number, outcome: Outcome): Operation {
  return { id: nextId++, client: 0, key: "k", call, invokedAt, completedAt, outcome };
}
const write = (value: string, from: number, to: number, outcome: Outcome = { status: "ok" }) =>
  op({ kind: "write", value }, from, outcome.status === "unknown" ? Infinity : to, outcome);
const finalRead = (value: string | null, at: number) =>
  op({ kind: "read" }, at, at + 1, { status: "ok", value });

describe(`lost acknowledged writes, on ${runtime}`, () => {
  it("none when the final value is the last acknowledged write", () => {
    const history = [write("a", 0, 10), write("b", 20, 30)];
    const final = finalRead("b", 100);
    const result = lostWrites([...history, final], new Map([["k", final]]));
    assert.deepEqual(result, { lost: [], acknowledged: 2 });
  });

  it("none when writes overlapped: either order is possible", () => {
    const history = [write("a", 0, 30), write("b", 10, 20)];
    const final = finalRead("a", 100);
    assert.deepEqual(lostWrites([...history, final], new Map([["k", final]])).lost, []);
  });

  it("an acknowledged write after the surviving one completed is lost", () => {
    const history = [write("a", 0, 10), write("b", 20, 30)];
    const final = finalRead("a", 100);
    const { lost } = lostWrites([...history, final], new Map([["k", final]]));
    assert.equal(lost.length, 1);
    assert.match(lost[0] ?? "", /hides .*write "b"/);
  });

  it("a surviving unknown write excuses later ones (it may have landed last)", () => {
    const history = [
      write("a", 0, 10, { status: "unknown", reason: "timeout" }),
      write("b", 20, 30),
    ];
    const final = finalRead("a", 100);
    assert.deepEqual(lostWrites([...history, final], new Map([["k", final]])).lost, []);
  });

  it("an absent key or a value nobody wrote loses the acknowledged writes", () => {
    const history = [write("a", 0, 10)];
    const absent = finalRead(null, 100);
    assert.equal(lostWrites([...history, absent], new Map([["k", absent]])).lost.length, 1);
    const phantom = finalRead("z", 100);
    const { lost } = lostWrites([...history, phantom], new Map([["k", phantom]]));
    assert.deepEqual(lost, ['k: final value "z" was never written']);
  });
});
