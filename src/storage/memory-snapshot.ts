/**
 * An in-memory SnapshotStore for tests and in-process use. Like MemoryLogStore, its data survives
 * `close()` (a node restarted on the same instance finds it) and `clone()` gives what a crashed
 * node would find: the current snapshot and the pending one, as far as it was written.
 */
import {
  checkSnapshotMeta,
  chunkFrom,
  DEFAULT_SNAPSHOT_CHUNK_BYTES,
  type SnapshotMeta,
  type SnapshotStore,
  type SnapshotWriter,
  type StoredSnapshot,
  sameSnapshot,
} from "./snapshot-store.ts";

/** Options of a {@link MemorySnapshotStore}. */
export interface MemorySnapshotStoreOptions {
  /** Largest chunk kept and yielded by `read` (default 64 KiB). */
  readonly chunkBytes?: number;
}

/** One snapshot's data: chunks of at most chunkBytes, in order. */
interface Held {
  readonly meta: SnapshotMeta;
  readonly chunks: Uint8Array[];
  size: number;
  /** Bumped whenever a begin supersedes the writer of a pending snapshot. */
  generation: number;
}

/**
 * A SnapshotStore held in memory. Every write applies when called (all or nothing), so the
 * ordering and resume behaviour match the SQLite store's; the whole snapshot is in memory by
 * nature, but `read` still yields bounded chunks.
 */
export class MemorySnapshotStore implements SnapshotStore {
  readonly #chunkBytes: number;
  #current: Held | null = null;
  #pending: Held | null = null;
  #closed = false;

  /** Throws a RangeError unless `chunkBytes` is a positive integer. */
  constructor(options: MemorySnapshotStoreOptions = {}) {
    const chunkBytes = options.chunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
      throw new RangeError(`MemorySnapshotStore: chunkBytes ${chunkBytes} must be positive`);
    }
    this.#chunkBytes = chunkBytes;
  }

  /** The current snapshot, or null. Also reopens a closed store (a node restarting on it). */
  async current(): Promise<StoredSnapshot | null> {
    this.#closed = false;
    const held = this.#current;
    return held === null ? null : { meta: held.meta, size: held.size };
  }

  /**
   * Yields the current snapshot's chunks from `fromOffset`. Rejects when the store is closed,
   * there is no current snapshot (or not the one named by `meta`), `fromOffset` is beyond its
   * size, or a newer snapshot was committed meanwhile.
   */
  async *read(meta?: SnapshotMeta, fromOffset = 0): AsyncIterable<Uint8Array> {
    this.#checkOpen("read");
    const held = this.#current;
    if (held === null) throw new Error("MemorySnapshotStore.read: there is no snapshot");
    if (meta !== undefined && (meta.index !== held.meta.index || meta.term !== held.meta.term)) {
      throw new Error(
        `MemorySnapshotStore.read: the current snapshot is ${held.meta.index}/${held.meta.term}, not ${meta.index}/${meta.term}`,
      );
    }
    if (!Number.isSafeInteger(fromOffset) || fromOffset < 0 || fromOffset > held.size) {
      throw new RangeError(
        `MemorySnapshotStore.read: offset ${fromOffset} outside 0..${held.size}`,
      );
    }
    let position = 0;
    for (const chunk of held.chunks) {
      if (this.#current !== held) {
        throw new Error("MemorySnapshotStore.read: a newer snapshot replaced this one");
      }
      const end = position + chunk.length;
      if (end > fromOffset) yield chunk.subarray(Math.max(0, fromOffset - position));
      position = end;
    }
  }

  /** Starts (or resumes) a pending snapshot; see {@link SnapshotStore.begin}. */
  async begin(meta: SnapshotMeta): Promise<SnapshotWriter> {
    this.#checkOpen("begin");
    checkSnapshotMeta(meta);
    let held = this.#pending;
    if (held !== null && sameSnapshot(held.meta, meta)) held.generation++;
    else {
      held = { meta, chunks: [], size: 0, generation: 0 };
      this.#pending = held;
    }
    return this.#writer(held, held.generation);
  }

  /** Marks the store closed until the next `current()`; the data is kept. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * An independent store with this one's data (what a crashed node finds on restart): the
   * current snapshot and the pending one as far as written. Chunks are shared, not copied: they
   * are never modified.
   */
  clone(): MemorySnapshotStore {
    const copy = new MemorySnapshotStore({ chunkBytes: this.#chunkBytes });
    const cloneHeld = (held: Held | null): Held | null =>
      held === null ? null : { ...held, chunks: held.chunks.slice(), generation: 0 };
    copy.#current = cloneHeld(this.#current);
    copy.#pending = cloneHeld(this.#pending);
    return copy;
  }

  /** Bytes held by the current and the pending snapshot (for tests). */
  get storedBytes(): number {
    return (this.#current?.size ?? 0) + (this.#pending?.size ?? 0);
  }

  #writer(held: Held, generation: number): SnapshotWriter {
    const store = this;
    const check = (method: string) => {
      store.#checkOpen(`writer.${method}`);
      if (store.#pending !== held || held.generation !== generation) {
        throw new Error(`MemorySnapshotStore writer.${method}: the writer was superseded or ended`);
      }
    };
    return {
      meta: held.meta,
      get offset() {
        return held.size;
      },
      async write(chunk: Uint8Array, offset?: number): Promise<void> {
        check("write");
        const rest = chunkFrom(chunk, offset ?? held.size, held.size);
        for (let at = 0; at < rest.length; at += store.#chunkBytes) {
          held.chunks.push(rest.slice(at, at + store.#chunkBytes));
        }
        held.size += rest.length;
      },
      async commit(): Promise<void> {
        check("commit");
        store.#current = held;
        store.#pending = null;
      },
      async abort(): Promise<void> {
        check("abort");
        store.#pending = null;
      },
    };
  }

  #checkOpen(method: string): void {
    if (this.#closed) throw new Error(`MemorySnapshotStore.${method}: the store is closed`);
  }
}
