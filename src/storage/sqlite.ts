/**
 * A LogStore on SQLite, written once against a tiny driver interface ({@link SqliteDatabase}).
 * Each runtime adapter wraps its own SQLite (better-sqlite3 on Node, `bun:sqlite` on Bun,
 * `node:sqlite` on Deno) and exports `openSqliteLogStore(path, options)`.
 *
 * Schema (version 2, in `PRAGMA user_version`; a version 1 file is migrated on open):
 *
 *   meta       (id = 0, term, voted_for, snapshot_index, snapshot_term)   one row
 *   log        (idx INTEGER PRIMARY KEY, term, kind, data)                 one row per entry
 *   membership (idx INTEGER PRIMARY KEY, membership)                       membership entries
 *   snapshot, snapshot_chunk                                               see sqlite-snapshot.ts
 *
 * `kind` is 0 for a command (`data` holds its payload as a BLOB), 1 for a blank entry (`data`
 * NULL), 2 for a membership entry (`data` holds the Membership as JSON text). The membership
 * table repeats every membership entry of the log plus the last two purged ones, so the last two
 * configurations are one indexed read even after truncation or purge.
 */
import type { ConfigEntry } from "../core/membership.ts";
import type { Entry, HardState, Membership } from "../core/types.ts";
import { nextMacrotask } from "../util/macrotask.ts";
import type { LogStore, LogWrite, StoredState } from "./log-store.ts";
import { SqliteSnapshotStore, snapshotSchema } from "./sqlite-snapshot.ts";
import { inTransaction } from "./sqlite-transaction.ts";
import { validateWrite } from "./validate-write.ts";
import { type SqliteWalSync, WalSyncQueue } from "./wal-sync.ts";

