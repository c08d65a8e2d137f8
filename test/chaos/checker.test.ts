/**
 * The linearizability checker on known-good and known-bad register histories, then on large
 * synthetic histories generated from a real register (linearizable by construction) and mutated
 * copies of them (not linearizable by construction).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Random } from "../sim/random.ts";
import {
  checkLinearizable,
  checkWindow,
  formatOperation,
  insideWindow,
  type Verdict,
} from "./checker.ts";
import type { Call, Operation, Outcome } from "./history.ts";
import { syntheticHistory } from "./synthetic.ts";

type Status = "ok" | "unknown";

/** Builds a history; times are [invokedAt, completedAt], unknown operations never complete. */
class History {
  readonly ops: Operation[] = [];

  private add(client: number, call: Call, at: [number, number], outcome: Outcome, key: string) {
    const completedAt = outcome.status === "unknown" ? Infinity : at[1];
    const op: Operation = {
      id: this.ops.length,
      client,
      key,
      call,
      invokedAt: at[0],
      completedAt,
      outcome,
    };
    this.ops.push(op);
    return op;
  }

  read(client: number, at: [number, number], value: string | null, key = "x"): Operation {
    return this.add(client, { kind: "read" }, at, { status: "ok", value }, key);
  }

  write(
    client: number,
    at: [number, number],
    value: string | null,
    status: Status = "ok",
    key = "x",
  ): Operation {
    const outcome: Outcome =
      status === "ok" ? { status: "ok" } : { status: "unknown", reason: "timeout" };
    return this.add(client, { kind: "write", value }, at, outcome, key);
  }

  cas(
    client: number,
    at: [number, number],
    expected: string | null,
    value: string,
    outcome: Outcome,
    key = "x",
  ): Operation {
    return this.add(client, { kind: "cas", expected, value }, at, outcome, key);
  }
}

const OK: Outcome = { status: "ok" };
const UNKNOWN: Outcome = { status: "unknown", reason: "timeout" };

function assertOk(verdict: Verdict): void {
  assert.equal(verdict.ok, true, JSON.stringify(verdict));
}

function assertNotOk(verdict: Verdict): Failure {
  assert.equal(verdict.ok, false, JSON.stringify(verdict));
  return verdict as Failure;
}

type Failure = Extract<Verdict, { ok: false }>;

/**
 * The window fails on its own, and stops failing when either bound moves inward to the next
 * candidate (the previous completion time, the next invocation time).
 */
function assertMinimalWindow(all: readonly Operation[], v: Failure): void {
  const ops = all.filter((op) => op.key === v.key);
  assert.equal(checkWindow(ops, v.from, v.to), false, "the window fails on its own");
  assert.deepEqual(v.window, insideWindow(ops, v.from, v.to), "the window lists what is inside");
  const alone = v.window.map((op) => ({ ...op, key: `alone ${op.key}` }));
  assert.equal(checkWindow(alone, v.from, Infinity), false, "what is inside fails on its own");
  const earlierEnds = ops.map((op) => op.completedAt).filter((t) => t < v.to);
  if (earlierEnds.length > 0) {
    const to = Math.max(...earlierEnds);
    assert.equal(checkWindow(ops, v.from, to), true, `ending at ${to} it passes`);
  }
  const laterStarts = ops.map((op) => op.invokedAt).filter((t) => t > v.from && t <= v.to);
  if (laterStarts.length > 0) {
    const from = Math.min(...laterStarts);
    assert.equal(checkWindow(ops, from, v.to), true, `starting at ${from} it passes`);
  }
}

