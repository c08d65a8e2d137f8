/**
 * Snapshot streaming (§7, thesis §5.3): the leader's senders, one per follower, and the
 * follower's receiver, which writes chunks aside in the SnapshotStore and steps the
 * InstallSnapshot message into the core once the whole snapshot is durable.
 *
 * The SnapshotStore holds one pending snapshot; `SnapshotSlot` lets one writer use it at a time
 * (a local build, or a transfer from the leader) so neither discards the other's copy midway.
 */
import type {
  InstallSnapshotRequest,
  InstallSnapshotResponse,
  Message,
  NodeId,
  Role,
} from "../core/types.ts";
import type { Network, SnapshotChunk, SnapshotChunkResponse } from "../net/network.ts";
import type {
  SnapshotMeta,
  SnapshotStore,
  SnapshotWriter,
  StoredSnapshot,
} from "../storage/snapshot-store.ts";

const EMPTY: Uint8Array = new Uint8Array(0);

/** Mutual exclusion over the store's pending snapshot, in arrival order. */
export class SnapshotSlot {
  #tail: Promise<void> = Promise.resolve();
  /** Bumped by every `begin`: a writer obtained before a later begin is superseded. */
  generation = 0;

  /** Resolves with the function that releases the slot once every earlier holder released it. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const turn = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => released);
    return turn;
  }

  /**
   * A writer for `meta` that starts at offset 0: a pending copy with the same metadata may hold
   * other bytes (another leader's encoding of the same state), so it is never resumed here.
   */
  async beginFresh(store: SnapshotStore, meta: SnapshotMeta): Promise<SnapshotWriter> {
    this.generation++;
    let writer = await store.begin(meta);
    if (writer.offset > 0) {
      await writer.abort();
      writer = await store.begin(meta);
    }
    return writer;
  }
}

/** What the transfers need from the driver. */
export interface TransferHost {
  readonly id: NodeId;
  readonly store: SnapshotStore;
  readonly network: Network;
  readonly slot: SnapshotSlot;
  /** Largest data per chunk sent. */
  readonly chunkBytes: number;
  /** Chunks in flight to one follower at most. */
  readonly window: number;
  readonly rpcTimeoutMs: number;
  /** Timeout of the last chunk, answered only once the follower has installed the snapshot. */
  readonly installTimeoutMs: number;
  /** Backoff after a failed chunk: doubles from min to max. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** Consecutive failed chunks after which a stream gives up (reports failure). */
  readonly maxAttempts: number;
  term(): number;
  role(): Role;
  stopped(): boolean;
  addressOf(peer: NodeId): string | null;
  /** Steps an input (snapshotSent) into the core. */
  step(input: { type: "snapshotSent"; peer: NodeId; index: number; success: boolean }): void;
  /** Steps a message; for installSnapshot, resolves with the core's answer once it may leave. */
  stepMessage(message: Message): Promise<Message | null>;
  /** A storage failure: the node stops. */
  fail(what: string, error: unknown): void;
  debug(message: string, fields: Record<string, unknown>): void;
}

interface Stream {
  cancelled: boolean;
  wake: (() => void) | null;
}

/** A chunk on its way: its range, and its answer (or the error of its send). */
interface Sent {
  readonly offset: number;
  readonly end: number;
  readonly done: boolean;
  readonly answer: Promise<{ response: SnapshotChunkResponse } | { error: unknown }>;
}

/** The leader's side: one stream per follower, restarted or cancelled by the core's effects. */
export class SnapshotSenders {
  readonly #host: TransferHost;
  readonly #streams = new Map<NodeId, Stream>();
  /** Every stream still running, cancelled ones included until they notice. */
  readonly #running = new Set<Promise<void>>();

  constructor(host: TransferHost) {
    this.#host = host;
  }

