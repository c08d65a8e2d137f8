/**
 * A linearizability checker for register histories (GET, PUT, DELETE, compare-and-set per key).
 *
 * The search is Wing & Gong's, with Lowe's memoization, as Porcupine implements it: the history
 * of one key is a doubly linked list of call and return events ordered by time; the search
 * linearizes (lifts) any call whose operation the model accepts in the current state, and
 * backtracks when it meets a return event whose call is not linearized yet. A cache of
 * (set of linearized operations, state) pairs already explored prunes the search, which is what
 * keeps it polynomial on real histories. Keys are independent registers, so each is decided on
 * its own (P-compositionality, Horn & Kroening): the history is linearizable iff every key's is.
 *
 * `unknown` operations may take effect at any time after their invocation, or never: their return
 * comes after every other event, and linearizing one at the very end is the same as it never
 * having happened (nothing observes it). Before the search, two rewrites that preserve the answer
 * remove most of them (see `prepare`), since each one left pending multiplies the search.
 */

import type { Operation } from "./history.ts";

export type Verdict =
  | { readonly ok: true; readonly keys: number; readonly ops: number }
  | {
      readonly ok: false;
      /** The first key (in sorted order) whose history cannot be linearized. */
      readonly key: string;
      /**
       * The smallest time window [from, to] of that key's history that cannot be linearized on
       * its own (see `checkWindow`), from any value at `from` (from the initial absent value
       * when `from` is -Infinity), the operations straddling a bound possibly taking effect
       * outside it: moving either bound inward makes it linearizable. Listed here: the
       * operations entirely inside it with an answer (`insideWindow`), which alone already
       * cannot be linearized. Ordered by invocation.
       */
      readonly window: Operation[];
      /** An invocation time, or -Infinity for the key's beginning. */
      readonly from: number;
      /** A completion time, or Infinity when the failure needs the whole history. */
      readonly to: number;
      /** Every key that failed. */
      readonly failedKeys: string[];
      readonly keys: number;
      readonly ops: number;
      readonly reason: string;
    }
  | {
      readonly ok: "unknown";
      readonly reason: string;
      readonly keys: number;
      readonly ops: number;
    };

export interface CheckOptions {
  /** Wall-clock budget for the whole check, window search included. Default: none. */
  readonly timeLimitMs?: number;
  /** Budget of search steps (deterministic, for tests). Default: none. */
  readonly maxSteps?: number;
}

/** Decides whether a history of register operations is linearizable. */
export function checkLinearizable(ops: readonly Operation[], opts: CheckOptions = {}): Verdict {
  validate(ops);
  const budget = new Budget(opts);
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (list === undefined) {
      list = [];
      byKey.set(op.key, list);
    }
    list.push(op);
  }
  const keys = [...byKey.keys()].sort();
  const failed: string[] = [];
  const undecided: string[] = [];
  for (const key of keys) {
    const result = checkKey(byKey.get(key) ?? [], NULL_STATE, budget);
    if (result === false) failed.push(key);
    else if (result === "unknown") undecided.push(key);
  }
  const counts = { keys: keys.length, ops: ops.length };
  if (failed.length > 0) {
    const key = failed[0];
    const keyOps = byKey.get(key) ?? [];
    const { from, to, window } = smallestWindow(keyOps, budget);
    return {
      ok: false,
      key,
      window,
      from,
      to,
      failedKeys: failed,
      ...counts,
      reason:
        `key ${JSON.stringify(key)}: no linearization of its ${keyOps.length} operations; ` +
        `already none for the ${window.length} inside [${from}, ${to}] ` +
        `(ids ${window.map((op) => op.id).join(", ")})`,
    };
  }
  if (undecided.length > 0) {
    return {
      ok: "unknown",
      ...counts,
      reason: `search budget exhausted on ${undecided.length} key(s), first ${JSON.stringify(undecided[0])} (${budget.describe()})`,
    };
  }
  return { ok: true, ...counts };
}