interface PendingWrite {
  readonly body: () => void;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

// ---------------------------------------------------------------------------------------------
// The driver interface

/** A value bound to a statement parameter. */
export type SqliteValue = number | string | Uint8Array | null;

/**
 * A prepared statement with positional parameters, as better-sqlite3, `bun:sqlite` and
 * `node:sqlite` all provide. Errors are thrown synchronously.
 */
export interface SqliteStatement {
  /** Executes the statement; the result is ignored. */
  run(...params: SqliteValue[]): unknown;
  /** The first row as an object keyed by column name; `undefined` or `null` when there is none. */
  get(...params: SqliteValue[]): unknown;
  /** Every row, as objects keyed by column name. */
  all(...params: SqliteValue[]): unknown[];
}

/**
 * One open SQLite connection. BLOBs may come back as any `Uint8Array` (a Node `Buffer` too), rows
 * may have a null prototype: the store normalizes both.
 */
export interface SqliteDatabase {
  /** Executes one SQL statement without parameters. */
  exec(sql: string): unknown;
  /** Compiles a statement; the store prepares each one once and reuses it. */
  prepare(sql: string): SqliteStatement;
  /** Closes the connection. */
  close(): unknown;
}

// ---------------------------------------------------------------------------------------------
// Options

/** How hard SQLite works to make a commit durable (`PRAGMA synchronous`). */
export type SqliteSynchronous = "full" | "normal" | "off";

/** Options of a {@link SqliteLogStore}. */
export interface SqliteLogStoreOptions {
  /**
   * `PRAGMA synchronous` (the journal is always WAL):
   *
   * - `"full"` (default): every `write` and `purge` has the WAL fsynced before it resolves
   *   (inside COMMIT, or off the event loop with `syncWal`), so what the node acknowledged
   *   survives a process crash, an OS crash and a power loss. Raft needs this: a vote or an
   *   AppendEntries acknowledgement must not leave the node before the state it promises is
   *   durable. `PRAGMA fullfsync` is set too, which makes SQLite's fsync reach the disk on macOS
   *   (it is a no-op elsewhere).
   * - `"normal"`: the WAL is fsynced only at checkpoints. A committed write still survives the
   *   process being killed (`kill -9`), but the last transactions may be lost on power loss or
   *   OS crash, after the node acknowledged them: a restarted node may then have forgotten a
   *   vote or entries a leader counted, which can break Raft's safety. For disposable clusters,
   *   tests and benchmarks.
   * - `"off"`: no fsync at all; a power loss may lose transactions or corrupt the file. Tests only.
   */
  readonly synchronous?: SqliteSynchronous;
  /**
   * Syncs the WAL off the event loop (the adapters pass one for a file on Linux: an fsync of the
   * WAL file on the runtime's thread pool). With `synchronous: "full"` the store then commits
   * with SQLite's `NORMAL`, which writes each transaction to the WAL without syncing it, and a
   * `write`, `purge`, `reset` or snapshot write resolves only once a sync that started after its
   * COMMIT has completed: the durability of `FULL` (which is `NORMAL` plus a sync of the WAL
   * after each commit) without stopping the event loop for the fsync, and the commits made
   * during one sync share the next. Ignored with `"normal"` and `"off"`. The store closes it.
   */
  readonly syncWal?: SqliteWalSync;
}

// ---------------------------------------------------------------------------------------------

const SCHEMA_VERSION = 2;

const KIND_COMMAND = 0;
const KIND_BLANK = 1;
const KIND_MEMBERSHIP = 2;

const synchronousPragma: Readonly<Record<SqliteSynchronous, string>> = {
  full: "FULL",
  normal: "NORMAL",
  off: "OFF",
};

const schema = [
  `CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    term INTEGER NOT NULL,
    voted_for TEXT,
    snapshot_index INTEGER NOT NULL,
    snapshot_term INTEGER NOT NULL
  )`,
  "CREATE TABLE log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind INTEGER NOT NULL, data BLOB)",
  "CREATE TABLE membership (idx INTEGER PRIMARY KEY, membership TEXT NOT NULL)",
  "INSERT INTO meta (id, term, voted_for, snapshot_index, snapshot_term) VALUES (0, 0, NULL, 0, 0)",
  ...snapshotSchema,
  `PRAGMA user_version = ${SCHEMA_VERSION}`,
];

interface MetaRow {
  readonly term: number;
  readonly voted_for: string | null;
  readonly snapshot_index: number;
  readonly snapshot_term: number;
}

interface LogRow {
  readonly idx: number;
  readonly term: number;
  readonly kind: number;
  readonly data: Uint8Array | string | null;
}

interface MembershipRow {
  readonly idx: number;
  readonly membership: string;
}

/** The store's statements, prepared once. */
interface Statements {
  readonly begin: SqliteStatement;
  readonly commit: SqliteStatement;
  readonly rollback: SqliteStatement;
  readonly setHardState: SqliteStatement;
  readonly setSnapshot: SqliteStatement;
  readonly insertEntry: SqliteStatement;
  readonly insertMembership: SqliteStatement;
  readonly deleteEntriesFrom: SqliteStatement;
  readonly deleteMembershipsFrom: SqliteStatement;
  readonly deleteEntriesTo: SqliteStatement;
  readonly prunePurgedMemberships: SqliteStatement;
  readonly deleteAllEntries: SqliteStatement;
  readonly deleteAllMemberships: SqliteStatement;
  readonly selectRange: SqliteStatement;
  readonly selectTerm: SqliteStatement;
  readonly selectMemberships: SqliteStatement;
}

/**
 * A LogStore in one SQLite file, in WAL mode. Every `write` is one transaction (`BEGIN
 * IMMEDIATE` … `COMMIT`), so a crash at any point leaves the file at the state after some
 * acknowledged write (or the one in flight); with `synchronous: "full"` (the default) a write
 * that resolved survives a power loss too.
 *
 * The connection takes the file in `locking_mode = EXCLUSIVE`: while the store is open no other
 * connection, in this process or another, can read or write it (opening a second store on it
 * throws "database is locked" at once), so two nodes can never share a log by mistake.
 *
 * The store validates writes exactly as `MemoryLogStore` does and keeps the log's bounds and
 * the hard state in memory, so validation costs at most one indexed read. Calls after `close()`
 * reject (a closed store is not reopened by `load()`: open the file again). A failed transaction
 * (a disk error, a full disk) makes every later call reject with the same error: the node must
 * stop and restart from the file.
 */
export class SqliteLogStore implements LogStore {
  /**
   * The snapshots of this file, on the same connection (so under the same lock, WAL and
   * `synchronous` setting); it rejects once this store is closed. See sqlite-snapshot.ts.
   */
  readonly snapshots: SqliteSnapshotStore;
  readonly #db: SqliteDatabase;
  readonly #sql: Statements;
  #hardState: HardState;
  #snapshotIndex: number;
  #snapshotTerm: number;
  #lastIndex: number;
  #lastTerm: number;
  #closed = false;
  #failure: unknown = null;
  /** Validated writes whose transaction waits for the next macrotask (see `write`). */
  #pending: PendingWrite[] = [];
  /** The WAL's syncs when they run off the event loop (`syncWal` with "full"), else null. */
  readonly #syncWal: SqliteWalSync | null;
  readonly #walSyncs: WalSyncQueue | null;

