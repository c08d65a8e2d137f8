/**
 * A SnapshotStore in the same SQLite file (and on the same connection) as the SqliteLogStore, so
 * it shares its WAL, its `synchronous` setting and its exclusive lock. Get it as
 * `SqliteLogStore.snapshots`. Tables (created with the log's schema, version 2):
 *
 *   snapshot       (id INTEGER PRIMARY KEY, current, idx, term, membership, size)
 *   snapshot_chunk (snapshot_id, pos, data)   PRIMARY KEY (snapshot_id, pos)
 *
 * `current` is 1 for the current snapshot (at most one row) and 0 for a pending one (at most
 * one). `size` is the bytes written so far. A chunk row holds the bytes at offset `pos` of its
 * snapshot (at most `chunkBytes` of them), so rows are in order by `pos` and a read may start
 * at any offset with one indexed lookup.
 */
import type { Membership } from "../core/types.ts";
import {
  checkSnapshotMeta,
  chunkFrom,
  DEFAULT_SNAPSHOT_CHUNK_BYTES,
  membershipJson,
  type SnapshotMeta,
  type SnapshotStore,
  type SnapshotWriter,
  type StoredSnapshot,
  sameSnapshot,
} from "./snapshot-store.ts";
import type { SqliteDatabase, SqliteStatement } from "./sqlite.ts";
import { inTransaction } from "./sqlite-transaction.ts";

/** The snapshot tables, created by the SqliteLogStore's schema (and its migration from v1). */
export const snapshotSchema: readonly string[] = [
  `CREATE TABLE snapshot (
    id INTEGER PRIMARY KEY,
    current INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    term INTEGER NOT NULL,
    membership TEXT NOT NULL,
    size INTEGER NOT NULL
  )`,
  `CREATE TABLE snapshot_chunk (
    snapshot_id INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (snapshot_id, pos)
  )`,
];

/** Options of a {@link SqliteSnapshotStore}. */
export interface SqliteSnapshotStoreOptions {
  /** Largest chunk row written and yielded by `read` (default 64 KiB). */
  readonly chunkBytes?: number;
  /** True once the connection's owner (the SqliteLogStore) is closed. */
  readonly isClosed?: () => boolean;
  /** The connection owner's failure (null while it has none): calls then reject with it. */
  readonly failure?: () => unknown;
  /** Called when a transaction of this store fails, so the owner fails too. */
  readonly onFailure?: (error: unknown) => void;
  /** Resolves once the commit just made is durable (the owner's WAL sync; default: at once). */
  readonly afterCommit?: () => Promise<void>;
}

interface SnapshotRow {
  readonly id: number;
  readonly idx: number;
  readonly term: number;
  readonly membership: string;
  readonly size: number;
}

interface Statements {
  readonly begin: SqliteStatement;
  readonly commit: SqliteStatement;
  readonly rollback: SqliteStatement;
  readonly selectByState: SqliteStatement;
  readonly insertSnapshot: SqliteStatement;
  readonly deleteSnapshot: SqliteStatement;
  readonly deleteChunks: SqliteStatement;
  readonly insertChunk: SqliteStatement;
  readonly setSize: SqliteStatement;
  readonly makeCurrent: SqliteStatement;
  readonly deleteOtherChunks: SqliteStatement;
  readonly deleteOthers: SqliteStatement;
  readonly selectChunk: SqliteStatement;
  readonly storedBytes: SqliteStatement;
}

/**
 * Snapshots in SQLite. Each `write` of a writer is one transaction (durable before it resolves
 * with `synchronous: "full"`) that appends the chunk's rows and the new size; `commit` is one
 * transaction that marks the pending snapshot current and deletes every other snapshot and its
 * chunks. A crash therefore leaves the previous snapshot current and whole, and the pending one
 * at the size of its last resolved write, where `begin` with the same metadata resumes it.
 *
 * A failed transaction (a disk error) rolls back and rejects, and makes every later call reject
 * with the same error, as the SqliteLogStore does (after a failed fsync the file's state is not
 * known): the SqliteLogStore on the same connection fails with it, and a failure of the log
 * store fails this store. The node must stop and restart from the file. Calls reject once the
 * SqliteLogStore is closed.
 */
export class SqliteSnapshotStore implements SnapshotStore {
  readonly #sql: Statements;
  readonly #chunkBytes: number;
  readonly #isClosed: () => boolean;
  readonly #ownerFailure: () => unknown;
  readonly #onFailure: (error: unknown) => void;
  readonly #afterCommit: () => Promise<void>;
  #failure: unknown = null;
  #closed = false;
  #nextId: number;
  /** Bumped by every begin: only the latest writer may write. */
  #generation = 0;