/** One line per operation, for a report. */
export function formatOperation(op: Operation): string {
  const show = (v: string | null | undefined) => (v === undefined ? "?" : JSON.stringify(v));
  const call =
    op.call.kind === "read"
      ? "read"
      : op.call.kind === "write"
        ? op.call.value === null
          ? "delete"
          : `write ${show(op.call.value)}`
        : `cas ${show(op.call.expected)} -> ${show(op.call.value)}`;
  const o = op.outcome;
  const outcome =
    o.status === "ok"
      ? op.call.kind === "read"
        ? `ok ${show(o.value)}`
        : "ok"
      : o.status === "fail"
        ? `fail${o.current !== undefined ? ` (current ${show(o.current)})` : ""}`
        : `unknown (${o.reason})`;
  const end = Number.isFinite(op.completedAt) ? op.completedAt.toFixed(1) : "∞";
  return `#${op.id} client ${op.client} ${JSON.stringify(op.key)} ${call} => ${outcome} [${op.invokedAt.toFixed(1)}, ${end}]`;
}

// ---------------------------------------------------------------------------------------------
// Budget

class Budget {
  private readonly deadline: number;
  private readonly maxSteps: number;
  steps = 0;
  exhausted = false;

  constructor(opts: CheckOptions) {
    this.deadline =
      opts.timeLimitMs === undefined
        ? Number.POSITIVE_INFINITY
        : performance.now() + opts.timeLimitMs;
    this.maxSteps = opts.maxSteps ?? Number.POSITIVE_INFINITY;
  }

  /** Counts one search step; reads the clock every 4096 steps. */
  tick(): boolean {
    this.steps++;
    if (this.steps > this.maxSteps) this.exhausted = true;
    else if ((this.steps & 4095) === 0 && performance.now() > this.deadline) this.exhausted = true;
    return !this.exhausted;
  }

  describe(): string {
    return `${this.steps} steps`;
  }
}

// ---------------------------------------------------------------------------------------------
// The register model, on interned states: 0 is absent, 1 is "any value" (a window's start).

const NULL_STATE = 0;
const ANY_STATE = 1;
const NO_VALUE = -1;
const INVALID = -1;

const READ = 0;
const WRITE = 1;
const CAS_OK = 2;
const CAS_FAIL = 3;
const CAS_UNKNOWN = 4;

/** An operation as the search sees it, with interned values and an effective return time. */
interface Prepared {
  readonly op: Operation;
  readonly kind: number;
  /** READ: the value read; WRITE: the value written; CAS_*: the expected value. */
  readonly a: number;
  /** CAS_OK, CAS_UNKNOWN: the value written; CAS_FAIL: the current value seen, or NO_VALUE. */
  readonly b: number;
  readonly call: number;
  readonly ret: number;
}

/** The state after `p` in state `s`, or INVALID if `p` cannot happen in `s`. */
function step(p: Prepared, s: number): number {
  switch (p.kind) {
    case READ:
      return s === p.a || s === ANY_STATE ? p.a : INVALID;
    case WRITE:
      return p.a;
    case CAS_OK:
      return s === p.a || s === ANY_STATE ? p.b : INVALID;
    case CAS_FAIL:
      // A refused cas is a read that saw a value other than the expected one.
      if (s === ANY_STATE) return p.b === NO_VALUE ? ANY_STATE : p.b === p.a ? INVALID : p.b;
      if (s === p.a) return INVALID;
      return p.b === NO_VALUE || p.b === s ? s : INVALID;
    default:
      // CAS_UNKNOWN: it took effect iff the value matched (not taking effect at all is the same
      // as being linearized last). From "any value" both are possible: stay permissive.
      if (s === ANY_STATE) return ANY_STATE;
      return s === p.a ? p.b : s;
  }
}