  /**
   * Sets up `db` (exclusive locking, WAL, `synchronous`), creates the schema in a new file and
   * reads the log's bounds and hard state. The store owns `db` from then on and closes it in
   * `close()`, or at once if the constructor throws.
   *
   * Throws a RangeError for an unknown `synchronous`; an Error when WAL mode cannot be turned on,
   * when the file is not a Keel log (tables without a Keel schema version, or a newer version),
   * or when it is inconsistent; the driver's error when the file cannot be read or is locked by
   * another connection ("database is locked").
   */
  constructor(db: SqliteDatabase, options: SqliteLogStoreOptions = {}) {
    this.#db = db;
    const synchronous = options.synchronous ?? "full";
    this.#syncWal = options.syncWal ?? null;
    const asyncSync = this.#syncWal !== null && synchronous === "full";
    this.#walSyncs = asyncSync
      ? new WalSyncQueue(this.#syncWal as SqliteWalSync, (error) => {
          this.#failure ??= error;
        })
      : null;
    let opened: OpenedFile;
    try {
      opened = openFile(db, synchronous, asyncSync);
    } catch (error) {
      try {
        db.close();
      } catch {
        // The error that made opening fail is the one to report.
      }
      this.#syncWal?.close().catch(() => {});
      throw error;
    }
    this.#sql = opened.sql;
    this.#hardState = opened.hardState;
    this.#snapshotIndex = opened.snapshotIndex;
    this.#snapshotTerm = opened.snapshotTerm;
    this.#lastIndex = opened.lastIndex;
    this.#lastTerm = opened.lastTerm;
    this.snapshots = new SqliteSnapshotStore(db, {
      isClosed: () => this.#closed,
      failure: () => this.#failure,
      onFailure: (error) => {
        this.#failure ??= error;
      },
      afterCommit: () => this.#durable(),
    });
  }

  // -------------------------------------------------------------------------------------------
  // LogStore

  /**
   * Reads what a node needs to restart: the hard state and log bounds (kept in memory) and the
   * last two membership entries (one indexed read). Rejects when the store is closed or failed.
   */
  async load(): Promise<StoredState> {
    this.#runPending();
    this.#checkUsable("load");
    const rows = this.#sql.selectMemberships.all() as MembershipRow[];
    const memberships: ConfigEntry[] = [];
    for (let i = rows.length - 1; i >= 0; i--) {
      const row = rows[i] as MembershipRow;
      memberships.push({ index: row.idx, membership: decodeMembership(row.membership) });
    }
    return {
      hardState: this.#hardState,
      snapshotIndex: this.#snapshotIndex,
      snapshotTerm: this.#snapshotTerm,
      lastIndex: this.#lastIndex,
      lastTerm: this.#lastTerm,
      memberships,
    };
  }