describe("linearizability checker: known histories", () => {
  it("accepts an empty history and a sequential one", () => {
    assert.deepEqual(checkLinearizable([]), { ok: true, keys: 0, ops: 0 });
    const h = new History();
    h.read(0, [0, 1], null);
    h.write(0, [2, 3], "a");
    h.read(1, [4, 5], "a");
    h.cas(0, [6, 7], "a", "b", OK);
    h.cas(1, [8, 9], "a", "c", { status: "fail", current: "b" });
    h.read(0, [10, 11], "b");
    assert.deepEqual(checkLinearizable(h.ops), { ok: true, keys: 1, ops: 6 });
  });

  it("accepts concurrent writes with concurrent reads seeing either, and either final value", () => {
    for (const final of ["a", "b"]) {
      const h = new History();
      h.write(0, [0, 10], "a");
      h.write(1, [2, 8], "b");
      h.read(2, [3, 9], "a");
      h.read(3, [3, 9], "b");
      h.read(2, [11, 12], final);
      assertOk(checkLinearizable(h.ops));
    }
  });

  it("rejects a stale read, and its window is the overwriting write and the read", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    const overwrite = h.write(0, [2, 3], "b");
    const stale = h.read(1, [4, 5], "a");
    const v = assertNotOk(checkLinearizable(h.ops));
    assert.equal(v.key, "x");
    assert.deepEqual(v.window, [overwrite, stale]);
    assert.match(v.reason, /key "x"/);
    assertMinimalWindow(h.ops, v);
  });

  it("accepts a read concurrent with the overwrite returning the old value", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    h.write(0, [2, 5], "b");
    h.read(1, [4, 6], "a");
    h.read(1, [7, 8], "b");
    assertOk(checkLinearizable(h.ops));
  });

  it("rejects a lost write: acknowledged, then every later read sees the value before it", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    h.read(1, [1.5, 2], "a");
    const lost = h.write(2, [3, 4], "b");
    h.read(1, [5, 6], "a");
    h.read(0, [7, 8], "a");
    h.read(2, [9, 10], "a");
    const v = assertNotOk(checkLinearizable(h.ops));
    assert.ok(v.window.includes(lost), "the window holds the lost write");
    assertMinimalWindow(h.ops, v);
  });

  it("rejects two successful cas with the same expected value", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    const c1 = h.cas(1, [2, 5], "a", "b", OK);
    const c2 = h.cas(2, [3, 6], "a", "c", OK);
    const v = assertNotOk(checkLinearizable(h.ops));
    assert.ok(v.window.includes(c1) && v.window.includes(c2), formatWindow(v.window));
    assertMinimalWindow(h.ops, v);
    // One of them refused is fine.
    const ok = new History();
    ok.write(0, [0, 1], "a");
    ok.cas(1, [2, 5], "a", "b", OK);
    ok.cas(2, [3, 6], "a", "c", { status: "fail", current: "b" });
    assertOk(checkLinearizable(ok.ops));
  });

  it("decides refused cas by the value it reports", () => {
    const base = () => {
      const h = new History();
      h.write(0, [0, 1], "a");
      return h;
    };
    let h = base();
    h.cas(1, [2, 3], "z", "b", { status: "fail", current: "a" });
    assertOk(checkLinearizable(h.ops));
    h = base();
    h.cas(1, [2, 3], "z", "b", { status: "fail" });
    assertOk(checkLinearizable(h.ops));
    h = base();
    h.cas(1, [2, 3], "a", "b", { status: "fail", current: "a" });
    assertNotOk(checkLinearizable(h.ops));
    h = base();
    h.cas(1, [2, 3], "a", "b", { status: "fail" });
    assertNotOk(checkLinearizable(h.ops));
    h = base();
    h.cas(1, [2, 3], "z", "b", { status: "fail", current: "q" });
    assertNotOk(checkLinearizable(h.ops));
  });

  it("accepts unknown writes that took effect, and ones that did not", () => {
    for (const seen of ["a", "b"]) {
      const h = new History();
      h.write(0, [0, 1], "a");
      h.write(1, [2, 3], "b", "unknown");
      h.read(2, [4, 5], seen);
      h.read(2, [6, 7], seen);
      assertOk(checkLinearizable(h.ops));
    }
    // But once seen, it cannot be unseen.
    const h = new History();
    h.write(0, [0, 1], "a");
    h.write(1, [2, 3], "b", "unknown");
    h.read(2, [4, 5], "b");
    h.read(2, [6, 7], "a");
    assertNotOk(checkLinearizable(h.ops));
  });

  it("accepts an unknown write whose value appears much later, not one that appears before it", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    h.write(1, [2, 3], "b", "unknown");
    h.read(2, [4, 5], "a");
    h.write(0, [6, 7], "c");
    h.read(2, [8, 9], "c");
    h.read(2, [10, 11], "b");
    h.read(0, [12, 13], "b");
    assertOk(checkLinearizable(h.ops));

    const early = new History();
    early.write(0, [0, 1], "a");
    early.read(2, [1.5, 1.8], "b");
    early.write(1, [2, 3], "b", "unknown");
    assertNotOk(checkLinearizable(early.ops));
  });

  it("accepts an unknown cas that took effect, or not, but not one that took effect twice", () => {
    for (const seen of ["b", "a"]) {
      const h = new History();
      h.write(0, [0, 1], "a");
      h.cas(1, [2, 3], "a", "b", UNKNOWN);
      h.read(2, [4, 5], seen);
      assertOk(checkLinearizable(h.ops));
    }
    const h = new History();
    h.write(0, [0, 1], "a");
    h.cas(1, [2, 3], "a", "b", UNKNOWN);
    h.cas(2, [2, 3], "a", "c", OK);
    h.read(2, [4, 5], "b");
    assertNotOk(checkLinearizable(h.ops));
  });

  it("accepts unknown deletes and duplicate unknown values either way", () => {
    for (const seen of ["a", null]) {
      const h = new History();
      h.write(0, [0, 1], "a");
      h.write(1, [2, 3], null, "unknown");
      h.read(2, [4, 5], seen);
      assertOk(checkLinearizable(h.ops));
    }
    const h = new History();
    h.write(0, [0, 1], "a");
    h.write(1, [2, 3], "d", "unknown");
    h.write(2, [2, 3], "d", "unknown");
    h.read(2, [4, 5], "d");
    h.write(0, [6, 7], "e");
    h.read(1, [8, 9], "d");
    assertOk(checkLinearizable(h.ops));
  });

  it("rejects a read of a value never written", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    const ghost = h.read(1, [2, 3], "ghost");
    const v = assertNotOk(checkLinearizable(h.ops));
    assert.ok(v.window.includes(ghost));
    assertMinimalWindow(h.ops, v);
    const first = new History();
    const alone = first.read(0, [0, 1], "ghost");
    assert.deepEqual(assertNotOk(checkLinearizable(first.ops)).window, [alone]);
  });

  it("handles deletes", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    h.write(0, [2, 3], null);
    h.read(1, [4, 5], null);
    h.cas(1, [6, 7], null, "b", OK);
    h.read(0, [8, 9], "b");
    assertOk(checkLinearizable(h.ops));

    const bad = new History();
    bad.write(0, [0, 1], "a");
    bad.write(0, [2, 3], null);
    bad.read(1, [4, 5], "a");
    assertNotOk(checkLinearizable(bad.ops));

    const concurrent = new History();
    concurrent.write(0, [0, 1], "a");
    concurrent.write(0, [2, 6], null);
    concurrent.read(1, [3, 4], "a");
    concurrent.read(2, [3, 5], null);
    assertOk(checkLinearizable(concurrent.ops));
  });

  it("ignores reads without an answer and writes that certainly failed", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    h.ops.push({
      id: 100,
      client: 1,
      key: "x",
      call: { kind: "read" },
      invokedAt: 2,
      completedAt: Infinity,
      outcome: { status: "unknown", reason: "connection reset" },
    });
    h.ops.push({
      id: 101,
      client: 2,
      key: "x",
      call: { kind: "write", value: "never" },
      invokedAt: 2,
      completedAt: 3,
      outcome: { status: "fail" },
    });
    h.read(0, [4, 5], "a");
    assertOk(checkLinearizable(h.ops));
  });

  it("decides each key on its own and names the failing ones", () => {
    const h = new History();
    for (const key of ["a", "b", "c", "d"]) {
      h.write(0, [0, 1], `${key}1`, "ok", key);
      h.write(1, [2, 3], `${key}2`, "ok", key);
    }
    // Each key's reads are fine on their own; only "c" has a stale read.
    h.read(2, [4, 5], "a2", "a");
    h.read(2, [4, 5], "b2", "b");
    h.read(2, [4, 5], "c1", "c");
    h.read(2, [4, 5], "d2", "d");
    const v = assertNotOk(checkLinearizable(h.ops));
    assert.equal(v.key, "c");
    assert.deepEqual(v.failedKeys, ["c"]);
    assert.equal(v.keys, 4);
    assert.ok(v.window.every((op) => op.key === "c"));
    assert.match(formatOperation(v.window[v.window.length - 1]), /read => ok "c1"/);
  });

  it("answers unknown, never ok, when the search budget runs out", () => {
    const h = syntheticHistory({ seed: 7, keys: 1, clients: 8, opsPerClient: 200 });
    const v = checkLinearizable(h, { maxSteps: 50 });
    assert.equal(v.ok, "unknown");
    assert.match(v.ok === "unknown" ? v.reason : "", /budget/);
    assertOk(checkLinearizable(h));
  });

  it("refuses a malformed history", () => {
    const h = new History();
    h.write(0, [0, 1], "a");
    assert.throws(() => checkLinearizable([...h.ops, ...h.ops]), /appears twice/);
    assert.throws(
      () => checkLinearizable([{ ...h.ops[0], invokedAt: 5, completedAt: 2 }]),
      /precedes invokedAt/,
    );
  });
});

