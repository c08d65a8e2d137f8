/** Bun adapter: an HTTP server from Bun.serve, a SQLite LogStore on `bun:sqlite`. */
import type {
  SqliteDatabase,
  SqliteLogStoreOptions,
  SqliteStatement,
} from "../src/storage/sqlite.ts";
import { SqliteLogStore } from "../src/storage/sqlite.ts";
import type { FetchApp, ServeOptions, Server } from "./server.ts";
import { walSyncFor } from "./wal-sync.ts";

export type {
  SqliteDatabase,
  SqliteLogStoreOptions,
  SqliteSynchronous,
} from "../src/storage/sqlite.ts";
export { SqliteLogStore } from "../src/storage/sqlite.ts";
export type { FetchApp, ServeOptions, Server } from "./server.ts";

// The part of the Bun global this adapter uses (so tsc and deno check need no Bun types).
declare const Bun: {
  serve(options: {
    fetch: (request: Request) => Response | Promise<Response>;
    hostname: string;
    port: number;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> | void };
};

/**
 * Serves `app` with Bun.serve; resolves once it listens. Rejects with Bun's error when it cannot
 * listen (the port is taken, say).
 */
export async function serve(app: FetchApp, options: ServeOptions = {}): Promise<Server> {
  const hostname = options.hostname ?? "127.0.0.1";
  const server = Bun.serve({
    fetch: (request) => app.fetch(request),
    hostname,
    port: options.port ?? 0,
  });
  return {
    hostname,
    port: server.port,
    close: async () => {
      await server.stop(true);
    },
  };
}

// The part of `bun:sqlite` this adapter uses (so tsc and deno check need no Bun types).
interface BunSqliteModule {
  readonly Database: new (
    path: string,
    options?: { readonly create?: boolean; readonly readwrite?: boolean },
  ) => {
    exec(sql: string): unknown;
    prepare(sql: string): SqliteStatement & { finalize(): void };
    close(throwOnError?: boolean): void;
  };
}

/**
 * Loads `bun:sqlite`. The specifier is computed so that neither tsc nor deno check try to resolve
 * it, and no other runtime ever loads it.
 */
async function loadBunSqlite(): Promise<BunSqliteModule> {
  const specifier = ["bun", "sqlite"].join(":");
  return (await import(specifier)) as BunSqliteModule;
}

/**
 * Opens (creating it if needed) the SQLite file at `path` with `bun:sqlite` and wraps it in the
 * driver interface of {@link SqliteLogStore}. `get()` of a missing row gives `null` here; the
 * store accepts it. Throws the driver's error when the file cannot be opened.
 */
export async function openSqliteDatabase(path: string): Promise<SqliteDatabase> {
  const { Database } = await loadBunSqlite();
  const db = new Database(path, { create: true, readwrite: true });
  // Bun defers closing while a statement is not finalized (and the file stays locked until the
  // garbage collector finalizes it): finalize every statement, then close for real.
  const statements: { finalize(): void }[] = [];
  return {
    exec: (sql) => db.exec(sql),
    prepare: (sql) => {
      const statement = db.prepare(sql);
      statements.push(statement);
      return statement;
    },
    close: () => {
      for (const statement of statements.splice(0)) statement.finalize();
      db.close(true);
    },
  };
}

/**
 * Opens a {@link SqliteLogStore} on the file at `path` (created if needed) with `bun:sqlite`.
 * Rejects with what `openSqliteDatabase` or the SqliteLogStore constructor throws (for example
 * "database is locked" while another store has the file open); the connection is closed then.
 * On Linux the store syncs the WAL off the event loop (`syncWal`, from adapters/wal-sync.ts)
 * unless `options` gives its own `syncWal` (`undefined`: SQLite syncs inside COMMIT).
 */
export async function openSqliteLogStore(
  path: string,
  options: SqliteLogStoreOptions = {},
): Promise<SqliteLogStore> {
  return new SqliteLogStore(await openSqliteDatabase(path), {
    syncWal: walSyncFor(path),
    ...options,
  });
}