  /**
   * Applies `batch` in one transaction: truncate from `truncateFrom`, append `entries`, set
   * `hardState`; resolves once it is committed (durable, with `synchronous: "full"`).
   * Rejects, leaving the store unchanged, on an invalid write: `truncateFrom` outside
   * (snapshotIndex, lastIndex + 1]; entries that do not start right after the (truncated) log,
   * are not contiguous, have a term lower than the entry before them, an unknown kind, or a
   * command payload that is not a Uint8Array; a hard state whose term goes back or whose vote
   * changes within a term. Rejects when the store is closed or failed, and with the driver's
   * error when the transaction fails (the store is failed from then on).
   */
  async write(batch: LogWrite): Promise<void> {
    this.#checkUsable("write");
    const lastTerm = this.#validate(batch);
    const { truncateFrom, entries, hardState } = batch;
    // Truncating at lastIndex + 1 is valid and deletes nothing.
    const cut = truncateFrom !== undefined && truncateFrom <= this.#lastIndex ? truncateFrom : 0;
    if (cut === 0 && entries.length === 0 && hardState === undefined) return;
    const sql = this.#sql;
    const body = () => {
      if (cut !== 0) {
        sql.deleteEntriesFrom.run(cut);
        sql.deleteMembershipsFrom.run(cut);
      }
      const insert = sql.insertEntry;
      for (const entry of entries) {
        switch (entry.kind) {
          case "command":
            insert.run(entry.index, entry.term, KIND_COMMAND, entry.data);
            break;
          case "blank":
            insert.run(entry.index, entry.term, KIND_BLANK, null);
            break;
          case "membership": {
            const json = encodeMembership(entry.membership);
            insert.run(entry.index, entry.term, KIND_MEMBERSHIP, json);
            sql.insertMembership.run(entry.index, json);
            break;
          }
        }
      }
      if (hardState !== undefined) sql.setHardState.run(hardState.term, hardState.votedFor);
    };
    // SQLite drivers are synchronous: a COMMIT with its fsync blocks the event loop. Run it on
    // the next macrotask, so that requests already received are read first and join the
    // driver's next batch (group commit): without this, a leader serving many clients over
    // HTTP commits one request per fsync. The bounds move now: later writes validate against
    // them, and every read runs the pending transactions first.
    const done = new Promise<void>((resolve, reject) => {
      this.#pending.push({ body, resolve, reject });
    });
    if (this.#pending.length === 1) nextMacrotask(() => this.#runPending());
    if (cut !== 0) this.#lastIndex = cut - 1;
    if (entries.length > 0) this.#lastIndex = (entries[entries.length - 1] as Entry).index;
    this.#lastTerm = lastTerm;
    if (hardState !== undefined) {
      this.#hardState = { term: hardState.term, votedFor: hardState.votedFor };
    }
    return done;
  }

  /**
   * Entries fromIndex..toIndex inclusive, in order, read with one SELECT (an empty array when
   * toIndex < fromIndex). Command payloads are plain Uint8Arrays. Rejects with a RangeError when
   * any of them is not in the log (purged or beyond the last index); rejects when the store is
   * closed or failed, or when the file lacks rows it should hold.
   */
  async entries(fromIndex: number, toIndex: number): Promise<Entry[]> {
    this.#runPending();
    this.#checkUsable("entries");
    if (!Number.isSafeInteger(fromIndex) || !Number.isSafeInteger(toIndex)) {
      throw new RangeError(`entries(${fromIndex}, ${toIndex}): indexes must be integers`);
    }
    if (toIndex < fromIndex) return [];
    if (fromIndex <= this.#snapshotIndex || toIndex > this.#lastIndex) {
      throw new RangeError(
        `entries(${fromIndex}, ${toIndex}): the log holds ${this.#snapshotIndex + 1}..${this.#lastIndex}`,
      );
    }
    const rows = this.#sql.selectRange.all(fromIndex, toIndex) as LogRow[];
    if (rows.length !== toIndex - fromIndex + 1) {
      throw new Error(
        `entries(${fromIndex}, ${toIndex}): the file holds ${rows.length} of these entries`,
      );
    }
    const result = new Array<Entry>(rows.length);
    for (let i = 0; i < rows.length; i++) result[i] = decodeEntry(rows[i] as LogRow);
    return result;
  }

  /**
   * Deletes entries up to and including `upToIndex` in one transaction; the log then starts after
   * it and `load()` reports that entry as `snapshotIndex`/`snapshotTerm`. The last two membership
   * entries purged are kept for `load()`. A no-op for an index already purged. Rejects with a
   * RangeError when `upToIndex` is beyond the last index; rejects when the store is closed or
   * failed, and with the driver's error when the transaction fails.
   */
  async purge(upToIndex: number): Promise<void> {
    this.#runPending();
    this.#checkUsable("purge");
    if (!Number.isSafeInteger(upToIndex)) {
      throw new RangeError(`purge(${upToIndex}): the index must be an integer`);
    }
    if (upToIndex <= this.#snapshotIndex) return;
    if (upToIndex > this.#lastIndex) {
      throw new RangeError(`purge(${upToIndex}): beyond the last index ${this.#lastIndex}`);
    }
    const term = this.#termAt(upToIndex);
    const sql = this.#sql;
    this.#transaction(() => {
      sql.deleteEntriesTo.run(upToIndex);
      sql.setSnapshot.run(upToIndex, term);
      sql.prunePurgedMemberships.run(upToIndex);
    });
    this.#snapshotIndex = upToIndex;
    this.#snapshotTerm = term;
    await this.#durable();
  }

