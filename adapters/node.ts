/** Node adapter: an HTTP server from @hono/node-server, a SQLite LogStore on better-sqlite3. */
import type { AddressInfo } from "node:net";
import { serve as nodeServe } from "@hono/node-server";
import type { SqliteDatabase, SqliteLogStoreOptions } from "../src/storage/sqlite.ts";
import { SqliteLogStore } from "../src/storage/sqlite.ts";
import type { FetchApp, ServeOptions, Server } from "./server.ts";

export type {
  SqliteDatabase,
  SqliteLogStoreOptions,
  SqliteSynchronous,
} from "../src/storage/sqlite.ts";
export { SqliteLogStore } from "../src/storage/sqlite.ts";
export type { FetchApp, ServeOptions, Server } from "./server.ts";

/**
 * Serves `app` on Node's http server (through @hono/node-server); resolves once it listens.
 * Rejects with the server's error when it cannot listen (the port is taken, say).
 */
export function serve(app: FetchApp, options: ServeOptions = {}): Promise<Server> {
  const hostname = options.hostname ?? "127.0.0.1";
  return new Promise((resolve, reject) => {
    const server = nodeServe({ fetch: app.fetch, hostname, port: options.port ?? 0 }, (info) => {
      resolve({
        hostname,
        port: (info as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            // Keep-alive connections would hold the server open: close them too.
            if ("closeAllConnections" in server) server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
    server.once("error", reject);
  });
}

/**
 * Opens (creating it if needed) the SQLite file at `path` with better-sqlite3, which is loaded on
 * first use, and wraps it in the driver interface of {@link SqliteLogStore}. Throws the driver's
 * error when the file cannot be opened.
 */
export async function openSqliteDatabase(path: string): Promise<SqliteDatabase> {
  const { default: Database } = await import("better-sqlite3");
  const db = new Database(path);
  return {
    exec: (sql) => db.exec(sql),
    prepare: (sql) => db.prepare(sql),
    close: () => db.close(),
  };
}

/**
 * Opens a {@link SqliteLogStore} on the file at `path` (created if needed) with better-sqlite3.
 * Rejects with what `openSqliteDatabase` or the SqliteLogStore constructor throws (for example
 * "database is locked" while another store has the file open); the connection is closed then.
 */
export async function openSqliteLogStore(
  path: string,
  options: SqliteLogStoreOptions = {},
): Promise<SqliteLogStore> {
  return new SqliteLogStore(await openSqliteDatabase(path), options);
}
