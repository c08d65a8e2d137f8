/**
 * §5.3 Log replication: the leader repairs divergent follower logs (Figure 7) and followers
 * commit and apply up to the leader's commit index, never past what they know matches.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createState, type Entry, step } from "../../mod.ts";
import { Cluster, effectsOfType, logTerms, msg, restoredFrom } from "./harness.ts";

describe("§5.3 Figure 7: the leader of term 8 repairs every divergent follower log", () => {
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  // Follower logs (a)–(f) of Figure 7, with the term each was last in, the index of the first
  // entry the leader must overwrite (if any), and the most rejections the leader may see with
  // the conflict hint (derived by hand below) against a naive one-entry-at-a-time backoff.
  const followers: {
    name: string;
    terms: number[];
    term: number;
    truncatedFrom?: number;
    hinted: number;
  }[] = [
    // Missing entry 10: "too short" hint (conflictIndex 10), then the probe at 9 matches.
    { name: "a", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6], term: 6, hinted: 1 },
    // Missing 5..10: the hint jumps straight to index 5.
    { name: "b", terms: [1, 1, 1, 4], term: 4, hinted: 1 },
    // An extra uncommitted entry of term 6: the first probe matches, entry 11 is overwritten.
    { name: "c", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], term: 6, truncatedFrom: 11, hinted: 0 },
    // Two extra entries of term 7: overwritten by the leader's entry 11 of term 8.
    {
      name: "d",
      terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      term: 7,
      truncatedFrom: 11,
      hinted: 0,
    },
    // Too short (hint 8), then a term-4 conflict at 7: the leader skips to after its last term-4
    // entry (5) and the probe at 5 matches.
    { name: "e", terms: [1, 1, 1, 4, 4, 4, 4], term: 4, truncatedFrom: 6, hinted: 2 },
    // A term-3 conflict at 10 (hint: term 3 starts at 7), then a term-2 conflict at 6 (hint:
    // term 2 starts at 4): the probe at 3 matches.
    { name: "f", terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], term: 3, truncatedFrom: 4, hinted: 2 },
  ];

  for (const f of followers) {
    it(`§5.3 Figure 7 (${f.name}): the follower's log ends up equal to the leader's`, () => {
      // L and V hold the leader's log; F is the follower of the figure. V's vote elects L.
      const voters = ["L", "V", "F"];
      const cluster = Cluster.restore({
        L: restoredFrom(voters, leaderLog, { term: 7 }),
        V: restoredFrom(voters, leaderLog, { term: 7 }),
        F: restoredFrom(voters, f.terms, { term: f.term }),
      });
      const leader = cluster.elect("L");
      assert.equal(leader.term, 8);
      const expected = [...leaderLog, 8]; // the leader's blank entry of term 8 at index 11

      const fromF = cluster.sent.filter((m) => m.from === "F" && m.to === "L");
      const answers = fromF.filter((m) => m.type === "appendEntriesResponse");
      const rejections = answers.filter((m) => !m.success).length;
      const toF = cluster.sent.filter((m) => m.to === "F" && m.type === "appendEntries");

      assert.deepEqual(logTerms(cluster.state("F")), expected);
      assert.deepEqual(
        cluster.storage.get("F")?.entries.map((e) => e.term),
        expected,
        "the follower's durable log equals the leader's",
      );
      assert.deepEqual(
        cluster.storage.get("F")?.entries,
        cluster.storage.get("L")?.entries,
        "entry for entry, payloads included",
      );
      const truncations = cluster
        .effectsSince(0, "F")
        .filter((e) => e.type === "truncateLog")
        .map((e) => (e.type === "truncateLog" ? e.fromIndex : 0));
      assert.deepEqual(truncations, f.truncatedFrom === undefined ? [] : [f.truncatedFrom]);

      // Naive backoff: one rejection per index from the leader's last (10) down to the last
      // index where the logs agree.
      let agree = Math.min(leaderLog.length, f.terms.length);
      while (agree > 0 && f.terms[agree - 1] !== leaderLog[agree - 1]) agree--;
      const naive = leaderLog.length - agree;
      assert.ok(
        rejections <= f.hinted,
        `(${f.name}) took ${rejections} rejections, expected at most ${f.hinted}`,
      );
      if (naive > 1) assert.ok(rejections < naive, `(${f.name}) no better than naive (${naive})`);
      assert.equal(toF.length, rejections + 1, "one AppendEntries per rejection, plus the last");

      const progress = cluster.state("L").progress.get("F");
      assert.equal(progress?.match, 11);
      assert.equal(progress?.state, "replicate");
      assert.equal(cluster.state("L").commitIndex, 11);
    });
  }
});

describe("§5.3 a follower applies up to the leader's commit", () => {
  const voters = ["a", "b", "c"];
  const appendEntries = (
    prevLogIndex: number,
    prevLogTerm: number,
    entries: Entry[],
    leaderCommit: number,
    term = 1,
  ) =>
    msg({
      type: "appendEntries",
      term,
      from: "a",
      to: "b",
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit,
    });
  const entry = (index: number, term: number): Entry => ({ index, term, kind: "blank" });
  const appliedIndexes = (effects: readonly { type: string }[]) =>
    effectsOfType(effects as never, "apply").flatMap((e) => e.entries.map((x) => x.index));

  it("§5.3 leaderCommit in AppendEntries commits; entries apply once durable", () => {
    const follower = createState({ id: "b", restored: restoredFrom(voters, [1], { term: 1 }) });
    const first = step(follower, appendEntries(1, 1, [entry(2, 1), entry(3, 1), entry(4, 1)], 3));
    assert.equal(first.state.commitIndex, 3);
    // Only entry 1 was durable already: 2 and 3 wait for their write.
    assert.deepEqual(appliedIndexes(first.effects), [1]);

    const persisted = step(first.state, { type: "persisted", index: 4, term: 1, epoch: 0 });
    assert.deepEqual(appliedIndexes(persisted.effects), [2, 3], "never past the commit index");

    const next = step(persisted.state, appendEntries(4, 1, [], 4));
    assert.equal(next.state.commitIndex, 4);
    assert.deepEqual(appliedIndexes(next.effects), [4]);
  });

  it("§5.3 commit never passes the index of the last new entry", () => {
    // b's entries 2 and 3 are of term 1; the leader of term 2 has other entries there.
    const follower = createState({
      id: "b",
      restored: restoredFrom(voters, [1, 1, 1], { term: 1 }),
    });
    const empty = step(follower, appendEntries(1, 1, [], 3, 2));
    assert.equal(empty.state.commitIndex, 1, "only entry 1 is known to match the leader's");
    assert.equal(empty.state.log.lastIndex, 3, "the unverified suffix stays for now");

    const repaired = step(empty.state, appendEntries(1, 1, [entry(2, 2)], 3, 2));
    assert.deepEqual(effectsOfType(repaired.effects, "truncateLog"), [
      { type: "truncateLog", fromIndex: 2 },
    ]);
    assert.deepEqual(logTerms(repaired.state), [1, 2]);
    assert.equal(repaired.state.commitIndex, 2);
  });

  it("§5.3 heartbeats carry the commit index to followers, capped at what each holds", () => {
    const cluster = Cluster.bootstrap(voters);
    cluster.elect("a");
    cluster.step("a", { type: "propose", requestId: 1, commands: [new Uint8Array([7])] });
    cluster.deliver();
    assert.equal(cluster.state("a").commitIndex, 3);
    // The AppendEntries carried the commit index as it was before entry 3 was acknowledged.
    assert.equal(cluster.state("b").commitIndex, 2);

    cluster.heartbeat("a");
    for (const id of voters) {
      assert.equal(cluster.state(id).commitIndex, 3);
      assert.deepEqual(
        cluster.applied.get(id)?.map((e) => e.index),
        [1, 2, 3],
      );
    }

    // c falls behind: the heartbeat to c must not tell it to commit entries it lacks.
    cluster.isolate("c");
    cluster.step("a", { type: "propose", requestId: 2, commands: [new Uint8Array([8])] });
    cluster.deliver();
    assert.equal(cluster.state("a").commitIndex, 4);
    const from = cluster.sent.length;
    cluster.heartbeat("a");
    const beats = cluster.sent.slice(from).filter((m) => m.type === "heartbeat");
    assert.deepEqual(
      beats.map((m) => [m.to, m.type === "heartbeat" ? m.leaderCommit : -1]),
      [
        ["b", 4],
        ["c", 3],
      ],
    );
    assert.equal(cluster.state("b").commitIndex, 4);
    assert.equal(cluster.state("c").commitIndex, 3);
  });
});