  /**
   * See {@link LogStore.reset}: one transaction deletes every entry and membership row and moves
   * the start of the log. Rejects when the store is closed or failed, and with the driver's
   * error when the transaction fails.
   */
  async reset(index: number, term: number): Promise<void> {
    this.#runPending();
    this.#checkUsable("reset");
    if (!Number.isSafeInteger(index) || index < 0 || !Number.isSafeInteger(term) || term < 0) {
      throw new RangeError(`reset(${index}, ${term}): expected non-negative integers`);
    }
    const sql = this.#sql;
    this.#transaction(() => {
      sql.deleteAllEntries.run();
      sql.deleteAllMemberships.run();
      sql.setSnapshot.run(index, term);
    });
    this.#snapshotIndex = index;
    this.#snapshotTerm = term;
    this.#lastIndex = index;
    this.#lastTerm = term;
    await this.#durable();
  }

  /**
   * Closes the connection (SQLite checkpoints the WAL into the file); later calls reject. Closing
   * twice does nothing. Rejects only if the driver fails to close (the store is closed anyway).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#runPending();
    this.#closed = true;
    try {
      // The last commits' sync settles their promises before the file goes.
      await this.#walSyncs?.drained();
      await this.#syncWal?.close();
    } finally {
      this.#db.close();
    }
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Commits every pending write in one transaction (one fsync) and settles their promises once
   * it is durable; on a failure every one of them rejects with the error and the store is failed.
   */
  #runPending(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    try {
      this.#checkUsable("write");
      this.#transaction(() => {
        for (const write of pending) write.body();
      });
    } catch (error) {
      for (const write of pending) write.reject(error);
      return;
    }
    if (this.#walSyncs === null) {
      for (const write of pending) write.resolve();
      return;
    }
    this.#walSyncs.afterCommit().then(
      () => {
        for (const write of pending) write.resolve();
      },
      (error: unknown) => {
        for (const write of pending) write.reject(error);
      },
    );
  }

  /** Resolves once the commit just made is durable (at once when COMMIT itself synced). */
  #durable(): Promise<void> {
    return this.#walSyncs?.afterCommit() ?? Promise.resolve();
  }

  /** Runs `body` in a transaction; on any error rolls back and fails the store. */
  #transaction(body: () => void): void {
    try {
      inTransaction(this.#sql, body);
    } catch (error) {
      this.#failure = error;
      throw error;
    }
  }

  /** Term of the entry at `index`, which must be in snapshotIndex..lastIndex. */
  #termAt(index: number): number {
    if (index === this.#snapshotIndex) return this.#snapshotTerm;
    if (index === this.#lastIndex) return this.#lastTerm;
    this.#runPending();
    const row = this.#sql.selectTerm.get(index) as { readonly term: number } | null | undefined;
    if (row == null) throw new Error(`SqliteLogStore: entry ${index} is missing from the file`);
    return row.term;
  }

  #checkUsable(method: string): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#closed) throw new Error(`SqliteLogStore.${method}: the store is closed`);
  }

  /**
   * Throws unless `batch` is valid (the same rules and messages as MemoryLogStore, plus the
   * entry encoding checks). Returns the term of the last entry after the write.
   */
  #validate(batch: LogWrite): number {
    const lastTerm = validateWrite(
      batch,
      {
        snapshotIndex: this.#snapshotIndex,
        lastIndex: this.#lastIndex,
        hardState: this.#hardState,
        termAt: (index) => this.#termAt(index),
      },
      checkEncodable,
    );
    const { hardState } = batch;
    if (hardState && hardState.votedFor !== null && typeof hardState.votedFor !== "string") {
      throw new TypeError("write: votedFor must be a string or null");
    }
    return lastTerm;
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

