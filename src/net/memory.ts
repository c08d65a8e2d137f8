/**
 * An in-process network for tests and the in-process benchmark, with deterministic faults:
 * partitions, one-way blocks, drops, duplication, delays and reordering, all drawn from a seeded
 * PRNG (never Math.random), one stream per link and purpose, so the faults a link suffers depend
 * only on the seed and the sequence of messages on that link.
 *
 * Semantics, chosen to mirror a real network with HTTP on top:
 * - A request or response lost to a drop, a partition or a block simply never arrives: the caller's
 *   promise rejects with a `NetworkError` of kind "timeout" after its `timeoutMs` (a partition
 *   cannot be told apart from loss). Reachability is checked when a message is sent and again
 *   when it arrives, so a partition formed while a message is in flight loses it.
 * - A request to an address nobody registered (a node that is down) is refused: it rejects with
 *   kind "unreachable" on a macrotask (setTimeout 0), never on the microtask queue, so a caller
 *   that retries at once cannot starve the event loop.
 * - A request that arrives is handled even if its caller has given up (a late delivery).
 * - A handler that throws or rejects makes the caller's promise reject with that error.
 * - Snapshot chunks (`sendSnapshotChunk`) suffer the same faults as messages, plus an optional
 *   chunk filter (`setChunkFilter`) for failures at a chosen point of a stream.
 * - Without delay faults a request is delivered on the microtask queue. Requests on one link
 *   (sender → receiver) arrive in the order they were sent unless `reorder` is on, with or
 *   without delays: pipelined AppendEntries stay in order.
 */
import type { Message, NodeId } from "../core/types.ts";
import type {
  Network,
  RequestMessage,
  ResponseMessage,
  RpcHandler,
  SnapshotChunk,
  SnapshotChunkResponse,
} from "./network.ts";

/** Why a send failed: no answer in time, nobody at the address, or the network was closed. */
export type NetworkErrorKind = "timeout" | "unreachable" | "closed";

/** The error a {@link MemoryNetwork} send rejects with (a handler's own error passes through). */
export class NetworkError extends Error {
  override name = "NetworkError";
  readonly kind: NetworkErrorKind;