describe("linearizability checker: synthetic histories", () => {
  const seeds = [1, 2, 3, 4, 5];

  it("accepts histories generated from a real register, with unknown outcomes", () => {
    for (const seed of seeds) {
      const h = syntheticHistory({
        seed,
        keys: 5,
        clients: 10,
        opsPerClient: 300,
        unknownRate: 0.05,
      });
      assertOk(checkLinearizable(h));
    }
  });

  it("accepts large histories: 100k operations on 30 keys, 50k on one hot key", () => {
    for (const [keys, unknownRate] of [
      [30, 0.1],
      [1, 0.1],
    ]) {
      const opsPerClient = keys === 1 ? 5_000 : 10_000;
      const h = syntheticHistory({ seed: 42, keys, clients: 10, opsPerClient, unknownRate });
      const started = performance.now();
      const v = checkLinearizable(h, { timeLimitMs: 120_000 });
      const ms = performance.now() - started;
      assert.deepEqual(v, { ok: true, keys, ops: h.length });
      console.log(`checked ${h.length} operations on ${keys} key(s) in ${ms.toFixed(0)} ms`);
    }
  });

  it("rejects mutated copies: a stale read, a read of a ghost, a double cas", () => {
    for (const seed of seeds) {
      const h = syntheticHistory({
        seed,
        keys: 5,
        clients: 10,
        opsPerClient: 300,
        unknownRate: 0.05,
      });
      for (const [name, mutant] of [
        ["stale read", staleRead(h)],
        ["ghost read", ghostRead(h)],
        ["double cas", doubleCas(h)],
      ] as const) {
        const v = checkLinearizable(mutant.ops);
        assert.equal(v.ok, false, `seed ${seed}: ${name} not detected`);
        if (v.ok !== false) continue;
        assert.equal(v.key, mutant.culprit.key, `seed ${seed}: ${name}`);
        assert.ok(v.window.includes(mutant.culprit), `seed ${seed}: ${name} window holds it`);
        assertMinimalWindow(mutant.ops, v);
      }
    }
  });
});