  /**
   * Prepares the store's statements on `db`, whose schema the SqliteLogStore created: use
   * `SqliteLogStore.snapshots` rather than this constructor. The store does not own `db`.
   */
  constructor(db: SqliteDatabase, options: SqliteSnapshotStoreOptions = {}) {
    const chunkBytes = options.chunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
      throw new RangeError(`SqliteSnapshotStore: chunkBytes ${chunkBytes} must be positive`);
    }
    this.#chunkBytes = chunkBytes;
    this.#isClosed = options.isClosed ?? (() => false);
    this.#ownerFailure = options.failure ?? (() => null);
    this.#onFailure = options.onFailure ?? (() => {});
    this.#afterCommit = options.afterCommit ?? (() => Promise.resolve());
    const columns = "id, idx, term, membership, size";
    this.#sql = {
      begin: db.prepare("BEGIN IMMEDIATE"),
      commit: db.prepare("COMMIT"),
      rollback: db.prepare("ROLLBACK"),
      selectByState: db.prepare(`SELECT ${columns} FROM snapshot WHERE current = ?`),
      insertSnapshot: db.prepare(
        "INSERT INTO snapshot (id, current, idx, term, membership, size) VALUES (?, 0, ?, ?, ?, 0)",
      ),
      deleteSnapshot: db.prepare("DELETE FROM snapshot WHERE id = ?"),
      deleteChunks: db.prepare("DELETE FROM snapshot_chunk WHERE snapshot_id = ?"),
      insertChunk: db.prepare(
        "INSERT INTO snapshot_chunk (snapshot_id, pos, data) VALUES (?, ?, ?)",
      ),
      setSize: db.prepare("UPDATE snapshot SET size = ? WHERE id = ?"),
      makeCurrent: db.prepare("UPDATE snapshot SET current = 1 WHERE id = ?"),
      deleteOtherChunks: db.prepare("DELETE FROM snapshot_chunk WHERE snapshot_id <> ?"),
      deleteOthers: db.prepare("DELETE FROM snapshot WHERE id <> ?"),
      selectChunk: db.prepare(
        "SELECT pos, data FROM snapshot_chunk WHERE snapshot_id = ? AND pos <= ? " +
          "ORDER BY pos DESC LIMIT 1",
      ),
      storedBytes: db.prepare("SELECT coalesce(sum(length(data)), 0) AS n FROM snapshot_chunk"),
    };
    const max = db.prepare("SELECT coalesce(max(id), 0) AS id FROM snapshot").get() as {
      readonly id: number;
    };
    this.#nextId = Number(max.id) + 1;
  }

  /** The current snapshot, or null. Rejects when the store is closed. */
  async current(): Promise<StoredSnapshot | null> {
    this.#checkOpen("current");
    const row = this.#row(1);
    return row === null ? null : { meta: toMeta(row), size: row.size };
  }

  /**
   * Yields the current snapshot's bytes from `fromOffset`, one chunk row (at most `chunkBytes`)
   * per indexed read. Rejects when the store is closed, there is no current snapshot (or not
   * the one named by `meta`), `fromOffset` is beyond its size, or a newer snapshot was committed
   * meanwhile (its rows are gone).
   */
  async *read(meta?: SnapshotMeta, fromOffset = 0): AsyncIterable<Uint8Array> {
    this.#checkOpen("read");
    const row = this.#row(1);
    if (row === null) throw new Error("SqliteSnapshotStore.read: there is no snapshot");
    if (meta !== undefined && (meta.index !== row.idx || meta.term !== row.term)) {
      throw new Error(
        `SqliteSnapshotStore.read: the current snapshot is ${row.idx}/${row.term}, not ${meta.index}/${meta.term}`,
      );
    }
    if (!Number.isSafeInteger(fromOffset) || fromOffset < 0 || fromOffset > row.size) {
      throw new RangeError(`SqliteSnapshotStore.read: offset ${fromOffset} outside 0..${row.size}`);
    }
    let position = fromOffset;
    while (position < row.size) {
      this.#checkOpen("read");
      const chunk = this.#sql.selectChunk.get(row.id, position) as
        | { readonly pos: number; readonly data: Uint8Array }
        | null
        | undefined;
      const pos = chunk == null ? -1 : Number(chunk.pos);
      const length = chunk == null ? 0 : chunk.data.byteLength;
      if (chunk == null || pos + length <= position) {
        throw new Error(
          `SqliteSnapshotStore.read: snapshot ${row.idx}/${row.term} has no bytes at ${position} (a newer snapshot replaced it)`,
        );
      }
      const data = toUint8Array(chunk.data).subarray(position - pos);
      position += data.byteLength;
      yield data;
    }
  }

  /** Starts (or resumes) a pending snapshot; see {@link SnapshotStore.begin}. */
  async begin(meta: SnapshotMeta): Promise<SnapshotWriter> {
    this.#checkOpen("begin");
    checkSnapshotMeta(meta);
    const generation = ++this.#generation;
    const pending = this.#row(0);
    if (pending !== null && sameSnapshot(toMeta(pending), meta)) {
      return this.#writer(pending.id, toMeta(pending), pending.size, generation);
    }
    const id = this.#nextId;
    const sql = this.#sql;
    this.#transaction(() => {
      if (pending !== null) {
        sql.deleteChunks.run(pending.id);
        sql.deleteSnapshot.run(pending.id);
      }
      sql.insertSnapshot.run(id, meta.index, meta.term, membershipJson(meta.membership));
    });
    this.#nextId++;
    await this.#afterCommit();
    return this.#writer(id, meta, 0, generation);
  }

  /** Marks this store closed (the SqliteLogStore owns and closes the connection). */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Bytes held in chunk rows, of every snapshot (for tests). */
  storedBytes(): number {
    return Number((this.#sql.storedBytes.get() as { readonly n: number }).n);
  }

  #writer(id: number, meta: SnapshotMeta, size: number, generation: number): SnapshotWriter {
    const store = this;
    const sql = this.#sql;
    let offset = size;
    let ended = false;
    const check = (method: string) => {
      store.#checkOpen(`writer.${method}`);
      if (ended || store.#generation !== generation) {
        throw new Error(`SqliteSnapshotStore writer.${method}: the writer was superseded or ended`);
      }
    };
    return {
      meta,
      get offset() {
        return offset;
      },
      async write(chunk: Uint8Array, at?: number): Promise<void> {
        check("write");
        const rest = chunkFrom(chunk, at ?? offset, offset);
        if (rest.length === 0) return;
        const step = store.#chunkBytes;
        store.#transaction(() => {
          for (let i = 0; i < rest.length; i += step) {
            sql.insertChunk.run(id, offset + i, rest.subarray(i, i + step));
          }
          sql.setSize.run(offset + rest.length, id);
        });
        offset += rest.length;
        await store.#afterCommit();
      },
      async commit(): Promise<void> {
        check("commit");
        store.#transaction(() => {
          sql.makeCurrent.run(id);
          sql.deleteOtherChunks.run(id);
          sql.deleteOthers.run(id);
        });
        ended = true;
        await store.#afterCommit();
      },
      async abort(): Promise<void> {
        check("abort");
        store.#transaction(() => {
          sql.deleteChunks.run(id);
          sql.deleteSnapshot.run(id);
        });
        ended = true;
        await store.#afterCommit();
      },
    };
  }

  /** The current (1) or pending (0) snapshot's row, or null. */
  #row(current: 0 | 1): SnapshotRow | null {
    const row = this.#sql.selectByState.get(current) as SnapshotRow | null | undefined;
    if (row == null) return null;
    return {
      id: Number(row.id),
      idx: Number(row.idx),
      term: Number(row.term),
      membership: String(row.membership),
      size: Number(row.size),
    };
  }

  #transaction(body: () => void): void {
    try {
      inTransaction(this.#sql, body);
    } catch (error) {
      this.#failure = error;
      this.#onFailure(error);
      throw error;
    }
  }

  #checkOpen(method: string): void {
    if (this.#failure !== null) throw this.#failure;
    const ownerFailure = this.#ownerFailure();
    if (ownerFailure !== null) throw ownerFailure;
    if (this.#closed || this.#isClosed()) {
      throw new Error(`SqliteSnapshotStore.${method}: the store is closed`);
    }
  }
}

function toMeta(row: SnapshotRow): SnapshotMeta {
  return { index: row.idx, term: row.term, membership: JSON.parse(row.membership) as Membership };
}

/** A plain Uint8Array view of a BLOB (better-sqlite3 returns Buffers). */
function toUint8Array(data: Uint8Array): Uint8Array {
  if (Object.getPrototypeOf(data) === Uint8Array.prototype) return data;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
