/**
 * The key-value state machine of the example service: a Map of key → value (UTF-8 text), with
 * put, delete and compare-and-set, and a client session table for exactly-once writes
 * (thesis §6.3).
 *
 * Commands and responses are small JSON documents (UTF-8 bytes in the log):
 *
 *   { "op": "put",    "key": k, "value": v,                   "client"?: id, "seq"?: n }
 *   { "op": "delete", "key": k,                               "client"?: id, "seq"?: n }
 *   { "op": "cas",    "key": k, "expected": v | null, "value": v, "client"?: id, "seq"?: n }
 *
 *   → { "index": i, "ok": true }                       put, delete (with "existed"), cas that matched
 *   → { "index": i, "ok": false, "current": v | null } cas that did not match
 *   → { "index": i, "ok": false, "stale": true }      a seq older than the client's last one
 *
 * A failed cas is a deterministic outcome, the same on every replica: it is a normal response,
 * not an error. `index` is the log index of the entry that applied the command, so a retried
 * request that is answered from the session table carries the index of its first application.
 *
 * The state lives in memory only: `lastApplied()` is 0, so on every start the driver restores it
 * from the latest snapshot and replays the log after it. A snapshot is the map and the session
 * table as JSON lines, streamed in chunks of about 64 KiB:
 *
 *   {"kv":1}                                   the format
 *   ["d", key, value]                          one per key, in insertion order
 *   ["s", client, seq, lastIndex, response]    one per session, least recently active first
 */
import type { Entry } from "../../src/core/types.ts";
import {
  ApplyFailure,
  type ApplyResponse,
  type StateMachine,
} from "../../src/driver/state-machine.ts";
import type { SnapshotMeta } from "../../src/storage/snapshot-store.ts";

export type KvCommand =
  | {
      readonly op: "put";
      readonly key: string;
      readonly value: string;
      readonly client?: string;
      readonly seq?: number;
    }
  | { readonly op: "delete"; readonly key: string; readonly client?: string; readonly seq?: number }
  | {
      readonly op: "cas";
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
      readonly client?: string;
      readonly seq?: number;
    };

export interface KvResponse {
  readonly index: number;
  readonly ok: boolean;
  /** delete: whether the key existed. */
  readonly existed?: boolean;
  /** A cas that did not match: the current value (null: absent). */
  readonly current?: string | null;
  /** The request's seq is older than the last one its client sent: it was not applied. */
  readonly stale?: boolean;
}

/** Bounds of the session table; both count applied log entries, never wall-clock time. */
export interface SessionLimits {
  /** At most this many clients are remembered; the least recently active is forgotten first. */
  readonly maxSessions: number;
  /** A client with no write in this many log entries is forgotten. */
  readonly idleEntries: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxSessions: 10_000,
  idleEntries: 1_000_000,
};

interface Session {
  seq: number;
  /** The encoded response to `seq`, returned again if it is retried. */
  response: Uint8Array;
  /** Index of the client's last applied write. */
  lastIndex: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const EMPTY = new Uint8Array(0);
/** Roughly how many bytes each snapshot chunk holds. */
const SNAPSHOT_CHUNK_BYTES = 64 * 1024;
const SNAPSHOT_HEADER = JSON.stringify({ kv: 1 });

export function encodeCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

export function decodeResponse(bytes: Uint8Array): KvResponse {
  return JSON.parse(decoder.decode(bytes)) as KvResponse;
}

export class KvStateMachine implements StateMachine {
  #data = new Map<string, string>();
  /** clientId → session, in order of last activity (least recent first). */
  #sessions = new Map<string, Session>();
  readonly #limits: SessionLimits;
  #applied = 0;

  constructor(limits: SessionLimits = DEFAULT_SESSION_LIMITS) {
    this.#limits = limits;
  }