class Interner {
  private readonly ids = new Map<string, number>();
  id(value: string | null): number {
    if (value === null) return NULL_STATE;
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.ids.size + 2;
      this.ids.set(value, id);
    }
    return id;
  }
}

/**
 * Turns a key's operations into the search's input, dropping what carries no information and
 * rewriting `unknown` writes whose written value is unique (written by no other operation):
 * - if some operation certainly observed the value (a read returned it, a successful cas expected
 *   it, a refused cas reported it as current), the write took effect before that observer's
 *   linearization point, hence before the earliest such observer completed: it becomes a
 *   successful operation completing then;
 * - if nothing could observe the value (no read returned it, no successful or unknown cas expected
 *   it, no refused cas saw it, and no refused cas lacks its `current`, since such a cas observes
 *   "not the expected value"), the write can be linearized last, i.e. dropped.
 * From "any value" (a window's start) the initial state may already hold the value, so only the
 * second rewrite applies there.
 */
function prepare(ops: readonly Operation[], initial: number): Prepared[] {
  const interner = new Interner();
  const writers = new Map<string, number>();
  const firstObserved = new Map<string, number>();
  /** Values that unknown cas operations expect. */
  const expected = new Set<string>();
  let blindFail = false;
  const observe = (v: string | null | undefined, at: number) => {
    if (v === null || v === undefined) return;
    const t = firstObserved.get(v);
    if (t === undefined || at < t) firstObserved.set(v, at);
  };
  for (const op of ops) {
    const { call, outcome } = op;
    if (call.kind === "read") {
      if (outcome.status === "ok") observe(outcome.value ?? null, op.completedAt);
    } else if (call.kind === "write") {
      if (outcome.status !== "fail" && call.value !== null) {
        writers.set(call.value, (writers.get(call.value) ?? 0) + 1);
      }
    } else {
      if (outcome.status === "unknown" && call.expected !== null) expected.add(call.expected);
      if (outcome.status === "ok") observe(call.expected, op.completedAt);
      if (outcome.status === "fail") {
        if (outcome.current === undefined) blindFail = true;
        else observe(outcome.current, op.completedAt);
      }
      if (outcome.status !== "fail") writers.set(call.value, (writers.get(call.value) ?? 0) + 1);
    }
  }

  const out: Prepared[] = [];
  for (const op of ops) {
    const { call, outcome } = op;
    const unknown = outcome.status === "unknown";
    let ret = unknown ? Number.POSITIVE_INFINITY : op.completedAt;
    if (call.kind === "read") {
      // A read without an answer tells nothing.
      if (outcome.status !== "ok") continue;
      const a = interner.id(outcome.value ?? null);
      out.push({ op, kind: READ, a, b: NO_VALUE, call: op.invokedAt, ret });
      continue;
    }
    // A write or cas that certainly did not happen is a no-op, except a refused cas, which read.
    if (call.kind === "write" && outcome.status === "fail") continue;
    let kind = call.kind === "write" ? WRITE : unknown ? CAS_UNKNOWN : CAS_OK;
    if (call.kind === "cas" && outcome.status === "fail") kind = CAS_FAIL;
    const written = call.value;
    if (unknown && written !== null && writers.get(written) === 1) {
      const seen = firstObserved.get(written);
      if (seen === undefined && !expected.has(written) && !blindFail) continue;
      if (seen !== undefined && initial !== ANY_STATE && seen >= op.invokedAt) {
        ret = seen;
        if (kind === CAS_UNKNOWN) kind = CAS_OK;
      }
    }
    if (call.kind === "write") {
      out.push({ op, kind, a: interner.id(call.value), b: NO_VALUE, call: op.invokedAt, ret });
    } else {
      const current = outcome.status === "fail" ? outcome.current : undefined;
      const b =
        kind === CAS_FAIL
          ? current === undefined
            ? NO_VALUE
            : interner.id(current)
          : interner.id(call.value);
      out.push({ op, kind, a: interner.id(call.expected), b, call: op.invokedAt, ret });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The search

/** true: linearizable; false: not; "unknown": the budget ran out. */
function checkKey(ops: readonly Operation[], initial: number, budget: Budget): boolean | "unknown" {
  // Numbered by invocation, so that the linearized set is a full prefix and a short tail.
  const prepared = prepare(ops, initial).sort((x, y) => x.call - y.call || x.op.id - y.op.id);
  const n = prepared.length;
  if (n === 0) return true;

  // Events: 2i is the call of operation i, 2i + 1 its return. Ties put calls first, so
  // operations that touch in time count as concurrent (the permissive reading).
  const events = new Int32Array(2 * n);
  for (let e = 0; e < 2 * n; e++) events[e] = e;
  const time = (e: number) => ((e & 1) === 0 ? prepared[e >> 1].call : prepared[e >> 1].ret);
  events.sort((x, y) => time(x) - time(y) || (x & 1) - (y & 1) || x - y);

  // The doubly linked list over events; index 2n is the head sentinel, -1 the end.
  const HEAD = 2 * n;
  const next = new Int32Array(2 * n + 1);
  const prev = new Int32Array(2 * n + 1);
  let last = HEAD;
  for (let i = 0; i < 2 * n; i++) {
    const e = events[i];
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = -1;

  const lift = (call: number) => {
    next[prev[call]] = next[call];
    prev[next[call]] = prev[call];
    const ret = call + 1;
    next[prev[ret]] = next[ret];
    if (next[ret] !== -1) prev[next[ret]] = prev[ret];
  };
  const unlift = (call: number) => {
    const ret = call + 1;
    next[prev[ret]] = ret;
    if (next[ret] !== -1) prev[next[ret]] = ret;
    next[prev[call]] = call;
    prev[next[call]] = call;
  };

  // Unknown operations still pending forever ("free": nothing forces them in) are where the
  // search explodes: any subset of them could be linearized at any point. Two rules, each keeping
  // at least one linearization if there is any, cut that down:
  // - if the operation right after a free one would be valid without it and leave the same state
  //   (a blind write, a read of the value already there, ...), the free one can move to the end
  //   instead, where it is as good as never having happened: so that order is not tried;
  // - identical free operations are interchangeable: they are linearized in invocation order.
  // And once every other operation is linearized, the free ones go last: done.
  const free = new Uint8Array(n);
  const twin = new Int32Array(n).fill(-1);
  const lastTwin = new Map<string, number>();
  let knownLeft = 0;
  for (let k = 0; k < 2 * n; k++) {
    if ((events[k] & 1) === 1) continue;
    const i = events[k] >> 1;
    const p = prepared[i];
    if (p.ret === Number.POSITIVE_INFINITY && p.op.outcome.status === "unknown") {
      free[i] = 1;
      const t = `${p.kind}/${p.a}/${p.b}`;
      twin[i] = lastTwin.get(t) ?? -1;
      lastTwin.set(t, i);
    } else knownLeft++;
  }
  if (knownLeft === 0) return true;

  // A value no operation still to linearize can write, that some operation still to linearize
  // must observe, must not be left: the state could never come back to it. Counting both per
  // value prunes, among others, a write linearized long before the read of its value.
  let values = 2;
  for (const p of prepared) values = Math.max(values, p.a + 1, p.b + 1);
  const writers = new Int32Array(values);
  const observers = new Int32Array(values);
  const writes = new Int32Array(n).fill(-1);
  const observes = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const p = prepared[i];
    if (p.kind === WRITE) writes[i] = p.a;
    else if (p.kind === CAS_OK || p.kind === CAS_UNKNOWN) writes[i] = p.b;
    if (p.kind === READ || p.kind === CAS_OK) observes[i] = p.a;
    else if (p.kind === CAS_FAIL && p.b !== NO_VALUE) observes[i] = p.b;
    if (writes[i] >= 0) writers[writes[i]]++;
    if (observes[i] >= 0) observers[observes[i]]++;
  }
  const take = (i: number, by: number) => {
    if (writes[i] >= 0) writers[writes[i]] -= by;
    if (observes[i] >= 0) observers[observes[i]] -= by;
  };

  const linearized = new Bitset(n);
  const cache = new Cache();
  const stackCall = new Int32Array(n);
  const stackState = new Int32Array(n);
  let depth = 0;
  let state = initial;
  let entry = next[HEAD];

  while (next[HEAD] !== -1) {
    if (!budget.tick()) return "unknown";
    if ((entry & 1) === 0) {
      const i = entry >> 1;
      if (twin[i] >= 0 && !linearized.has(twin[i])) {
        entry = next[entry];
        continue;
      }
      const after = step(prepared[i], state);
      if (after === INVALID) {
        entry = next[entry];
        continue;
      }
      take(i, 1);
      const stranded =
        after !== state && state !== ANY_STATE && writers[state] === 0 && observers[state] > 0;
      linearized.set(i);
      if (!stranded && cache.add(linearized, after)) {
        if (free[i] === 0 && --knownLeft === 0) return true;
        stackCall[depth] = entry;
        stackState[depth] = state;
        depth++;
        state = after;
        lift(entry);
        entry = next[HEAD];
      } else {
        take(i, -1);
        linearized.clear(i);
        entry = next[entry];
      }
    } else {
      // A return whose call is not linearized yet: undo the latest choice.
      if (depth === 0) return false;
      depth--;
      entry = stackCall[depth];
      state = stackState[depth];
      const i = entry >> 1;
      if (free[i] === 0) knownLeft++;
      take(i, -1);
      linearized.clear(i);
      unlift(entry);
      entry = next[entry];
    }
  }
  return true;
}

/** A set of operation indexes with an incrementally maintained 53-bit Zobrist hash. */
class Bitset {
  readonly words: Uint32Array;
  private readonly z1: Uint32Array;
  private readonly z2: Uint32Array;
  h1 = 0;
  h2 = 0;
  /** The first word that is not full. */
  lo = 0;
  /** One past the last word that is not empty. */
  hi = 0;

  constructor(n: number) {
    this.words = new Uint32Array((n + 31) >>> 5);
    this.z1 = new Uint32Array(n);
    this.z2 = new Uint32Array(n);
    // A fixed seed: the hash only spreads the cache, equality is always checked in full.
    let x = 0x9e3779b9;
    const rand = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    for (let i = 0; i < n; i++) {
      this.z1[i] = rand();
      this.z2[i] = rand();
    }
  }

  set(i: number): void {
    const w = i >>> 5;
    this.words[w] |= 1 << (i & 31);
    this.h1 ^= this.z1[i];
    this.h2 ^= this.z2[i];
    while (this.lo < this.words.length && this.words[this.lo] === 0xffffffff) this.lo++;
    if (w >= this.hi) this.hi = w + 1;
  }

  has(i: number): boolean {
    return (this.words[i >>> 5] & (1 << (i & 31))) !== 0;
  }

  clear(i: number): void {
    const w = i >>> 5;
    this.words[w] &= ~(1 << (i & 31));
    this.h1 ^= this.z1[i];
    this.h2 ^= this.z2[i];
    if (w < this.lo) this.lo = w;
    while (this.hi > 0 && this.words[this.hi - 1] === 0) this.hi--;
  }
}

/**
 * The explored (linearized set, state) pairs, as a chained hash table over typed arrays (millions
 * of entries without a garbage-collected object each). An entry stores its set compactly: the
 * words between the first that is not full and the last that is not empty, since the linearized
 * set is mostly a full prefix of the history and a few operations beyond it.
 */
class Cache {
  private table = new Int32Array(1 << 16).fill(-1);
  private size = 0;
  private h1 = new Int32Array(1 << 15);
  private h2 = new Int32Array(1 << 15);
  private state = new Int32Array(1 << 15);
  private lo = new Int32Array(1 << 15);
  private len = new Int32Array(1 << 15);
  private offset = new Float64Array(1 << 15);
  private chain = new Int32Array(1 << 15);
  private pool = new Uint32Array(1 << 16);
  private used = 0;

  /** Adds the pair; false if it was already there. */
  add(set: Bitset, state: number): boolean {
    const words = set.words;
    const lo = set.lo;
    const len = Math.max(lo, set.hi) - lo;
    const h1 = set.h1 ^ Math.imul(state + 2, 0x85ebca6b);
    const h2 = set.h2;
    const slot = h1 & (this.table.length - 1);
    for (let e = this.table[slot]; e !== -1; e = this.chain[e]) {
      if (this.h1[e] !== h1 || this.h2[e] !== h2 || this.state[e] !== state) continue;
      if (this.lo[e] !== lo || this.len[e] !== len) continue;
      const at = this.offset[e];
      let same = true;
      for (let w = 0; w < len; w++) {
        if (this.pool[at + w] !== words[lo + w]) {
          same = false;
          break;
        }
      }
      if (same) return false;
    }
    if (this.size === this.h1.length) this.growEntries();
    if (this.used + len > this.pool.length) {
      const pool = new Uint32Array(Math.max(this.pool.length * 2, this.used + len));
      pool.set(this.pool);
      this.pool = pool;
    }
    const e = this.size++;
    this.h1[e] = h1;
    this.h2[e] = h2;
    this.state[e] = state;
    this.lo[e] = lo;
    this.len[e] = len;
    this.offset[e] = this.used;
    this.pool.set(words.subarray(lo, lo + len), this.used);
    this.used += len;
    this.chain[e] = this.table[slot];
    this.table[slot] = e;
    if (this.size * 2 > this.table.length) this.rehash();
    return true;
  }

  private growEntries(): void {
    const grow = <T extends Int32Array | Float64Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(a.length * 2);
      b.set(a);
      return b;
    };
    this.h1 = grow(this.h1);
    this.h2 = grow(this.h2);
    this.state = grow(this.state);
    this.lo = grow(this.lo);
    this.len = grow(this.len);
    this.offset = grow(this.offset);
    this.chain = grow(this.chain);
  }

  private rehash(): void {
    this.table = new Int32Array(this.table.length * 2).fill(-1);
    const mask = this.table.length - 1;
    for (let e = 0; e < this.size; e++) {
      const slot = this.h1[e] & mask;
      this.chain[e] = this.table[slot];
      this.table[slot] = e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The smallest failing window

/**
 * The operations of a key's history seen through the time window [from, to], weakened so that
 * the window is linearizable whenever the whole history is (restrict a linearization of the
 * whole to the points inside the window):
 * - an operation that completed before `from` is gone: its effect is in the initial state, which
 *   is "any value" (absent when `from` is -Infinity);
 * - one invoked after `to` is gone: it takes effect after the window;
 * - one that straddles either bound may have taken effect inside the window or outside it: a
 *   write or cas becomes unknown (not taking effect is being linearized last), a read or a
 *   refused cas is dropped.
 * So a failing window is a proof on its own that the history is not linearizable.
 */
function windowHistory(ops: readonly Operation[], from: number, to: number): Operation[] {
  const out: Operation[] = [];
  for (const op of ops) {
    if (op.invokedAt > to || op.completedAt < from) continue;
    const straddles = op.invokedAt < from || op.completedAt > to;
    if (!straddles || op.outcome.status === "unknown") {
      out.push(op);
      continue;
    }
    const reads = op.call.kind === "read" || op.outcome.status === "fail";
    if (reads) continue;
    out.push({
      ...op,
      completedAt: Number.POSITIVE_INFINITY,
      outcome: { status: "unknown", reason: "straddles the window" },
    });
  }
  return out;
}

/**
 * What a failing window shows: the operations entirely inside it with an answer. The others it
 * counts (those straddling a bound, unknown ones) may or may not take effect in it, so leaving
 * them out only removes ways to linearize: these alone already have none.
 */
export function insideWindow(ops: readonly Operation[], from: number, to: number): Operation[] {
  return ops
    .filter(
      (op) =>
        op.invokedAt >= from &&
        op.completedAt <= to &&
        op.outcome.status !== "unknown" &&
        !(op.call.kind === "write" && op.outcome.status === "fail"),
    )
    .sort((x, y) => x.invokedAt - y.invokedAt || x.id - y.id);
}

/**
 * Whether the key's operations seen through [from, to] (see `windowHistory`) are linearizable:
 * true, false, or "unknown" if the budget ran out. `from` = -Infinity starts from the key's
 * initial absent value, any other `from` from any value.
 */
export function checkWindow(
  ops: readonly Operation[],
  from: number,
  to: number,
  opts: CheckOptions = {},
): boolean | "unknown" {
  const initial = from === Number.NEGATIVE_INFINITY ? NULL_STATE : ANY_STATE;
  return checkKey(windowHistory(ops, from, to), initial, new Budget(opts));
}

/**
 * The smallest time window of a failing key's history that fails on its own. Widening a window
 * only adds constraints, so failure is monotone in both bounds: bisect the earliest end (among
 * completion times) from the initial state, then the latest start (among invocation times) for
 * that end. If the budget runs out, an undecided window counts as passing, so the result is
 * always a window known to fail, perhaps not the smallest.
 */
function smallestWindow(
  ops: readonly Operation[],
  budget: Budget,
): { from: number; to: number; window: Operation[] } {
  const fails = (from: number, to: number) =>
    checkKey(
      windowHistory(ops, from, to),
      from === Number.NEGATIVE_INFINITY ? NULL_STATE : ANY_STATE,
      budget,
    ) === false;
  const unique = (times: number[]) =>
    [...new Set(times.filter(Number.isFinite))].sort((a, b) => a - b);

  const ends = [...unique(ops.map((op) => op.completedAt)), Number.POSITIVE_INFINITY];
  // fails(-Infinity, ends[hi]); not fails(-Infinity, ends[lo]) (lo = -1: nothing).
  let lo = -1;
  let hi = ends.length - 1;
  while (hi - lo > 1 && !budget.exhausted) {
    const mid = (lo + hi) >> 1;
    if (fails(Number.NEGATIVE_INFINITY, ends[mid])) hi = mid;
    else lo = mid;
  }
  const to = ends[hi];

  const starts = [Number.NEGATIVE_INFINITY, ...unique(ops.map((op) => op.invokedAt))].filter(
    (t) => t <= to,
  );
  // fails(starts[lo], to); not fails(starts[hi], to) (hi = starts.length: nothing).
  lo = 0;
  hi = starts.length;
  while (hi - lo > 1 && !budget.exhausted) {
    const mid = (lo + hi) >> 1;
    if (fails(starts[mid], to)) lo = mid;
    else hi = mid;
  }
  const from = starts[lo];
  return { from, to, window: insideWindow(ops, from, to) };
}

// ---------------------------------------------------------------------------------------------

function validate(ops: readonly Operation[]): void {
  const ids = new Set<number>();
  for (const op of ops) {
    if (ids.has(op.id)) throw new TypeError(`operation id ${op.id} appears twice`);
    ids.add(op.id);
    if (!Number.isFinite(op.invokedAt)) {
      throw new TypeError(`operation ${op.id}: invokedAt ${op.invokedAt} is not finite`);
    }
    if (op.outcome.status !== "unknown" && !(op.completedAt >= op.invokedAt)) {
      throw new TypeError(
        `operation ${op.id}: completedAt ${op.completedAt} precedes invokedAt ${op.invokedAt}`,
      );
    }
  }
}