  constructor(kind: NetworkErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/** Random faults, applied to every message. Change them at any time with `setFaults`. */
export interface NetworkFaults {
  /** Probability in [0, 1] that a request, and independently its response, is lost. Default 0. */
  readonly dropRate?: number;
  /** Probability in [0, 1] that a request is delivered twice (the copy's answer is discarded). */
  readonly duplicateRate?: number;
  /**
   * Extra delay [min, max] in ms, drawn uniformly per message (requests and responses) and
   * applied with setTimeout. Default [0, 0]: delivery on the microtask queue.
   */
  readonly delayMs?: readonly [min: number, max: number];
  /**
   * Let requests on a link overtake each other (each waits only for its own random delay).
   * Needs a delay range with max > 0 to have any effect. Default false: per-link FIFO.
   */
  readonly reorder?: boolean;
}

/** Options of a {@link MemoryNetwork}. */
export interface MemoryNetworkOptions extends NetworkFaults {
  /** Seed of every random fault. Default 1. */
  readonly seed?: number;
  /**
   * Deliver a structured clone of every message instead of the sender's object, as a real
   * transport would (catches aliasing bugs; slower). Default false.
   */
  readonly copyMessages?: boolean;
}

/** Decides the fate of one message (requests and non-null responses): false drops it. */
export type MessageFilter = (from: NodeId, to: NodeId, message: Message) => boolean;

/** Decides the fate of one snapshot chunk sent from `from` to `to`: false drops it. */
export type ChunkFilter = (from: NodeId, to: NodeId, chunk: SnapshotChunk) => boolean;

/** What counters are kept for: message types, and snapshot chunks and their answers. */
export type CounterType = Message["type"] | "snapshotChunk" | "snapshotChunkResponse";

/** Counts for one message type. */
export interface MessageCounters {
  /** Requests passed to `send`; responses returned by a handler (duplicates' answers excluded). */
  sent: number;
  /** Requests handed to a handler (duplicates included); responses handed to their caller. */
  delivered: number;
  /** Lost to `dropRate` or the filter. */
  dropped: number;
  /** Lost to a partition, a block or an unregistered address. */
  blocked: number;
  /** Extra copies of requests scheduled by `duplicateRate`. */
  duplicated: number;
  /** Requests whose caller got no answer within its timeout (only kept for request types). */
  timedOut: number;
}

type Answer = ResponseMessage | SnapshotChunkResponse | null;

interface Call {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly address: string;
  readonly message: RequestMessage | SnapshotChunk;
  readonly resolve: (response: Answer) => void;
  readonly reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  settled: boolean;
}

/** One direction between two nodes: its FIFO of delayed requests and its PRNG streams. */
interface Link {
  readonly queue: { readonly due: number; readonly run: () => void }[];
  timer: ReturnType<typeof setTimeout> | undefined;
  lastDue: number;
  readonly requestDrop: Prng;
  readonly responseDrop: Prng;
  readonly duplicate: Prng;
  readonly requestDelay: Prng;
  readonly responseDelay: Prng;
}

/**
 * The in-process network. Nodes register their RpcHandler under their address and send through
 * `endpoint(id)`, which tells the network who the sender is (partitions are between node ids).
 */
export class MemoryNetwork {
  readonly #seed: number;
  readonly #copy: boolean;
  #dropRate = 0;
  #duplicateRate = 0;
  #delayMin = 0;
  #delayMax = 0;
  #reorder = false;
  #filter: MessageFilter | null = null;
  #chunkFilter: ChunkFilter | null = null;

  readonly #handlers = new Map<string, RpcHandler>();
  readonly #links = new Map<string, Link>();
  readonly #pending = new Set<Call>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #counters = new Map<string, MessageCounters>();

  /** Group number of each node while partitioned; null when there is no partition. */
  #groups: Map<NodeId, number> | null = null;
  readonly #isolated = new Set<NodeId>();
  readonly #blocked = new Set<string>();
  #closed = false;

  /** Creates a network. Throws a RangeError on invalid fault settings. */
  constructor(options: MemoryNetworkOptions = {}) {
    this.#seed = (options.seed ?? 1) >>> 0;
    this.#copy = options.copyMessages ?? false;
    this.setFaults(options);
  }

  // -------------------------------------------------------------------------------------------
  // Nodes

  /** Delivers requests for `address` to `handler`. Throws if the address is already taken. */
  register(address: string, handler: RpcHandler): void {
    if (this.#handlers.has(address)) {
      throw new Error(`MemoryNetwork.register: ${address} is already registered`);
    }
    this.#handlers.set(address, handler);
  }

  /**
   * Stops delivering to `address` (the node is down): new requests to it are refused, requests
   * in flight are lost. Returns whether it was registered.
   */
  unregister(address: string): boolean {
    return this.#handlers.delete(address);
  }

  /** The Network a node with id `from` sends through. */
  endpoint(from: NodeId): Network {
    return {
      send: (to, address, message, timeoutMs) =>
        this.#send(from, to, address, message, timeoutMs) as Promise<ResponseMessage | null>,
      sendSnapshotChunk: (to, address, chunk, timeoutMs) =>
        this.#send(from, to, address, chunk, timeoutMs) as Promise<SnapshotChunkResponse>,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Faults

  /**
   * Changes the random faults given (the others keep their value). Throws a RangeError if a rate
   * is outside [0, 1] or the delay range is not 0 <= min <= max (finite).
   */
  setFaults(faults: NetworkFaults): void {
    const rate = (name: string, value: number | undefined, current: number): number => {
      if (value === undefined) return current;
      if (!(value >= 0 && value <= 1)) {
        throw new RangeError(`MemoryNetwork: ${name} ${value} is outside [0, 1]`);
      }
      return value;
    };
    const dropRate = rate("dropRate", faults.dropRate, this.#dropRate);
    const duplicateRate = rate("duplicateRate", faults.duplicateRate, this.#duplicateRate);
    let min = this.#delayMin;
    let max = this.#delayMax;
    if (faults.delayMs !== undefined) {
      [min, max] = faults.delayMs;
      if (!(min >= 0 && min <= max && Number.isFinite(max))) {
        throw new RangeError(`MemoryNetwork: delayMs [${min}, ${max}] is not a range of ms`);
      }
    }
    this.#dropRate = dropRate;
    this.#duplicateRate = duplicateRate;
    this.#delayMin = min;
    this.#delayMax = max;
    this.#reorder = faults.reorder ?? this.#reorder;
  }

  /** The random faults in force. */
  get faults(): Required<NetworkFaults> {
    return {
      dropRate: this.#dropRate,
      duplicateRate: this.#duplicateRate,
      delayMs: [this.#delayMin, this.#delayMax],
      reorder: this.#reorder,
    };
  }

  /**
   * Drops every message for which `filter` returns false (requests, and responses other than
   * null ones), on top of the random faults; null removes the filter.
   */
  setFilter(filter: MessageFilter | null): void {
    this.#filter = filter;
  }

  /**
   * Drops every snapshot chunk for which `filter` returns false, on top of the random faults
   * (the sender's call then times out); null removes it. Answers to chunks are not filtered.
   */
  setChunkFilter(filter: ChunkFilter | null): void {
    this.#chunkFilter = filter;
  }

  /**
   * Splits the cluster: nodes talk only within their group. A node named in no group is cut off
   * from every other node. Replaces an earlier partition (isolations and blocks stay). Throws if
   * a node is named in two groups.
   */
  partition(groups: readonly (readonly NodeId[])[]): void {
    const map = new Map<NodeId, number>();
    groups.forEach((group, n) => {
      for (const id of group) {
        if (map.has(id)) throw new Error(`MemoryNetwork.partition: ${id} is in two groups`);
        map.set(id, n);
      }
    });
    this.#groups = map;
  }

  /** Cuts `id` off from every other node, both ways, until `heal()`. */
  isolate(id: NodeId): void {
    this.#isolated.add(id);
  }

  /** Loses every message from `from` to `to` (requests and responses), one way only. */
  block(from: NodeId, to: NodeId): void {
    this.#blocked.add(linkKey(from, to));
  }

  /** Undoes `block(from, to)`. */
  unblock(from: NodeId, to: NodeId): void {
    this.#blocked.delete(linkKey(from, to));
  }

  /** Removes every partition, isolation and block (random faults and the filter stay). */
  heal(): void {
    this.#groups = null;
    this.#isolated.clear();
    this.#blocked.clear();
  }

  /** Whether a message from `from` to `to` gets through partitions, isolations and blocks. */
  canReach(from: NodeId, to: NodeId): boolean {
    if (from === to) return true;
    if (this.#isolated.has(from) || this.#isolated.has(to)) return false;
    if (this.#blocked.size > 0 && this.#blocked.has(linkKey(from, to))) return false;
    if (this.#groups !== null) {
      const group = this.#groups.get(from);
      if (group === undefined || group !== this.#groups.get(to)) return false;
    }
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Observation and teardown

  /** The counters of one message type (zeros if none was seen); a live object. */
  counters(type: CounterType): Readonly<MessageCounters> {
    return this.#counter(type);
  }

  /** A copy of every message type's counters. */
  allCounters(): Record<string, MessageCounters> {
    const all: Record<string, MessageCounters> = {};
    for (const [type, c] of this.#counters) all[type] = { ...c };
    return all;
  }

  /** The sum of every type's counters. */
  totalCounters(): MessageCounters {
    const total = newCounters();
    for (const c of this.#counters.values()) {
      total.sent += c.sent;
      total.delivered += c.delivered;
      total.dropped += c.dropped;
      total.blocked += c.blocked;
      total.duplicated += c.duplicated;
      total.timedOut += c.timedOut;
    }
    return total;
  }

  /** Sets every counter back to zero. */
  resetCounters(): void {
    this.#counters.clear();
  }

  /** Number of sends still waiting for their answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Shuts the network down: every pending send rejects with kind "closed", every timer is
   * cleared, nothing more is delivered, and later sends reject with kind "closed".
   */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const link of this.#links.values()) {
      if (link.timer !== undefined) clearTimeout(link.timer);
    }
    this.#links.clear();
    for (const call of [...this.#pending]) {
      this.#reject(call, new NetworkError("closed", "the network was closed"));
    }
  }

  // -------------------------------------------------------------------------------------------

  #send(
    from: NodeId,
    to: NodeId,
    address: string,
    message: RequestMessage | SnapshotChunk,
    timeoutMs: number,
  ): Promise<Answer> {
    if (this.#closed) {
      return Promise.reject(new NetworkError("closed", "the network is closed"));
    }
    if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
      return Promise.reject(
        new RangeError(`send: timeoutMs ${timeoutMs} is not a positive number`),
      );
    }
    const counters = this.#counter(typeOf(message));
    counters.sent++;
    return new Promise((resolve, reject) => {
      const call: Call = {
        from,
        to,
        address,
        message: this.#copy ? structuredClone(message) : message,
        resolve,
        reject,
        timer: undefined,
        settled: false,
      };
      this.#pending.add(call);
      if (!this.#handlers.has(address)) {
        counters.blocked++;
        call.timer = setTimeout(() => {
          this.#reject(call, new NetworkError("unreachable", `nobody at ${address} (${to})`));
        }, 0);
        return;
      }
      this.#expireAt(call, timeoutMs, () => {
        counters.timedOut++;
        this.#reject(
          call,
          new NetworkError(
            "timeout",
            `${typeOf(message)} from ${from} to ${to} got no answer within ${timeoutMs} ms`,
          ),
        );
      });

      if (!this.canReach(from, to)) {
        counters.blocked++;
        return;
      }
      const kept =
        "snapshot" in message
          ? this.#chunkFilter === null || this.#chunkFilter(from, to, message)
          : this.#filter === null || this.#filter(from, to, message);
      if (!kept) {
        counters.dropped++;
        return;
      }
      const link = this.#link(from, to);
      if (this.#dropRate > 0 && link.requestDrop.next() < this.#dropRate) {
        counters.dropped++;
        return;
      }
      this.#schedule(link, () => this.#deliver(call, call.message, true));
      if (this.#duplicateRate > 0 && link.duplicate.next() < this.#duplicateRate) {
        counters.duplicated++;
        const copy = this.#copy ? structuredClone(message) : message;
        this.#schedule(link, () => this.#deliver(call, copy, false));
      }
    });
  }

  /** Runs `run` after the link's delay, keeping the link's FIFO order unless reordering. */
  #schedule(link: Link, run: () => void): void {
    const queue = link.queue;
    if (this.#delayMax <= 0) {
      if (queue.length === 0) {
        resolvedPromise.then(run);
        return;
      }
      // Behind requests still delayed by an earlier setting: keep their order.
      queue.push({ due: link.lastDue, run });
      return;
    }
    const delay = this.#delayMin + (this.#delayMax - this.#delayMin) * link.requestDelay.next();
    if (this.#reorder) {
      this.#later(delay, run);
      return;
    }
    const due = Math.max(performance.now() + delay, link.lastDue);
    link.lastDue = due;
    queue.push({ due, run });
    if (link.timer === undefined) this.#arm(link);
  }

  #arm(link: Link): void {
    const head = link.queue[0];
    if (head === undefined) return;
    link.timer = setTimeout(
      () => {
        link.timer = undefined;
        // The timer was armed for the head: run it, then everything else already due.
        const now = performance.now();
        let next = link.queue.shift();
        while (next !== undefined) {
          next.run();
          const following = link.queue[0];
          if (following === undefined || following.due > now) break;
          next = link.queue.shift();
        }
        if (link.timer === undefined && !this.#closed) this.#arm(link);
      },
      Math.max(0, head.due - performance.now()),
    );
  }

  #later(delay: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, delay);
    this.#timers.add(timer);
  }

  #deliver(call: Call, message: RequestMessage | SnapshotChunk, primary: boolean): void {
    if (this.#closed) return;
    const counters = this.#counter(typeOf(message));
    const handler = this.#handlers.get(call.address);
    if (handler === undefined || !this.canReach(call.from, call.to)) {
      counters.blocked++;
      return;
    }
    counters.delivered++;
    let answer: Promise<Answer>;
    try {
      answer = Promise.resolve(
        "snapshot" in message ? handler.handleSnapshotChunk(message) : handler.handle(message),
      );
    } catch (error) {
      answer = Promise.reject(error);
    }
    if (!primary) {
      answer.then(ignore, ignore);
      return;
    }
    answer.then(
      (response) => this.#respond(call, response),
      (error) => this.#reject(call, error),
    );
  }

  #respond(call: Call, response: Answer): void {
    if (this.#closed) return;
    const counters = response === null ? null : this.#counter(answerType(response));
    if (counters !== null) counters.sent++;
    if (call.settled) return; // the caller gave up: nobody is listening
    if (!this.canReach(call.to, call.from)) {
      if (counters !== null) counters.blocked++;
      return;
    }
    if (
      response !== null &&
      "type" in response &&
      this.#filter !== null &&
      !this.#filter(call.to, call.from, response)
    ) {
      (counters as MessageCounters).dropped++;
      return;
    }
    const link = this.#link(call.to, call.from);
    if (this.#dropRate > 0 && link.responseDrop.next() < this.#dropRate) {
      if (counters !== null) counters.dropped++;
      return;
    }
    const answer = this.#copy && response !== null ? structuredClone(response) : response;
    const arrive = () => {
      if (this.#resolve(call, answer) && counters !== null) counters.delivered++;
    };
    if (this.#delayMax <= 0) {
      arrive();
      return;
    }
    this.#later(
      this.#delayMin + (this.#delayMax - this.#delayMin) * link.responseDelay.next(),
      arrive,
    );
  }

  #resolve(call: Call, response: Answer): boolean {
    if (!this.#finish(call)) return false;
    call.resolve(response);
    return true;
  }

  #reject(call: Call, error: unknown): void {
    if (this.#finish(call)) call.reject(error);
  }

  /**
   * Calls with the same timeout expire in the order they were made: one FIFO and one timer per
   * timeout value, instead of a setTimeout and a clearTimeout per call.
   */
  readonly #expiries = new Map<
    number,
    { queue: { call: Call; due: number; expire: () => void }[]; head: number; timer: boolean }
  >();

  #expireAt(call: Call, timeoutMs: number, expire: () => void): void {
    let fifo = this.#expiries.get(timeoutMs);
    if (fifo === undefined) {
      fifo = { queue: [], head: 0, timer: false };
      this.#expiries.set(timeoutMs, fifo);
    }
    // Calls mostly settle in order: drop settled ones from the head so the FIFO stays short.
    while (fifo.head < fifo.queue.length && fifo.queue[fifo.head]?.call.settled) fifo.head++;
    if (fifo.head === fifo.queue.length) {
      fifo.queue = [];
      fifo.head = 0;
    } else if (fifo.head > 1024 && fifo.head * 2 > fifo.queue.length) {
      fifo.queue = fifo.queue.slice(fifo.head);
      fifo.head = 0;
    }
    fifo.queue.push({ call, due: performance.now() + timeoutMs, expire });
    if (!fifo.timer) this.#armExpiry(fifo, timeoutMs);
  }

  #armExpiry(
    fifo: {
      queue: { call: Call; due: number; expire: () => void }[];
      head: number;
      timer: boolean;
    },
    delay: number,
  ): void {
    fifo.timer = true;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fifo.timer = false;
      const now = performance.now();
      while (fifo.head < fifo.queue.length) {
        const item = fifo.queue[fifo.head] as { call: Call; due: number; expire: () => void };
        if (!item.call.settled && item.due > now) break;
        fifo.head++;
        if (!item.call.settled) item.expire();
      }
      if (fifo.head > 1024 && fifo.head * 2 > fifo.queue.length) {
        fifo.queue = fifo.queue.slice(fifo.head);
        fifo.head = 0;
      }
      const next = fifo.queue[fifo.head];
      if (next !== undefined && !this.#closed) this.#armExpiry(fifo, Math.max(0, next.due - now));
    }, delay);
    this.#timers.add(timer);
  }

  #finish(call: Call): boolean {
    if (call.settled) return false;
    call.settled = true;
    if (call.timer !== undefined) clearTimeout(call.timer);
    this.#pending.delete(call);
    return true;
  }

