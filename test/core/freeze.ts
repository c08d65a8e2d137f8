/**
 * Proving that `step` never mutates the state it is given: deep-freeze the input and compare a
 * snapshot of it before and after.
 *
 * Two things `Object.freeze` cannot do alone:
 * - A frozen Map still accepts `set`/`delete`/`clear`: those are shadowed by throwing functions.
 * - Typed arrays with elements cannot be frozen: entry payloads are only compared.
 * And one thing it must not do: the log's `buffer` is, by design (src/core/log.ts), an
 * append-only array shared by successive log values; a newer log may push past the end an older
 * one sees. It is exempted from freezing; what a log value observes (its window of entries) is
 * frozen and compared like the rest.
 */
import type { RaftState } from "../../mod.ts";
import { entryAt } from "../../mod.ts";

function refuse(): never {
  throw new TypeError("attempt to mutate a frozen Map");
}

function freezeValue(value: unknown, seen: Set<object>): void {
  if (typeof value !== "object" || value === null || seen.has(value)) return;
  seen.add(value);
  if (ArrayBuffer.isView(value)) return;
  if (value instanceof Map) {
    for (const [k, v] of value) {
      freezeValue(k, seen);
      freezeValue(v, seen);
    }
    for (const method of ["set", "delete", "clear"]) {
      Object.defineProperty(value, method, { value: refuse });
    }
    Object.freeze(value);
    return;
  }
  for (const key of Object.keys(value)) {
    freezeValue((value as Record<string, unknown>)[key], seen);
  }
  Object.freeze(value);
}

/** Freezes `state` deeply, except the shared append-only log buffer (its entries are frozen). */
export function deepFreeze(state: RaftState): RaftState {
  const seen = new Set<object>([state.log.buffer]);
  for (const entry of state.log.buffer) freezeValue(entry, seen);
  freezeValue(state, seen);
  return state;
}

/** A deep copy of what a state observes: every field, with the log as its window of entries. */
export function observable(state: RaftState): unknown {
  const window = [];
  for (let i = state.log.baseIndex + 1; i <= state.log.lastIndex; i++) {
    window.push(entryAt(state.log, i));
  }
  const { buffer: _buffer, ...log } = state.log;
  return structuredClone({ ...state, log: { ...log, window } });
}
