/**
 * The chaos harness's clients: concurrent loops issuing linearizable GETs, PUTs of unique values
 * and compare-and-sets on a few dozen keys, each against a random node, following 307 redirects
 * to the leader, and recording every operation as history.ts defines it.
 *
 * An answer decides an operation: 200 (and 404 for a read) is `ok`, a cas's 409 `{ ok: false,
 * current }` is `fail`. Everything else — a timeout, a connection error, 503, 504, too many
 * redirects — leaves it `unknown`: it may have taken effect, at any time after its invocation.
 * An answer the service should never give (another 4xx) is also `unknown`, and counted apart as
 * `unexpected` so the report shows it.
 */
import type { Random } from "../sim/random.ts";
import type { Call, Operation, Outcome } from "./history.ts";

export interface ClientOptions {
  /** Base URLs of the nodes. */
  readonly nodes: readonly string[];
  readonly clients: number;
  readonly keys: number;
  /** Each operation's bound, redirects included: then it is `unknown` and the client moves on. */
  readonly timeoutMs: number;
  readonly rng: Random;
}

/** 307 hops an operation may follow (a leader change may redirect twice). */
const MAX_REDIRECTS = 3;

export function keyNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `k${String(i).padStart(2, "0")}`);
}

export class Clients {
  readonly history: Operation[] = [];
  /** Answers outside the service's contract, e.g. `400 PUT k01: …`. */
  readonly unexpected: string[] = [];
  readonly keys: readonly string[];
  #nextId = 0;
  #nextValue = 0;
  #stopping = false;
  #loops: Promise<void>[] = [];
  /** The latest value any client saw per key: what a cas expects, so some succeed. */
  readonly #seen = new Map<string, string | null>();

  constructor(readonly options: ClientOptions) {
    this.keys = keyNames(options.keys);
  }

  start(): void {
    for (let client = 0; client < this.options.clients; client++) {
      this.#loops.push(this.#loop(client));
    }
  }

  /** Lets every client finish its operation in flight, then stops them. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  /**
   * Reads `key` linearizably (as client `client`) until a read succeeds or `deadlineMs` passes;
   * every attempt is recorded. Resolves with the value, or undefined when none succeeded.
   */
  async finalRead(client: number, key: string, deadlineMs: number): Promise<Operation | undefined> {
    const deadline = performance.now() + deadlineMs;
    while (performance.now() < deadline) {
      const op = await this.invoke(client, key, { kind: "read" });
      if (op.outcome.status === "ok") return op;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return undefined;
  }

  async #loop(client: number): Promise<void> {
    const { rng } = this.options;
    while (!this.#stopping) {
      const key = rng.pick(this.keys);
      const roll = rng.next();
      let call: Call;
      if (roll < 0.4) {
        call = { kind: "read" };
      } else if (roll < 0.75) {
        call = { kind: "write", value: this.#uniqueValue(client) };
      } else {
        const seen = this.#seen.get(key) ?? null;
        const expected = rng.chance(0.85) ? seen : null;
        call = { kind: "cas", expected, value: this.#uniqueValue(client) };
      }
      const op = await this.invoke(client, key, call);
      // A node with no leader or no process answers at once: back off a little, as a real
      // client would, instead of flooding the history with instant failures.
      if (op.outcome.status === "unknown") {
        await new Promise((resolve) => setTimeout(resolve, rng.int(100, 300)));
      }
    }
  }

  #uniqueValue(client: number): string {
    return `c${client}v${this.#nextValue++}`;
  }

  /** Performs `call` on `key` against a random node and records it. */
  async invoke(client: number, key: string, call: Call): Promise<Operation> {
    const id = this.#nextId++;
    const invokedAt = performance.now();
    const outcome = await this.#perform(key, call);
    const completedAt = outcome.status === "unknown" ? Number.POSITIVE_INFINITY : performance.now();
    const op: Operation = { id, client, key, call, invokedAt, completedAt, outcome };
    this.history.push(op);
    if (outcome.status === "ok") {
      if (call.kind === "read") this.#seen.set(key, outcome.value ?? null);
      else this.#seen.set(key, call.value);
    } else if (outcome.status === "fail" && outcome.current !== undefined) {
      this.#seen.set(key, outcome.current);
    }
    return op;
  }

  async #perform(key: string, call: Call): Promise<Outcome> {
    const { nodes, rng, timeoutMs } = this.options;
    const path = `/kv/${encodeURIComponent(key)}`;
    let url = `${rng.pick(nodes)}${path}`;
    let init: RequestInit;
    switch (call.kind) {
      case "read":
        init = { method: "GET" };
        break;
      case "write":
        init = call.value === null ? { method: "DELETE" } : { method: "PUT", body: call.value };
        break;
      case "cas":
        url = `${url}/cas`;
        init = {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ expected: call.expected, value: call.value }),
        };
        break;
    }
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
        const response = await fetch(url, { ...init, redirect: "manual", signal });
        const body = await response.text();
        const { status } = response;
        if (status === 307) {
          const location = response.headers.get("location");
          if (location === null) return this.#unexpected(call, key, status, "307 without Location");
          url = new URL(location, url).href;
          continue;
        }
        if (status === 200) {
          return call.kind === "read" ? { status: "ok", value: body } : { status: "ok" };
        }
        if (status === 404 && call.kind === "read") return { status: "ok", value: null };
        if (status === 409 && call.kind === "cas") {
          const answer = JSON.parse(body) as { ok?: boolean; current?: string | null };
          if (answer.ok === false) return { status: "fail", current: answer.current ?? null };
        }
        if (status >= 500) return { status: "unknown", reason: `${status} ${errorCode(body)}` };
        return this.#unexpected(call, key, status, body);
      }
      return { status: "unknown", reason: "too many redirects" };
    } catch (error) {
      return { status: "unknown", reason: failureReason(error) };
    }
  }

  #unexpected(call: Call, key: string, status: number, body: string): Outcome {
    this.unexpected.push(`${status} ${call.kind} ${key}: ${body.slice(0, 200)}`);
    return { status: "unknown", reason: `unexpected ${status}` };
  }
}

/** The `error` code of a JSON error body, or the start of the body. */
function errorCode(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // not JSON: fall through
  }
  return body.slice(0, 40);
}

function failureReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === "TimeoutError" || error.name === "AbortError") return "timeout";
  // Node's fetch puts the socket's code on the cause, Bun's on the error itself.
  const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown })?.code;
  return typeof code === "string" ? code : error.message.slice(0, 60);
}
