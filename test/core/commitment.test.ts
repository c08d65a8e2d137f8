/**
 * §5.4.2 Committing entries from previous terms (Figure 8): a leader never commits an entry of an
 * earlier term by counting its replicas; it commits one of its own term, and the earlier ones
 * with it (Log Matching).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Message } from "../../mod.ts";
import { Cluster, logTerms, restoredFrom } from "./harness.ts";

const servers = ["S1", "S2", "S3", "S4", "S5"];

/**
 * Figure 8 (c): S1 was leader in term 2 and wrote entry 2; S5 was leader in term 3 and wrote a
 * different entry 2; S1 comes back and wins term 4 with the votes of S2 and S3, while S4 and S5
 * are cut off. Entry 1 is committed everywhere.
 *
 * S1 sends one entry per AppendEntries, and every AppendEntries that would deliver its own
 * term-4 entry is lost, so entry 2 of term 2 reaches a majority (S1, S2, S3) alone.
 */
function figure8c(): Cluster {
  const restored = (terms: number[]) => restoredFrom(servers, terms, { term: 3, appliedIndex: 1 });
  const cluster = Cluster.restore(
    {
      S1: restored([1, 2]),
      S2: restored([1]),
      S3: restored([1]),
      S4: restored([1]),
      S5: restored([1, 3]),
    },
    { configs: { S1: { maxBatchEntries: 1 } } },
  );
  const majority = new Set(["S1", "S2", "S3"]);
  cluster.filter = (m: Message) => {
    if (!majority.has(m.from) || !majority.has(m.to)) return false;
    const carriesTerm4 = m.type === "appendEntries" && m.entries.some((e) => e.term === 4);
    // Lost if the follower would accept it (its log reaches prevLogIndex and agrees up to it).
    return !(carriesTerm4 && cluster.state(m.to).log.lastIndex >= m.prevLogIndex);
  };
  const s1 = cluster.elect("S1");
  assert.equal(s1.term, 4);
  assert.deepEqual(logTerms(s1), [1, 2, 4], "S1 appended its blank entry of term 4");
  return cluster;
}

describe("§5.4.2 Figure 8: an entry from a previous term is never committed by counting replicas", () => {
  it("§5.4.2 (c) entry 2 of term 2 on a majority stays uncommitted while term 4 has none", () => {
    const cluster = figure8c();
    for (const id of ["S1", "S2", "S3"]) {
      assert.deepEqual(logTerms(cluster.state(id)).slice(0, 2), [1, 2], `${id} holds entry 2`);
    }
    assert.equal(cluster.state("S1").progress.get("S2")?.match, 2);
    assert.equal(cluster.state("S1").progress.get("S3")?.match, 2);
    assert.equal(cluster.state("S1").persistedIndex, 3);

    for (let round = 0; round < 5; round++) cluster.heartbeat("S1");
    for (const id of servers) {
      assert.equal(cluster.state(id).commitIndex, 1, `${id} committed past entry 1`);
      assert.deepEqual(cluster.applied.get(id), [], `${id} applied something`);
    }
  });

  it("§5.4.2 (d) that is necessary: S5 may still win term 5 and overwrite entry 2", () => {
    const cluster = figure8c();
    // S1 crashes. S2, S3 and S4 stop hearing from it and time out, each alone (their pre-votes
    // to one another are lost); then S5 joins them.
    cluster.filter = (m) => m.from !== "S1" && m.to !== "S1" && (m.from === "S5" || m.to === "S5");
    for (const id of ["S2", "S3", "S4"]) cluster.fire(id, "election");
    cluster.deliver();
    cluster.fire("S5", "election"); // learns term 4 from the answers
    cluster.deliver();
    cluster.filter = (m) => m.from !== "S1" && m.to !== "S1";
    cluster.fire("S5", "election");
    cluster.deliver();

    const s5 = cluster.state("S5");
    assert.equal(s5.role, "leader");
    assert.equal(s5.term, 5, "S5's (3, 2) is more up to date than (2, 2): S2 and S3 vote for it");
    for (const id of ["S2", "S3", "S4", "S5"]) {
      assert.deepEqual(logTerms(cluster.state(id)), [1, 3, 5], `${id}'s entry 2 is now S5's`);
    }
    assert.equal(s5.commitIndex, 3);

    // S1 restarts and is repaired too: its entries 2 (term 2) and 3 (term 4) were never committed.
    cluster.heal();
    cluster.heartbeat("S1"); // S1 is still a leader of term 4 until it hears of term 5
    cluster.heartbeat("S5");
    assert.equal(cluster.state("S1").role, "follower");
    assert.deepEqual(logTerms(cluster.state("S1")), [1, 3, 5]);
  });

  it("§5.4.2 (e) once an entry of term 4 is on a majority, it commits, and entry 2 with it", () => {
    const cluster = figure8c();
    // The transport reports the lost AppendEntries; the leader probes S2 and S3 again.
    cluster.filter = (m) => m.to !== "S4" && m.to !== "S5" && m.from !== "S4" && m.from !== "S5";
    cluster.step("S1", { type: "unreachable", peer: "S2" });
    cluster.step("S1", { type: "unreachable", peer: "S3" });
    cluster.heartbeat("S1");

    const s1 = cluster.state("S1");
    assert.equal(s1.commitIndex, 3);
    assert.deepEqual(
      cluster.applied.get("S1")?.map((e) => [e.index, e.term]),
      [
        [2, 2],
        [3, 4],
      ],
    );
    cluster.heartbeat("S1");
    for (const id of ["S2", "S3"]) {
      assert.equal(cluster.state(id).commitIndex, 3);
      assert.deepEqual(logTerms(cluster.state(id)), [1, 2, 4]);
    }
  });
});
