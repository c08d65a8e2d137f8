/**
 * The quorum module (§5.2 elections, §5.3 commitment, thesis §4.3 joint consensus): one place
 * that counts votes and acknowledgements, for a majority and for a joint configuration.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { committedIndex, majorityIndex, majorityVote, type NodeId, voteResult } from "../../mod.ts";
import { membershipOf } from "./harness.ts";

function lookup<T>(values: Record<NodeId, T>): (id: NodeId) => T | undefined {
  return (id) => values[id];
}

function indexes(values: Record<NodeId, number>): (id: NodeId) => number {
  return (id) => values[id] ?? 0;
}

describe("§5.3 quorum: the index a majority has reached", () => {
  it("§5.3 one voter: its own index", () => {
    assert.equal(majorityIndex(["a"], indexes({ a: 7 })), 7);
  });

  it("§5.3 three voters: the median", () => {
    assert.equal(majorityIndex(["a", "b", "c"], indexes({ a: 5, b: 3, c: 9 })), 5);
    assert.equal(majorityIndex(["a", "b", "c"], indexes({ a: 5, b: 0, c: 0 })), 0);
    assert.equal(majorityIndex(["a", "b", "c"], indexes({ a: 4, b: 4, c: 0 })), 4);
  });

  it("§5.3 four voters need three; five voters need three", () => {
    assert.equal(majorityIndex(["a", "b", "c", "d"], indexes({ a: 9, b: 8, c: 2, d: 1 })), 2);
    assert.equal(
      majorityIndex(["a", "b", "c", "d", "e"], indexes({ a: 9, b: 8, c: 7, d: 1, e: 0 })),
      7,
    );
  });

  it("§5.3 the answer does not depend on the order of voters", () => {
    const values = indexes({ a: 3, b: 10, c: 6, d: 6, e: 1 });
    const ids = ["a", "b", "c", "d", "e"];
    for (let shift = 0; shift < ids.length; shift++) {
      const order = [...ids.slice(shift), ...ids.slice(0, shift)];
      assert.equal(majorityIndex(order, values), 6);
      assert.equal(majorityIndex([...order].reverse(), values), 6);
    }
  });

  it("thesis §4.3 no voters at all puts no limit (the identity of a joint min)", () => {
    assert.equal(majorityIndex([], indexes({})), Number.POSITIVE_INFINITY);
  });
});

describe("§5.2 quorum: the outcome of a vote among a majority", () => {
  const three = ["a", "b", "c"];
  const five = ["a", "b", "c", "d", "e"];
  const cases: [voters: NodeId[], votes: Record<NodeId, boolean>, result: string][] = [
    [three, { a: true }, "pending"],
    [three, { a: true, b: true }, "won"],
    [three, { a: true, b: false }, "pending"],
    [three, { a: true, b: false, c: false }, "lost"],
    [three, { b: false, c: false }, "lost"],
    [five, { a: true, b: true }, "pending"],
    [five, { a: true, b: true, c: true }, "won"],
    [five, { a: true, b: false, c: false }, "pending"],
    [five, { a: true, b: false, c: false, d: false }, "lost"],
    [["a", "b", "c", "d"], { a: true, b: true }, "pending"],
    [["a", "b", "c", "d"], { a: true, b: false, c: false }, "lost"],
    [[], {}, "won"],
  ];
  for (const [voters, votes, result] of cases) {
    const tally = Object.entries(votes).map(([id, v]) => `${id}${v ? "+" : "-"}`);
    it(`§5.2 ${voters.length} voters, ${tally.join(" ") || "no votes"}: ${result}`, () => {
      assert.equal(majorityVote(voters, lookup(votes)), result);
    });
  }
});

describe("thesis §4.3 quorum: joint configurations need both majorities", () => {
  // C_old = {a, b, c}, C_new = {c, d, e}: c is in both.
  const joint = { ...membershipOf(["c", "d", "e"]), outgoing: ["a", "b", "c"] };
  const simple = membershipOf(["c", "d", "e"]);

  it("thesis §4.3 the committed index is the smaller of the two majorities' indexes", () => {
    const acks = indexes({ a: 9, b: 9, c: 5, d: 2, e: 1 });
    assert.equal(committedIndex(simple, acks), 2);
    assert.equal(committedIndex(joint, acks), 2, "min(old 9, new 2)");
    const other = indexes({ a: 1, b: 2, c: 8, d: 8, e: 7 });
    assert.equal(committedIndex(joint, other), 2, "min(old 2, new 8)");
    assert.equal(committedIndex(joint, indexes({ a: 6, b: 0, c: 6, d: 6, e: 0 })), 6);
  });

  it("thesis §4.3 a vote is won only if both majorities won", () => {
    assert.equal(voteResult(joint, lookup({ a: true, b: true })), "pending", "old only");
    assert.equal(voteResult(joint, lookup({ d: true, e: true })), "pending", "new only");
    assert.equal(voteResult(joint, lookup({ a: true, c: true, d: true })), "won");
    assert.equal(voteResult(joint, lookup({ a: true, b: true, d: true, e: true })), "won");
  });

  it("thesis §4.3 a vote is lost if either majority lost", () => {
    assert.equal(
      voteResult(joint, lookup({ a: false, b: false, c: true, d: true, e: true })),
      "lost",
      "new won, old lost",
    );
    assert.equal(
      voteResult(joint, lookup({ a: true, b: true, c: false, d: false })),
      "lost",
      "old won, new lost",
    );
    assert.equal(
      voteResult(joint, lookup({ c: false, d: false })),
      "lost",
      "new lost, old pending",
    );
  });

  it("thesis §4.3 without an outgoing configuration only the voters count", () => {
    assert.equal(voteResult(simple, lookup({ a: true, b: true })), "pending");
    assert.equal(voteResult(simple, lookup({ c: true, d: true })), "won");
  });
});