interface Mutant {
  readonly ops: Operation[];
  readonly culprit: Operation;
}

const known = (op: Operation) => op.outcome.status === "ok";
const setsValue = (op: Operation) =>
  known(op) && (op.call.kind === "write" || op.call.kind === "cas");

/**
 * A read that returns the value of a write w0 although another write w1 started after w0
 * completed and completed before the read started: w0 < w1 < read in every linearization, and
 * values are unique, so the read cannot see w0's value.
 */
function staleRead(ops: readonly Operation[]): Mutant {
  for (const r of ops) {
    if (r.call.kind !== "read" || !known(r)) continue;
    const w1 = ops.find(
      (w) => w.key === r.key && setsValue(w) && w.completedAt < r.invokedAt && w.invokedAt > 0,
    );
    if (!w1) continue;
    const w0 = ops.find(
      (w) =>
        w.key === r.key &&
        w.call.kind === "write" &&
        w.call.value !== null &&
        setsValue(w) &&
        w.completedAt < w1.invokedAt,
    );
    if (w0?.call.kind !== "write") continue;
    const culprit: Operation = { ...r, outcome: { status: "ok", value: w0.call.value } };
    return { ops: ops.map((op) => (op === r ? culprit : op)), culprit };
  }
  throw new Error("no stale read to make");
}

function ghostRead(ops: readonly Operation[]): Mutant {
  const r = ops.filter((op) => op.call.kind === "read" && known(op))[Math.floor(ops.length / 40)];
  const culprit: Operation = { ...r, outcome: { status: "ok", value: "ghost" } };
  return { ops: ops.map((op) => (op === r ? culprit : op)), culprit };
}

/**
 * A second successful cas, concurrent with a successful one and expecting the same value. Not
 * null: a delete could bring null back in between; a written value is written once.
 */
function doubleCas(ops: readonly Operation[]): Mutant {
  const c = ops.filter((op) => op.call.kind === "cas" && op.call.expected !== null && known(op))[3];
  if (c?.call.kind !== "cas") throw new Error("no successful cas");
  const culprit: Operation = {
    ...c,
    id: ops.length + 1_000_000,
    client: 999,
    call: { kind: "cas", expected: c.call.expected, value: "double" },
  };
  return { ops: [...ops, culprit], culprit };
}

function formatWindow(window: readonly Operation[]): string {
  return window.map(formatOperation).join("\n");
}

