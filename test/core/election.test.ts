/**
 * §5.2 Leader election: one vote per term, the outcome of a round of votes, randomized election
 * timeouts; §5.4.1 the election restriction (votes only for an at-least-as-up-to-date log).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  createState,
  type Effect,
  type Input,
  type NodeId,
  type RaftConfig,
  type RaftState,
  step,
} from "../../mod.ts";
import { effectsOfType, messages, msg, restoredFrom, run } from "./harness.ts";

function voteRequest(
  from: NodeId,
  to: NodeId,
  term: number,
  lastLogTerm: number,
  lastLogIndex: number,
  preVote = false,
): Input {
  return msg({
    type: "requestVote",
    term,
    from,
    to,
    preVote,
    transfer: false,
    lastLogIndex,
    lastLogTerm,
  });
}

function voteResponse(
  from: NodeId,
  to: NodeId,
  term: number,
  granted: boolean,
  preVote = false,
): Input {
  return msg({ type: "requestVoteResponse", term, from, to, preVote, granted });
}

describe("§5.2 one vote per term", () => {
  const voters = ["a", "b", "c"];
  const follower = () =>
    createState({ id: "b", restored: restoredFrom(voters, [1, 1], { term: 1 }) });

  it("§5.2 a vote is durable before it is granted, and a second candidate in the term is denied", () => {
    const first = step(follower(), voteRequest("a", "b", 2, 1, 2));
    assert.equal(first.state.term, 2);
    assert.equal(first.state.votedFor, "a");

    const saves = first.effects
      .map((e, i) => ({ e, i }))
      .filter(({ e }) => e.type === "saveHardState");
    const voteSaved = saves.findLast(
      ({ e }) => e.type === "saveHardState" && e.hardState.votedFor === "a",
    );
    assert.deepEqual(voteSaved?.e, {
      type: "saveHardState",
      hardState: { term: 2, votedFor: "a" },
    });
    const sendAt = first.effects.findIndex((e) => e.type === "send");
    assert.ok(voteSaved && voteSaved.i < sendAt, "the vote is saved before the response is sent");
    assert.deepEqual(first.effects[sendAt], {
      type: "send",
      message: {
        type: "requestVoteResponse",
        term: 2,
        from: "b",
        to: "a",
        preVote: false,
        granted: true,
      },
      afterPersist: true,
    });

    // c asks in the same term with an even longer log: denied, and nothing is written.
    const second = step(first.state, voteRequest("c", "b", 2, 1, 9));
    assert.equal(effectsOfType(second.effects, "saveHardState").length, 0);
    assert.deepEqual(messages(second.effects), [
      { type: "requestVoteResponse", term: 2, from: "b", to: "c", preVote: false, granted: false },
    ]);
    assert.equal(second.state.votedFor, "a");

    // a retransmits its request: the same vote is granted again without a new write.
    const again = step(second.state, voteRequest("a", "b", 2, 1, 2));
    assert.equal(effectsOfType(again.effects, "saveHardState").length, 0);
    assert.equal(messages(again.effects, "requestVoteResponse")[0]?.granted, true);
  });

  it("§5.2 a candidate has voted for itself and denies another candidate of its term", () => {
    const candidate = run(
      createState({
        id: "a",
        config: { preVote: false },
        restored: restoredFrom(voters, [1], { term: 1 }),
      }),
      { type: "start" },
      { type: "timeout", timer: "election", generation: 1 },
    );
    assert.equal(candidate.state.role, "candidate");
    assert.deepEqual(effectsOfType(candidate.effects, "saveHardState"), [
      { type: "saveHardState", hardState: { term: 2, votedFor: "a" } },
    ]);
    // Its own vote requests wait for that write, like any vote (§5.2).
    const requests = effectsOfType(candidate.effects, "send");
    assert.equal(requests.length, 2);
    assert.ok(requests.every((e) => e.afterPersist && e.message.type === "requestVote"));

    const { state, effects } = step(candidate.state, voteRequest("c", "a", 2, 1, 5));
    assert.equal(messages(effects, "requestVoteResponse")[0]?.granted, false);
    assert.equal(state.votedFor, "a");
  });

  it("§5.2 a vote survives a restart: the restored votedFor still binds the term", () => {
    const restarted = createState({
      id: "b",
      restored: restoredFrom(voters, [1, 1], { term: 2, votedFor: "a" }),
    });
    const { effects } = step(restarted, voteRequest("c", "b", 2, 1, 5));
    assert.equal(messages(effects, "requestVoteResponse")[0]?.granted, false);
  });
});

describe("§5.4.1 election restriction: vote denied to a less up-to-date log", () => {
  // The voter's log ends with (lastLogTerm 2, lastLogIndex 3).
  const voter = () =>
    createState({ id: "b", restored: restoredFrom(["a", "b", "c"], [1, 1, 2], { term: 2 }) });
  const cases: [lastLogTerm: number, lastLogIndex: number, granted: boolean, why: string][] = [
    [3, 1, true, "a higher last term wins even with a shorter log"],
    [2, 2, false, "same last term, shorter log loses"],
    [2, 3, true, "same last term, same length is up to date"],
    [2, 5, true, "same last term, longer log wins"],
    [1, 10, false, "a lower last term loses even with a longer log"],
  ];
  for (const preVote of [false, true]) {
    for (const [lastLogTerm, lastLogIndex, granted, why] of cases) {
      const kind = preVote ? "pre-vote" : "vote";
      it(`§5.4.1 ${kind} for (${lastLogTerm}, ${lastLogIndex}) vs (2, 3): ${why}`, () => {
        const { state, effects } = step(
          voter(),
          voteRequest("a", "b", 3, lastLogTerm, lastLogIndex, preVote),
        );
        const [response] = messages(effects, "requestVoteResponse");
        assert.equal(response?.granted, granted);
        if (preVote) {
          assert.equal(state.term, 2, "a pre-vote changes nothing on the voter");
          assert.equal(effectsOfType(effects, "saveHardState").length, 0);
        } else {
          assert.equal(state.term, 3, "the term is adopted whatever the answer (§5.1)");
          assert.equal(state.votedFor, granted ? "a" : null);
        }
      });
    }
  }
});

describe("§5.2 election won, lost or undecided from one round of votes", () => {
  type Outcome = "won" | "lost" | "undecided";
  const cases: [size: number, votes: [NodeId, boolean][], outcome: Outcome][] = [
    [3, [["n2", true]], "won"],
    [3, [["n2", false]], "undecided"],
    [3, [], "undecided"],
    [
      3,
      [
        ["n2", false],
        ["n3", true],
      ],
      "won",
    ],
    [
      3,
      [
        ["n2", false],
        ["n3", false],
      ],
      "lost",
    ],
    [5, [["n2", true]], "undecided"],
    [
      5,
      [
        ["n2", true],
        ["n3", true],
      ],
      "won",
    ],
    [
      5,
      [
        ["n2", true],
        ["n3", false],
        ["n4", false],
      ],
      "undecided",
    ],
    [
      5,
      [
        ["n2", false],
        ["n3", false],
        ["n4", true],
        ["n5", true],
      ],
      "won",
    ],
    [
      5,
      [
        ["n2", false],
        ["n3", false],
        ["n4", false],
      ],
      "lost",
    ],
    [
      5,
      [
        ["n2", true],
        ["n3", false],
        ["n4", false],
        ["n5", false],
      ],
      "lost",
    ],
  ];

  function candidateOf(size: number, preVote: boolean): RaftState {
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const started = run(
      createState({
        id: "n1",
        config: { preVote },
        restored: restoredFrom(ids, [1, 1], { term: 1 }),
      }),
      { type: "start" },
      { type: "timeout", timer: "election", generation: 1 },
    );
    assert.equal(started.state.role, preVote ? "precandidate" : "candidate");
    assert.equal(messages(started.effects, "requestVote").length, size - 1);
    return started.state;
  }

  for (const [size, votes, outcome] of cases) {
    const tally = votes.map(([id, g]) => `${id}${g ? "+" : "-"}`).join(" ") || "no answers";
    it(`§5.2 ${size} nodes, ${tally}: ${outcome}`, () => {
      let state = candidateOf(size, false);
      const effects: Effect[] = [];
      for (const [from, granted] of votes) {
        const result = step(state, voteResponse(from, "n1", 2, granted));
        state = result.state;
        effects.push(...result.effects);
      }
      assert.equal(state.term, 2);
      if (outcome === "won") {
        assert.equal(state.role, "leader");
        assert.equal(state.leaderId, "n1");
        // The new leader appends a blank entry of its term and replicates it to everyone.
        assert.deepEqual(effectsOfType(effects, "appendLog")[0]?.entries, [
          { index: 3, term: 2, kind: "blank" },
        ]);
        const appends = messages(effects, "appendEntries");
        assert.equal(new Set(appends.map((m) => m.to)).size, size - 1);
      } else if (outcome === "lost") {
        assert.equal(state.role, "follower");
        assert.equal(state.leaderId, null);
        assert.equal(state.votedFor, "n1", "it voted for itself in term 2, and still has");
      } else {
        assert.equal(state.role, "candidate");
        assert.equal(effectsOfType(effects, "roleChanged").length, 0);
      }
    });

    it(`thesis §9.6 pre-vote, ${size} nodes, ${tally}: ${outcome}`, () => {
      let state = candidateOf(size, true);
      const effects: Effect[] = [];
      for (const [from, granted] of votes) {
        // A granted pre-vote answers in the prospective term; a denial carries the voter's.
        const result = step(state, voteResponse(from, "n1", granted ? 2 : 1, granted, true));
        state = result.state;
        effects.push(...result.effects);
      }
      if (outcome === "won") {
        // Only now does the real election start, in term 2.
        assert.equal(state.role, "candidate");
        assert.equal(state.term, 2);
        assert.equal(messages(effects, "requestVote").length, size - 1);
        assert.ok(messages(effects, "requestVote").every((m) => !m.preVote && m.term === 2));
      } else {
        assert.equal(state.role, outcome === "lost" ? "follower" : "precandidate");
        assert.equal(state.term, 1, "a pre-election never raises the term");
        assert.equal(effectsOfType(effects, "saveHardState").length, 0);
      }
    });
  }
});

describe("§5.2 randomized election timeouts", () => {
  function electionTimeouts(effects: readonly Effect[]): number[] {
    return effectsOfType(effects, "armTimer")
      .filter((e) => e.timer === "election")
      .map((e) => e.afterMs);
  }

  /** Election timeouts drawn by a follower re-arming on every heartbeat of its leader. */
  function drawsOnHeartbeats(config: Partial<RaftConfig>, seed: number, count: number): number[] {
    let state = createState({
      id: "b",
      seed,
      config,
      restored: restoredFrom(["a", "b", "c"], [1], { term: 1 }),
    });
    const draws: number[] = [];
    for (let i = 0; i < count; i++) {
      const result = step(
        state,
        msg({ type: "heartbeat", term: 1, from: "a", to: "b", leaderCommit: 0, round: 0 }),
      );
      state = result.state;
      draws.push(...electionTimeouts(result.effects));
    }
    assert.ok(draws.length >= count, "every heartbeat re-arms the election timer");
    return draws;
  }

  /** Election timeouts drawn by a cut-off node campaigning again at every timeout. */
  function drawsOnCampaigns(config: Partial<RaftConfig>, seed: number, count: number): number[] {
    let state = createState({
      id: "c",
      seed,
      config,
      restored: restoredFrom(["a", "b", "c"], [1], { term: 1 }),
    });
    const draws: number[] = [];
    let result = step(state, { type: "start" });
    for (let i = 0; i < count; i++) {
      state = result.state;
      draws.push(...electionTimeouts(result.effects));
      result = step(state, {
        type: "timeout",
        timer: "election",
        generation: state.timers.election,
      });
    }
    return draws;
  }

  function assertCovers(draws: readonly number[], min: number, max: number): void {
    for (const ms of draws) {
      assert.ok(Number.isInteger(ms), `${ms} is not a whole number of ms`);
      assert.ok(ms >= min && ms < max, `${ms} is outside [${min}, ${max})`);
    }
    const buckets = 10;
    const counts = new Array<number>(buckets).fill(0);
    for (const ms of draws) {
      const bucket = Math.floor(((ms - min) / (max - min)) * buckets);
      counts[bucket] = (counts[bucket] as number) + 1;
    }
    const expected = draws.length / buckets;
    for (const [i, n] of counts.entries()) {
      assert.ok(
        n > expected * 0.6 && n < expected * 1.4,
        `bucket ${i} of [${min}, ${max}) has ${n} draws, expected about ${expected}: ${counts}`,
      );
    }
    const span = max - min;
    assert.ok(Math.min(...draws) < min + span * 0.01, "the low end of the range is reached");
    assert.ok(Math.max(...draws) >= max - 1 - span * 0.01, "the high end of the range is reached");
  }

  it("§5.2 timeouts re-armed on heartbeats are spread over [min, max), for several seeds", () => {
    for (const seed of [1, 2, 3, 42, 9001]) {
      assertCovers(drawsOnHeartbeats({}, seed, 2000), 300, 600);
    }
  });

  it("§5.2 timeouts re-armed by repeated campaigns are spread over [min, max)", () => {
    for (const seed of [7, 8]) {
      const config = {
        electionTimeoutMinMs: 150,
        electionTimeoutMaxMs: 300,
        heartbeatIntervalMs: 20,
      };
      assertCovers(drawsOnCampaigns(config, seed, 2000), 150, 300);
    }
  });

  it("§5.2 the first timeout after start is spread over [min, max) across seeds", () => {
    const draws: number[] = [];
    for (let seed = 0; seed < 2000; seed++) {
      const state = createState({ id: "n1", seed, restored: restoredFrom(["n1", "n2"], []) });
      draws.push(...electionTimeouts(step(state, { type: "start" }).effects));
    }
    assertCovers(draws, 300, 600);
  });

  it("§5.2 nodes of one cluster draw different timeouts, and a seed replays exactly", () => {
    const sequenceOf = (id: NodeId, seed?: number) => {
      let state = createState({
        id,
        ...(seed === undefined ? {} : { seed }),
        restored: restoredFrom(["a", "b", "c"], [], { term: 1 }),
      });
      const draws: number[] = [];
      for (let i = 0; i < 20; i++) {
        const result = step(state, { type: "start" });
        state = result.state;
        draws.push(...electionTimeouts(result.effects));
      }
      return draws.join(",");
    };
    assert.notEqual(sequenceOf("a"), sequenceOf("b"));
    assert.notEqual(sequenceOf("a", 5), sequenceOf("b", 5));
    assert.notEqual(sequenceOf("a", 5), sequenceOf("a", 6));
    assert.equal(sequenceOf("a", 5), sequenceOf("a", 5));
    assert.equal(sequenceOf("c"), sequenceOf("c"));
  });

  it("§5.2 a one-millisecond range always draws its minimum", () => {
    const config = {
      electionTimeoutMinMs: 150,
      electionTimeoutMaxMs: 151,
      heartbeatIntervalMs: 20,
    };
    assert.deepEqual(new Set(drawsOnHeartbeats(config, 3, 200)), new Set([150]));
  });
});
