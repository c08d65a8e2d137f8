/**
 * The deterministic workload of the SQLite crash test: the child process writes it until it is
 * killed, and the test replays it on a MemoryLogStore to know what the file must hold.
 *
 * Step b writes the hard state { term: b } (so the term on disk says which write committed last)
 * and 1–48 entries of term b, some blank, some membership, payloads of 0–400 bytes; every 7th
 * step first truncates the last three entries, every 20th step then purges all but the last 30.
 */
import type { Entry } from "../../src/core/types.ts";
import type { LogStore, LogWrite } from "../../src/storage/log-store.ts";
import { membershipOf } from "./contract.ts";

/** One step: a write, then maybe a purge (a second transaction). */
export interface CrashStep {
  readonly step: number;
  readonly write: LogWrite;
  readonly purgeTo: number | null;
}

function payload(index: number, step: number): Uint8Array {
  const bytes = new Uint8Array((index * 131 + step) % 401);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (index + i * 7 + step) & 0xff;
  return bytes;
}

function entry(index: number, term: number): Entry {
  if (index % 50 === 0) {
    const voters = ["a", "b", "c", `n${index}`];
    return { index, term, kind: "membership", membership: membershipOf(voters, [`l${term}`]) };
  }
  if (index % 11 === 0) return { index, term, kind: "blank" };
  return { index, term, kind: "command", data: payload(index, term) };
}

/** Generates the steps in order; the same sequence on every runtime and in every process. */
export class CrashWorkload {
  #step = 0;
  #firstIndex = 1;
  #lastIndex = 0;

  next(): CrashStep {
    const step = ++this.#step;
    let truncateFrom: number | undefined;
    if (step % 7 === 0 && this.#lastIndex - 2 >= this.#firstIndex) {
      truncateFrom = this.#lastIndex - 2;
      this.#lastIndex = truncateFrom - 1;
    }
    const count = 1 + ((step * 37) % 48);
    const entries: Entry[] = [];
    for (let i = 1; i <= count; i++) entries.push(entry(this.#lastIndex + i, step));
    this.#lastIndex += count;
    const votedFor = step % 4 === 0 ? null : `n${step % 3}`;
    let purgeTo: number | null = null;
    if (step % 20 === 0 && this.#lastIndex - 30 >= this.#firstIndex) {
      purgeTo = this.#lastIndex - 30;
      this.#firstIndex = purgeTo + 1;
    }
    const write: LogWrite = { hardState: { term: step, votedFor }, truncateFrom, entries };
    return { step, write, purgeTo };
  }
}

/** Applies one step to `store`; `afterWrite` runs between the write and the purge. */
export async function applyStep(
  store: LogStore,
  { write, purgeTo }: CrashStep,
  afterWrite?: () => Promise<void>,
): Promise<void> {
  await store.write(write);
  await afterWrite?.();
  if (purgeTo !== null) await store.purge(purgeTo);
}