/** What the constructor needs from an opened file. */
interface OpenedFile {
  readonly sql: Statements;
  readonly hardState: HardState;
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
}

/** Configures the connection, creates or checks the schema, prepares and reads the bounds. */
function openFile(
  db: SqliteDatabase,
  synchronous: SqliteSynchronous,
  asyncSync: boolean,
): OpenedFile {
  if (!Object.hasOwn(synchronousPragma, synchronous)) {
    throw new RangeError(
      `SqliteLogStore: synchronous must be "full", "normal" or "off", not ${JSON.stringify(synchronous)}`,
    );
  }
  // A lock wait would only ever be for another store on the same file, which is an error.
  db.exec("PRAGMA busy_timeout = 0");
  // Before the first access, so the WAL index lives in heap memory and the lock is held.
  db.exec("PRAGMA locking_mode = EXCLUSIVE");
  const mode = String(rowValue(db.prepare("PRAGMA journal_mode = WAL").get(), "journal_mode"));
  // An in-memory database (":memory:") reports "memory"; it cannot use a WAL and needs none.
  if (mode.toLowerCase() !== "wal" && mode.toLowerCase() !== "memory") {
    throw new Error(`SqliteLogStore: could not turn on WAL mode (journal_mode is ${mode})`);
  }
  // With the WAL synced off the event loop, COMMIT only writes the WAL (see `syncWal`).
  db.exec(`PRAGMA synchronous = ${asyncSync ? "NORMAL" : synchronousPragma[synchronous]}`);
  const fullfsync = synchronous === "full" ? "ON" : "OFF";
  db.exec(`PRAGMA fullfsync = ${fullfsync}`);
  db.exec(`PRAGMA checkpoint_fullfsync = ${fullfsync}`);
  migrate(db);

  const sql: Statements = {
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    setHardState: db.prepare("UPDATE meta SET term = ?, voted_for = ? WHERE id = 0"),
    setSnapshot: db.prepare("UPDATE meta SET snapshot_index = ?, snapshot_term = ? WHERE id = 0"),
    insertEntry: db.prepare("INSERT INTO log (idx, term, kind, data) VALUES (?, ?, ?, ?)"),
    insertMembership: db.prepare("INSERT INTO membership (idx, membership) VALUES (?, ?)"),
    deleteEntriesFrom: db.prepare("DELETE FROM log WHERE idx >= ?"),
    deleteMembershipsFrom: db.prepare("DELETE FROM membership WHERE idx >= ?"),
    deleteEntriesTo: db.prepare("DELETE FROM log WHERE idx <= ?"),
    deleteAllEntries: db.prepare("DELETE FROM log"),
    deleteAllMemberships: db.prepare("DELETE FROM membership"),
    // Keeps the last two membership entries at or below the purge point, and all after it.
    prunePurgedMemberships: db.prepare(
      "DELETE FROM membership WHERE idx < " +
        "(SELECT idx FROM membership WHERE idx <= ? ORDER BY idx DESC LIMIT 1 OFFSET 1)",
    ),
    selectRange: db.prepare(
      "SELECT idx, term, kind, data FROM log WHERE idx BETWEEN ? AND ? ORDER BY idx",
    ),
    selectTerm: db.prepare("SELECT term FROM log WHERE idx = ?"),
    selectMemberships: db.prepare(
      "SELECT idx, membership FROM membership ORDER BY idx DESC LIMIT 2",
    ),
  };

  const meta = db
    .prepare("SELECT term, voted_for, snapshot_index, snapshot_term FROM meta WHERE id = 0")
    .get() as MetaRow | null | undefined;
  if (meta == null) throw new Error("SqliteLogStore: the meta row is missing");
  const snapshotIndex = meta.snapshot_index;
  const snapshotTerm = meta.snapshot_term;
  const bounds = db.prepare("SELECT min(idx) AS first, max(idx) AS last FROM log").get() as
    | { readonly first: number | null; readonly last: number | null }
    | null
    | undefined;
  let lastIndex = snapshotIndex;
  let lastTerm = snapshotTerm;
  if (bounds != null && bounds.first != null && bounds.last != null) {
    if (bounds.first !== snapshotIndex + 1) {
      throw new Error(
        `SqliteLogStore: the log starts at ${bounds.first}, expected ${snapshotIndex + 1}`,
      );
    }
    lastIndex = bounds.last;
    lastTerm = (sql.selectTerm.get(lastIndex) as { readonly term: number }).term;
  }
  return {
    sql,
    hardState: { term: meta.term, votedFor: meta.voted_for },
    snapshotIndex,
    snapshotTerm,
    lastIndex,
    lastTerm,
  };
}

