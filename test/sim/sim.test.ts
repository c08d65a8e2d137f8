/**
 * The deterministic cluster simulator as a test: seeded clusters under faults must keep Raft's
 * safety properties after every event and recover after the heal; a seed must replay exactly;
 * and a core with a classic bug must be caught.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as core from "../../mod.ts";
import type { Core } from "./cluster.ts";
import { runSeed, SimFailure } from "./simulate.ts";

const seeds = 100;
const steps = 2000;

/** The real core, except that a follower forgets its vote when asked for another one. */
const amnesiacVoter: Core = {
  createState: core.createState,
  step(state, input) {
    const forgets =
      input.type === "message" &&
      input.message.type === "requestVote" &&
      !input.message.preVote &&
      input.message.term === state.term;
    return core.step(forgets ? { ...state, votedFor: null } : state, input);
  },
};

describe("cluster simulator", () => {
  it(`keeps every safety property and recovers after the heal (${seeds} seeds x ${steps} events)`, () => {
    for (let seed = 1; seed <= seeds; seed++) runSeed(core, seed, { steps });
  });

  it("replays a seed exactly, with or without a trace log", () => {
    const first = runSeed(core, 11, { steps: 1000 });
    const lines: string[] = [];
    const again = runSeed(core, 11, { steps: 1000, log: (line) => lines.push(line) });
    assert.equal(again.trace, first.trace);
    assert.equal(again.events, first.events);
    assert.equal(again.simulatedMs, first.simulatedMs);
    assert.match(lines[0] ?? "", /^seed=11 voters=/);
    assert.notEqual(runSeed(core, 12, { steps: 1000 }).trace, first.trace);
  });

  it("catches a node that votes twice in a term", () => {
    let caught: SimFailure | undefined;
    for (let seed = 1; seed <= seeds && !caught; seed++) {
      try {
        runSeed(amnesiacVoter, seed, { steps });
      } catch (error) {
        if (!(error instanceof SimFailure)) throw error;
        caught = error;
      }
    }
    assert.ok(caught, `no seed in 1..${seeds} caught the double vote`);
    assert.equal(caught.check, "election safety");
    assert.match(caught.message, /^seed=\d+ event=\d+ /);
  });
});