  #link(from: NodeId, to: NodeId): Link {
    const key = linkKey(from, to);
    let link = this.#links.get(key);
    if (link === undefined) {
      const stream = (purpose: string) => new Prng(hashSeed(this.#seed, `${purpose}\u0000${key}`));
      link = {
        queue: [],
        timer: undefined,
        lastDue: 0,
        requestDrop: stream("requestDrop"),
        responseDrop: stream("responseDrop"),
        duplicate: stream("duplicate"),
        requestDelay: stream("requestDelay"),
        responseDelay: stream("responseDelay"),
      };
      this.#links.set(key, link);
    }
    return link;
  }

  #counter(type: string): MessageCounters {
    let c = this.#counters.get(type);
    if (c === undefined) {
      c = newCounters();
      this.#counters.set(type, c);
    }
    return c;
  }
}

function ignore(): void {}

function typeOf(request: RequestMessage | SnapshotChunk): CounterType {
  return "snapshot" in request ? "snapshotChunk" : request.type;
}

function answerType(answer: ResponseMessage | SnapshotChunkResponse): CounterType {
  return "type" in answer ? answer.type : "snapshotChunkResponse";
}

/** `then` on it queues a microtask: cheaper than queueMicrotask on Node (no AsyncResource). */
const resolvedPromise = Promise.resolve();

function newCounters(): MessageCounters {
  return { sent: 0, delivered: 0, dropped: 0, blocked: 0, duplicated: 0, timedOut: 0 };
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}

/** FNV-1a of `key` mixed with `seed`, finished with a murmur3 avalanche. */
function hashSeed(seed: number, key: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: a small, fast, seeded PRNG with a 32-bit state. */
class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A value in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
