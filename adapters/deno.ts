/** Deno adapter: an HTTP server from Deno.serve, a SQLite LogStore on `node:sqlite`. */
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

// The part of the Deno global this adapter uses (so tsc needs no Deno types).
declare const Deno: {
  serve(
    options: {
      hostname: string;
      port: number;
      onListen?: (address: { hostname: string; port: number }) => void;
    },
    handler: (request: Request) => Response | Promise<Response>,
  ): { finished: Promise<void>; shutdown(): Promise<void> };
};

/**
 * Serves `app` with Deno.serve; resolves once it listens. Rejects with Deno's error when it cannot
 * listen (the port is taken, say).
 */
export function serve(app: FetchApp, options: ServeOptions = {}): Promise<Server> {
  const hostname = options.hostname ?? "127.0.0.1";
  return new Promise((resolve) => {
    const server = Deno.serve(
      {
        hostname,
        port: options.port ?? 0,
        onListen: (address) =>
          resolve({
            hostname,
            port: address.port,
            close: async () => {
              await server.shutdown();
              await server.finished;
            },
          }),
      },
      (request) => app.fetch(request),
    );
  });
}

// The part of `node:sqlite` this adapter uses (@types/node 20 has no node:sqlite for tsc).
interface NodeSqliteModule {
  readonly DatabaseSync: new (
    path: string,
  ) => {
    exec(sql: string): void;
    prepare(sql: string): SqliteStatement;
    close(): void;
  };
}

/**
 * Loads `node:sqlite` (built into Deno 2, and into Node from 22.5). The specifier is computed so
 * that tsc, which has no types for it with @types/node 20, does not try to resolve it.
 */
async function loadNodeSqlite(): Promise<NodeSqliteModule> {
  const specifier = ["node", "sqlite"].join(":");
  return (await import(specifier)) as NodeSqliteModule;
}

/**
 * Opens (creating it if needed) the SQLite file at `path` with `node:sqlite`'s DatabaseSync and
 * wraps it in the driver interface of {@link SqliteLogStore} (rows have a null prototype there;
 * the store accepts them). Throws the driver's error when the file cannot be opened.
 */
export async function openSqliteDatabase(path: string): Promise<SqliteDatabase> {
  const { DatabaseSync } = await loadNodeSqlite();
  const db = new DatabaseSync(path);
  return {
    exec: (sql) => db.exec(sql),
    prepare: (sql) => db.prepare(sql),
    close: () => db.close(),
  };
}

/**
 * Opens a {@link SqliteLogStore} on the file at `path` (created if needed) with `node:sqlite`.
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