  /** Streams snapshot (index, term) to `peer`, replacing a stream already running to it. */
  start(peer: NodeId, index: number, term: number): void {
    this.cancel(peer);
    const stream: Stream = { cancelled: false, wake: null };
    this.#streams.set(peer, stream);
    const running = this.#run(peer, index, term, stream);
    this.#running.add(running);
    void running.then(() => this.#running.delete(running));
  }

  /** Resolves once every stream started so far has ended (after a cancel: once it noticed). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#running]);
  }

  /** Aborts the stream to `peer`, if any; no report is due for it. */
  cancel(peer: NodeId): void {
    const stream = this.#streams.get(peer);
    if (!stream) return;
    stream.cancelled = true;
    stream.wake?.();
    this.#streams.delete(peer);
  }

  cancelAll(): void {
    for (const peer of [...this.#streams.keys()]) this.cancel(peer);
  }

  /** Peers a stream runs to (for tests and metrics). */
  get active(): NodeId[] {
    return [...this.#streams.keys()];
  }

  async #run(peer: NodeId, index: number, term: number, stream: Stream): Promise<void> {
    let success = false;
    try {
      success = await this.#stream(peer, index, term, stream);
    } catch (error) {
      this.#host.debug("snapshot stream failed", { peer, index, error: String(error) });
    }
    if (stream.cancelled || this.#host.stopped()) return;
    this.#streams.delete(peer);
    this.#host.step({ type: "snapshotSent", peer, index, success });
  }

  /**
   * Sends the snapshot in chunks, `window` of them in flight, each answered with the follower's
   * durable offset: after a failure the stream resumes from the last offset the follower
   * acknowledged. It opens with an empty chunk, which learns the offset of a copy the follower
   * kept from an earlier stream of this leader.
   */
  async #stream(peer: NodeId, index: number, term: number, stream: Stream): Promise<boolean> {
    const host = this.#host;
    const leaderTerm = host.term();
    const current = await host.store.current();
    if (current === null || current.meta.index !== index || current.meta.term !== term) {
      return false;
    }
    const { meta, size } = current;
    const request: InstallSnapshotRequest = {
      type: "installSnapshot",
      term: leaderTerm,
      from: host.id,
      to: peer,
      lastIncludedIndex: index,
      lastIncludedTerm: term,
      membership: meta.membership,
    };
    const reader = new ChunkReader(host.store, current, host.chunkBytes);
    const send = (offset: number, data: Uint8Array): Sent => {
      const done = offset + data.length === size;
      const chunk: SnapshotChunk = { snapshot: request, offset, data, done };
      const address = host.addressOf(peer) ?? "";
      const timeoutMs = done ? host.installTimeoutMs : host.rpcTimeoutMs;
      const answer = host.network.sendSnapshotChunk(peer, address, chunk, timeoutMs).then(
        (response) => ({ response }),
        (error: unknown) => ({ error }),
      );
      return { offset, end: offset + data.length, done, answer };
    };
    try {
      /** Chunks sent and not yet answered, in offset order. */
      let inflight: Sent[] = [];
      let next = 0;
      let acked = 0;
      let opened = false;
      let failures = 0;
      for (;;) {
        if (stream.cancelled || host.role() !== "leader" || host.term() !== leaderTerm) {
          return false;
        }
        if (!opened) {
          if (inflight.length === 0) inflight.push(send(0, EMPTY));
        } else {
          // Up to `window` chunks in flight: the follower writes one while the next travels.
          while (inflight.length < host.window && !inflight[inflight.length - 1]?.done) {
            const data = await reader.at(next);
            if (stream.cancelled) return false;
            inflight.push(send(next, data));
            next += data.length;
          }
        }
        const head = inflight.shift() as Sent;
        const result = await head.answer;
        if (stream.cancelled) return false;
        if ("error" in result) {
          failures++;
          const error = String(result.error);
          host.debug("snapshot chunk failed", { peer, offset: head.offset, failures, error });
          // Later chunks would land beyond what the follower holds: resend from the last ack.
          inflight = [];
          next = acked;
          if (failures >= host.maxAttempts) return false;
          await this.#sleep(stream, Math.min(host.retryMaxMs, host.retryMinMs * 2 ** failures));
          continue;
        }
        failures = 0;
        opened = true;
        const { response } = result;
        if (response.term > leaderTerm) {
          // A newer term (§5.1): the core steps down.
          await host.stepMessage({
            type: "installSnapshotResponse",
            term: response.term,
            from: peer,
            to: host.id,
            success: false,
            matchIndex: 0,
          });
          return false;
        }
        if (response.answer !== null) {
          await host.stepMessage(response.answer);
          return response.answer.success;
        }
        if (!Number.isSafeInteger(response.offset) || response.offset < 0) return false;
        if (response.offset > size) return false; // not this snapshot's copy
        acked = response.offset;
        if (acked !== head.end) {
          // The follower holds another amount (a copy kept from before, or lost): go on from it.
          inflight = [];
          next = acked;
        }
      }
    } finally {
      await reader.close();
    }
  }

  #sleep(stream: Stream, ms: number): Promise<void> {
    if (stream.cancelled) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        stream.wake = null;
        resolve();
      }
      stream.wake = done;
    });
  }
}

