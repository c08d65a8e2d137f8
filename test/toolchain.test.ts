// Temporary smoke test: proves the suite runs on Node (tsx), Bun and Deno. Remove later.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

function majority(clusterSize: number): number {
  return Math.floor(clusterSize / 2) + 1;
}

describe("toolchain smoke test", () => {
  it("computes a Raft majority", () => {
    assert.equal(majority(1), 1);
    assert.equal(majority(3), 2);
    assert.equal(majority(4), 3);
    assert.equal(majority(5), 3);
  });

  it("supports async tests", async () => {
    const value = await Promise.resolve(42);
    assert.deepEqual({ value }, { value: 42 });
  });
});
