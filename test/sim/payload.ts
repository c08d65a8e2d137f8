/**
 * Client commands carry a unique counter in their first 4 bytes (plus padding of random length,
 * so byte limits on batches matter). An entry's identity is its term and this number.
 */
import type { Entry, Membership } from "../../mod.ts";
import type { Random } from "./random.ts";

export function encodeCommand(counter: number, rng: Random): Uint8Array {
  const data = new Uint8Array(4 + rng.int(0, 3) * rng.int(0, 40));
  new DataView(data.buffer).setUint32(0, counter);
  return data;
}

/** The counter of a command payload. */
export function commandId(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
}

/** A number naming what an entry holds: the command counter (>= 1), 0 blank, -1 membership. */
export function entryId(entry: Entry): number {
  if (entry.kind === "command") return commandId(entry.data);
  return entry.kind === "blank" ? 0 : -1;
}

export function describeEntry(entry: Entry): string {
  const what =
    entry.kind === "command"
      ? `cmd#${commandId(entry.data)}`
      : entry.kind === "membership"
        ? `membership ${describeMembership(entry.membership)}`
        : entry.kind;
  return `(${entry.index},t${entry.term},${what})`;
}

export function describeMembership(m: Membership): string {
  const old = m.outgoing ? ` old=${m.outgoing.join(",")}` : "";
  return `[voters=${m.voters.join(",")}${old} learners=${m.learners.join(",") || "-"}]`;
}