/** Creates the schema in an empty file; checks the version of an existing one. */
function migrate(db: SqliteDatabase): void {
  const version = Number(rowValue(db.prepare("PRAGMA user_version").get(), "user_version"));
  if (version === SCHEMA_VERSION) return;
  if (version === 1) {
    // Version 2 added the snapshot tables.
    runSchema(db, [...snapshotSchema, `PRAGMA user_version = ${SCHEMA_VERSION}`]);
    return;
  }
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `SqliteLogStore: the file has schema version ${version}; this version of Keel reads ${SCHEMA_VERSION}`,
    );
  }
  const tables = Number(rowValue(db.prepare("SELECT count(*) AS n FROM sqlite_master").get(), "n"));
  if (version !== 0 || tables !== 0) {
    throw new Error("SqliteLogStore: the file is not a Keel log (it has other tables)");
  }
  runSchema(db, schema);
}

/** Executes `statements` in one transaction. */
function runSchema(db: SqliteDatabase, statements: readonly string[]): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const statement of statements) db.exec(statement);
    db.exec("COMMIT");
  } catch (error) {
    try {
      db.exec("ROLLBACK");
    } catch {
      // No transaction left to roll back.
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

function checkEncodable(entry: Entry): void {
  switch (entry.kind) {
    case "command":
      if (!(entry.data instanceof Uint8Array)) {
        throw new TypeError(`write: entry ${entry.index} is a command without Uint8Array data`);
      }
      return;
    case "blank":
      return;
    case "membership":
      if (typeof entry.membership !== "object" || entry.membership === null) {
        throw new TypeError(`write: entry ${entry.index} is a membership without a membership`);
      }
      return;
    default:
      throw new TypeError(
        `write: entry ${(entry as Entry).index} has unknown kind ${JSON.stringify((entry as { kind: unknown }).kind)}`,
      );
  }
}

/** The Membership's own fields as JSON (`outgoing` only during a joint change). */
function encodeMembership(membership: Membership): string {
  const { voters, outgoing, learners, addresses } = membership;
  return JSON.stringify(
    outgoing === undefined
      ? { voters, learners, addresses }
      : { voters, outgoing, learners, addresses },
  );
}

function decodeMembership(json: string): Membership {
  return JSON.parse(json) as Membership;
}

function decodeEntry(row: LogRow): Entry {
  const { idx: index, term, kind, data } = row;
  switch (kind) {
    case KIND_COMMAND:
      return { index, term, kind: "command", data: toUint8Array(data) };
    case KIND_BLANK:
      return { index, term, kind: "blank" };
    case KIND_MEMBERSHIP:
      return { index, term, kind: "membership", membership: decodeMembership(String(data)) };
    default:
      throw new Error(`SqliteLogStore: entry ${index} has unknown kind ${kind} in the file`);
  }
}

/** A plain Uint8Array view of a BLOB (better-sqlite3 returns Buffers). */
function toUint8Array(data: Uint8Array | string | null): Uint8Array {
  if (data === null) return new Uint8Array(0);
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (Object.getPrototypeOf(data) === Uint8Array.prototype) return data;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A column of a row that must exist (rows may have a null prototype). */
function rowValue(row: unknown, column: string): unknown {
  if (row == null || typeof row !== "object") {
    throw new Error(`SqliteLogStore: no row where ${column} was expected`);
  }
  return (row as Record<string, unknown>)[column];
}
