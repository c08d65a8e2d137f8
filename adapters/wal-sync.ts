/**
 * The WAL sync every adapter's `openSqliteLogStore` gives its store on Linux (see
 * `SqliteLogStoreOptions.syncWal`): an fsync of the file's WAL (`<path>-wal`) through
 * `node:fs/promises`, which Node, Bun and Deno all run on a thread pool, so a commit no longer
 * stops the event loop while the disk syncs.
 *
 * Elsewhere it is not used: on macOS only SQLite's own `fullfsync` reaches the disk, which an
 * fsync from here would not.
 */
import { type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";
import process from "node:process";
import type { SqliteWalSync } from "../src/storage/wal-sync.ts";

/** A WAL sync for the SQLite file at `path`, or undefined where SQLite should sync itself. */
export function walSyncFor(path: string): SqliteWalSync | undefined {
  // ":memory:", "" (a temporary database) and URIs have no WAL file of that name.
  if (process.platform !== "linux" || path === "" || path === ":memory:" || /^file:/i.test(path)) {
    return undefined;
  }
  let wal: FileHandle | null = null;
  return {
    async sync() {
      if (wal === null) {
        // Opened at the first sync, which follows a commit: the WAL exists, and with the store's
        // exclusive lock SQLite keeps that file until the connection closes.
        const handle = await open(`${path}-wal`, "r");
        try {
          // SQLite syncs a new WAL's directory entry at its first sync: so must this one.
          const directory = await open(dirname(path), "r");
          try {
            await directory.sync();
          } finally {
            await directory.close();
          }
        } catch (error) {
          await handle.close();
          throw error;
        }
        wal = handle;
      }
      await wal.sync();
    },
    async close() {
      const handle = wal;
      wal = null;
      await handle?.close();
    },
  };
}