  /**
   * The map and the session table as of now, as JSON lines. The entries are copied (references,
   * not bytes) when this is called, so applies may go on while the stream is read; sessions are
   * never changed in place, only replaced.
   */
  snapshot(): AsyncIterable<Uint8Array> {
    const data = [...this.#data];
    const sessions = [...this.#sessions];
    return (async function* () {
      let lines: string[] = [SNAPSHOT_HEADER];
      let size = SNAPSHOT_HEADER.length;
      const add = (line: string) => {
        lines.push(line);
        size += line.length + 1;
        if (size < SNAPSHOT_CHUNK_BYTES) return null;
        const chunk = encoder.encode(`${lines.join("\n")}\n`);
        lines = [];
        size = 0;
        return chunk;
      };
      for (const [key, value] of data) {
        const chunk = add(JSON.stringify(["d", key, value]));
        if (chunk) yield chunk;
      }
      for (const [client, s] of sessions) {
        const line = JSON.stringify(["s", client, s.seq, s.lastIndex, decoder.decode(s.response)]);
        const chunk = add(line);
        if (chunk) yield chunk;
      }
      if (lines.length > 0) yield encoder.encode(`${lines.join("\n")}\n`);
    })();
  }

  /** Replaces the map and the session table with the snapshot's, all at once at the end. */
  async restore(meta: SnapshotMeta, stream: AsyncIterable<Uint8Array>): Promise<void> {
    const data = new Map<string, string>();
    const sessions = new Map<string, Session>();
    const text = new TextDecoder("utf-8", { fatal: true });
    let partial = "";
    let header = false;
    const line = (raw: string) => {
      if (!header) {
        if (raw !== SNAPSHOT_HEADER) throw new Error("not a KV snapshot");
        header = true;
        return;
      }
      const record = JSON.parse(raw) as unknown[];
      if (record[0] === "d") data.set(record[1] as string, record[2] as string);
      else if (record[0] === "s") {
        sessions.set(record[1] as string, {
          seq: record[2] as number,
          lastIndex: record[3] as number,
          response: encoder.encode(record[4] as string),
        });
      } else throw new Error(`unknown snapshot record ${String(record[0])}`);
    };
    for await (const chunk of stream) {
      const lines = (partial + text.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() as string;
      for (const raw of lines) line(raw);
    }
    partial += text.decode();
    if (partial !== "") line(partial);
    if (!header) throw new Error("empty KV snapshot");
    this.#data = data;
    this.#sessions = sessions;
    this.#applied = meta.index;
  }

  /** Nothing survives a restart: the driver restores the snapshot and replays the log after it. */
  lastApplied(): number {
    return 0;
  }

  /** The local value of `key` (undefined: absent). */
  get(key: string): string | undefined {
    return this.#data.get(key);
  }

  get size(): number {
    return this.#data.size;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Index of the last entry applied to this in-memory state. */
  get appliedIndex(): number {
    return this.#applied;
  }

  apply(entries: readonly Entry[]): ApplyResponse[] {
    const responses: ApplyResponse[] = [];
    for (const entry of entries) {
      this.#applied = entry.index;
      if (entry.kind !== "command") {
        responses.push(EMPTY);
        continue;
      }
      responses.push(this.#applyCommand(entry.index, entry.data));
      this.#expireSessions(entry.index);
    }
    return responses;
  }

  #applyCommand(index: number, data: Uint8Array): ApplyResponse {
    let command: KvCommand;
    try {
      command = parseCommand(JSON.parse(decoder.decode(data)));
    } catch (error) {
      // The same bytes fail the same way on every replica: a deterministic failure.
      return new ApplyFailure(`malformed command: ${(error as Error).message}`);
    }
    const { client, seq } = command;
    if (client === undefined || seq === undefined) return this.#execute(index, command);

    const session = this.#sessions.get(client);
    if (session !== undefined) {
      if (seq === session.seq) return session.response;
      if (seq < session.seq) return encode({ index, ok: false, stale: true });
    }
    const response = this.#execute(index, command);
    // Re-inserted at the end: the Map's order is the order of last activity.
    this.#sessions.delete(client);
    this.#sessions.set(client, { seq, response, lastIndex: index });
    if (this.#sessions.size > this.#limits.maxSessions) {
      const oldest = this.#sessions.keys().next().value as string;
      this.#sessions.delete(oldest);
    }
    return response;
  }

  #execute(index: number, command: KvCommand): Uint8Array {
    switch (command.op) {
      case "put":
        this.#data.set(command.key, command.value);
        return encode({ index, ok: true });
      case "delete": {
        const existed = this.#data.delete(command.key);
        return encode({ index, ok: true, existed });
      }
      case "cas": {
        const current = this.#data.get(command.key) ?? null;
        if (current !== command.expected) return encode({ index, ok: false, current });
        this.#data.set(command.key, command.value);
        return encode({ index, ok: true });
      }
    }
  }

  /** Forgets clients idle for more than `idleEntries` entries (the oldest are first). */
  #expireSessions(index: number): void {
    for (const [client, session] of this.#sessions) {
      if (index - session.lastIndex <= this.#limits.idleEntries) break;
      this.#sessions.delete(client);
    }
  }
}

function encode(response: KvResponse): Uint8Array {
  return encoder.encode(JSON.stringify(response));
}

/** Checks a decoded command's shape; throws naming the problem. */
function parseCommand(value: unknown): KvCommand {
  if (typeof value !== "object" || value === null) throw new Error("not an object");
  const c = value as Record<string, unknown>;
  if (typeof c.key !== "string") throw new Error("key is not a string");
  if (c.client !== undefined && typeof c.client !== "string") throw new Error("bad client");
  if (c.seq !== undefined && !(Number.isSafeInteger(c.seq) && (c.seq as number) > 0)) {
    throw new Error("bad seq");
  }
  if ((c.client === undefined) !== (c.seq === undefined)) {
    throw new Error("client and seq go together");
  }
  switch (c.op) {
    case "put":
      if (typeof c.value !== "string") throw new Error("value is not a string");
      break;
    case "delete":
      break;
    case "cas":
      if (typeof c.value !== "string") throw new Error("value is not a string");
      if (c.expected !== null && typeof c.expected !== "string") {
        throw new Error("expected is neither a string nor null");
      }
      break;
    default:
      throw new Error(`unknown op ${String(c.op)}`);
  }
  return c as unknown as KvCommand;
}