/**
 * Reads a stored snapshot as chunks of up to `chunkBytes` at any offset, keeping one store
 * iterator open while the offsets follow each other.
 */
class ChunkReader {
  readonly #store: SnapshotStore;
  readonly #snapshot: StoredSnapshot;
  readonly #chunkBytes: number;
  #iterator: AsyncIterator<Uint8Array> | null = null;
  /** Offset of the iterator's next byte (leftover first). */
  #position = -1;
  #leftover: Uint8Array = EMPTY;

  constructor(store: SnapshotStore, snapshot: StoredSnapshot, chunkBytes: number) {
    this.#store = store;
    this.#snapshot = snapshot;
    this.#chunkBytes = chunkBytes;
  }

  /** The bytes from `offset`, at most chunkBytes of them (empty at the end). */
  async at(offset: number): Promise<Uint8Array> {
    const want = Math.min(this.#chunkBytes, this.#snapshot.size - offset);
    if (want <= 0) return EMPTY;
    if (this.#iterator === null || this.#position !== offset) {
      await this.close();
      this.#iterator = this.#store.read(this.#snapshot.meta, offset)[Symbol.asyncIterator]();
      this.#position = offset;
      this.#leftover = EMPTY;
    }
    const out = new Uint8Array(want);
    let filled = 0;
    while (filled < want) {
      if (this.#leftover.length === 0) {
        const next = await this.#iterator.next();
        if (next.done) throw new Error(`snapshot ${this.#snapshot.meta.index} ended early`);
        this.#leftover = next.value;
        continue;
      }
      const take = Math.min(want - filled, this.#leftover.length);
      out.set(this.#leftover.subarray(0, take), filled);
      this.#leftover = this.#leftover.subarray(take);
      filled += take;
    }
    this.#position = offset + want;
    return out;
  }

  async close(): Promise<void> {
    const iterator = this.#iterator;
    this.#iterator = null;
    this.#position = -1;
    this.#leftover = EMPTY;
    if (iterator?.return) await iterator.return();
  }
}

/** A transfer being received: who sends it, and its copy aside. */
interface Receiving {
  readonly key: string;
  readonly meta: SnapshotMeta;
  readonly writer: SnapshotWriter;
  /** The slot generation of `writer`'s begin: a later begin superseded it. */
  readonly generation: number;
}

/** The whole snapshot is aside and its InstallSnapshot was stepped: the install may commit it. */
export interface ReceivedSnapshot {
  readonly meta: SnapshotMeta;
  readonly writer: SnapshotWriter;
}

/** The follower's side: writes chunks aside and steps the snapshot once it is whole. */
export class SnapshotReceiver {
  readonly #host: TransferHost;
  #receiving: Receiving | null = null;
  /** Set while a complete snapshot is stepped into the core: what the install effect commits. */
  #complete: ReceivedSnapshot | null = null;
  /** The last transfer installed, so a retried last chunk (its answer was lost) is answered. */
  #installed: { readonly key: string; readonly size: number } | null = null;

  constructor(host: TransferHost) {
    this.#host = host;
  }

  /** The complete snapshot (index, term) awaiting its install effect, or null. */
  take(index: number, term: number): ReceivedSnapshot | null {
    const complete = this.#complete;
    if (complete === null || complete.meta.index !== index || complete.meta.term !== term) {
      return null;
    }
    this.#complete = null;
    return complete;
  }

  /**
   * Handles one chunk (see RpcHandler.handleSnapshotChunk). A chunk of an older term than the
   * core's is answered with that term and not written (§5.1). A copy is resumed only for the
   * same sender, term and snapshot: another leader's snapshot of the same index may differ in
   * its bytes.
   */
  async handle(chunk: SnapshotChunk): Promise<SnapshotChunkResponse> {
    const host = this.#host;
    const request = chunk.snapshot;
    const answer = (offset: number, reply: InstallSnapshotResponse | null = null) => ({
      term: host.term(),
      from: host.id,
      to: request.from,
      offset,
      answer: reply,
    });
    if (this.#stale(request)) return answer(0);
    const key = transferKey(request);
    const installed = this.#installed;
    if (installed !== null && installed.key === key) {
      // Already installed: answer again (the core acknowledges a snapshot it covers).
      if (!chunk.done) return answer(installed.size);
      return answer(installed.size, await this.#install(request));
    }
    const release = await host.slot.acquire();
    try {
      if (host.stopped()) throw new Error("the node has shut down");
      if (this.#stale(request)) return answer(0);
      let receiving = this.#receiving;
      if (
        receiving === null ||
        receiving.key !== key ||
        receiving.generation !== host.slot.generation
      ) {
        this.#receiving = null;
        const meta: SnapshotMeta = {
          index: request.lastIncludedIndex,
          term: request.lastIncludedTerm,
          membership: request.membership,
        };
        const writer = await this.#storage("begin", () => host.slot.beginFresh(host.store, meta));
        receiving = { key, meta, writer, generation: host.slot.generation };
        this.#receiving = receiving;
      }
      const { writer } = receiving;
      if (chunk.offset > writer.offset) return answer(writer.offset); // a gap: resend from here
      if (chunk.data.length > 0) {
        await this.#storage("write", () => writer.write(chunk.data, chunk.offset));
      }
      const end = chunk.offset + chunk.data.length;
      if (!chunk.done || writer.offset !== end) return answer(writer.offset);
      // Whole and durable aside: the core decides; the install (if any) commits the copy.
      this.#receiving = null;
      this.#complete = { meta: receiving.meta, writer };
      const reply = await this.#install(request);
      if (this.#complete === null) this.#installed = { key, size: end };
      this.#complete = null;
      return answer(writer.offset, reply);
    } finally {
      release();
    }
  }

  #stale(request: InstallSnapshotRequest): boolean {
    const term = this.#host.term();
    return request.term < term || (request.term === term && this.#host.role() === "leader");
  }

  async #install(request: InstallSnapshotRequest): Promise<InstallSnapshotResponse | null> {
    const reply = await this.#host.stepMessage(request);
    return reply?.type === "installSnapshotResponse" ? reply : null;
  }

  async #storage<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      this.#host.fail(`snapshot store ${what} failed`, error);
      throw error;
    }
  }
}

function transferKey(request: InstallSnapshotRequest): string {
  return JSON.stringify([
    request.from,
    request.term,
    request.lastIncludedIndex,
    request.lastIncludedTerm,
  ]);
}
