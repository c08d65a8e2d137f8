/**
 * Group commit for a WAL synced off the event loop. SQLite's `synchronous = FULL` in WAL mode is
 * `NORMAL` plus a sync of the WAL after every commit, done inside COMMIT: a synchronous driver
 * then blocks the event loop for the fsync. With a {@link SqliteWalSync} the store commits with
 * `NORMAL` and waits here instead: a commit is durable once a sync that started after it has
 * completed, and every commit made while a sync runs shares the next one.
 */

/** Syncs a SQLite file's WAL to disk off the event loop (the adapters' `syncWal` option). */
export interface SqliteWalSync {
  /**
   * Makes everything written to the WAL file so far durable (an fsync on a thread pool). The
   * first call also syncs the directory entry of a WAL file SQLite has just created, as SQLite
   * itself does on the first sync of a new WAL.
   */
  sync(): Promise<void>;
  /** Releases what `sync` holds (a file handle); called once, after the last sync. */
  close(): Promise<void>;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** One sync at a time; the commits made while it runs wait for the next. */
export class WalSyncQueue {
  readonly #wal: SqliteWalSync;
  readonly #onFailure: (error: unknown) => void;
  /** Commits made since the running sync started: the next sync covers them. */
  #waiting: Waiter[] = [];
  #running = false;
  #idle: (() => void)[] = [];
  #failure: unknown = null;

  /** `onFailure` is told of a failed sync once; every commit waiting then rejects with it. */
  constructor(wal: SqliteWalSync, onFailure: (error: unknown) => void) {
    this.#wal = wal;
    this.#onFailure = onFailure;
  }

  /**
   * Resolves once the commit that just returned is durable: after a sync that started after this
   * call. Call it right after COMMIT, in the same synchronous run.
   */
  afterCommit(): Promise<void> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      if (!this.#running) this.#start();
    });
  }

  /** Resolves when no sync runs and none is due (before the file is closed). */
  drained(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #start(): void {
    const batch = this.#waiting;
    this.#waiting = [];
    this.#running = true;
    this.#wal.sync().then(
      () => {
        for (const waiter of batch) waiter.resolve();
        this.#finished();
      },
      (error: unknown) => {
        // After a failed fsync the file's state is unknown (the kernel may have dropped the
        // dirty pages): never retry, fail everything waiting and let the owner fail the store.
        this.#failure = error;
        this.#onFailure(error);
        for (const waiter of [...batch, ...this.#waiting]) waiter.reject(error);
        this.#waiting = [];
        this.#finished();
      },
    );
  }

  #finished(): void {
    this.#running = false;
    if (this.#waiting.length > 0) {
      this.#start();
      return;
    }
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}