/**
 * The exhaustive definition, for small histories: some order of the operations that respects
 * real time (an operation may come next unless another one still to place completed before it
 * was invoked) and the register's rules, in which every operation with an answer appears and
 * each unknown one appears once or not at all.
 */
function bruteForce(ops: readonly Operation[], initial: string | null): boolean {
  const required = (op: Operation) =>
    op.outcome.status !== "unknown" && !(op.call.kind === "write" && op.outcome.status === "fail");
  const relevant = ops.filter(
    (op) => required(op) || (op.outcome.status === "unknown" && op.call.kind !== "read"),
  );
  const apply = (op: Operation, s: string | null): { ok: boolean; s: string | null } => {
    const { call, outcome } = op;
    if (call.kind === "read") {
      return { ok: outcome.status === "ok" && (outcome.value ?? null) === s, s };
    }
    if (call.kind === "write") return { ok: true, s: call.value };
    if (outcome.status === "ok") return { ok: s === call.expected, s: call.value };
    if (outcome.status === "fail") {
      const seen = outcome.current === undefined || outcome.current === s;
      return { ok: s !== call.expected && seen, s };
    }
    return { ok: true, s: s === call.expected ? call.value : s };
  };
  const search = (left: readonly Operation[], s: string | null): boolean => {
    if (!left.some(required)) return true;
    for (const op of left) {
      if (
        left.some((other) => other !== op && required(other) && other.completedAt < op.invokedAt)
      ) {
        continue;
      }
      const rest = left.filter((other) => other !== op);
      const { ok, s: next } = apply(op, s);
      if (ok && search(rest, next)) return true;
      // An unknown operation may also never take effect.
      if (!required(op) && search(rest, s)) return true;
    }
    return false;
  };
  return search(relevant, initial);
}

describe("linearizability checker: against an exhaustive search", () => {
  /** Small histories on one key with few values (so values repeat), ties and any outcome. */
  function smallHistory(rng: Random): Operation[] {
    const values = ["a", "b", "c"];
    const value = () => (rng.chance(0.2) ? null : rng.pick(values));
    const ops: Operation[] = [];
    const count = rng.int(1, 7);
    for (let id = 0; id < count; id++) {
      const invokedAt = rng.int(0, 10);
      const completedAt = invokedAt + rng.int(0, 6);
      const roll = rng.next();
      const status = rng.next();
      let op: Omit<Operation, "invokedAt" | "completedAt">;
      const base = { id, client: id, key: "x" };
      if (roll < 0.4) {
        op =
          status < 0.9
            ? { ...base, call: { kind: "read" }, outcome: { status: "ok", value: value() } }
            : { ...base, call: { kind: "read" }, outcome: { status: "unknown", reason: "t" } };
      } else if (roll < 0.7) {
        op = {
          ...base,
          call: { kind: "write", value: value() },
          outcome:
            status < 0.75
              ? { status: "ok" }
              : status < 0.9
                ? { status: "unknown", reason: "t" }
                : { status: "fail" },
        };
      } else {
        const call = { kind: "cas" as const, expected: value(), value: rng.pick(values) };
        op = {
          ...base,
          call,
          outcome:
            status < 0.45
              ? { status: "ok" }
              : status < 0.6
                ? { status: "fail" }
                : status < 0.85
                  ? { status: "fail", current: value() }
                  : { status: "unknown", reason: "t" },
        };
      }
      const unknown = op.outcome.status === "unknown";
      ops.push({ ...op, invokedAt, completedAt: unknown ? Infinity : completedAt });
    }
    return ops;
  }

  it("agrees on 3000 random small histories, and its failing windows fail from any value", () => {
    const rng = new Random(99);
    let failing = 0;
    for (let n = 0; n < 3000; n++) {
      const ops = smallHistory(rng);
      const expected = bruteForce(ops, null);
      const verdict = checkLinearizable(ops);
      assert.equal(verdict.ok, expected, `history ${n}: ${JSON.stringify(ops)}`);
      if (verdict.ok !== false) continue;
      failing++;
      // A window from "any value" fails for every concrete starting value too.
      if (verdict.from !== -Infinity) {
        const inside = ops.filter(
          (op) => op.invokedAt >= verdict.from && op.completedAt <= verdict.to,
        );
        for (const initial of [null, "a", "b", "c", "z"]) {
          assert.equal(bruteForce(inside, initial), false, `history ${n} window from ${initial}`);
        }
      }
    }
    assert.ok(
      failing > 300 && failing < 2700,
      `${failing} of 3000 failing: both kinds are covered`,
    );
  });
});
