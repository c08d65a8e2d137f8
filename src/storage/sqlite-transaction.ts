/** One transaction on the SQLite driver interface, shared by the log and snapshot stores. */
import type { SqliteStatement } from "./sqlite.ts";

/** Runs `body` between BEGIN and COMMIT; on any error rolls back and rethrows it. */
export function inTransaction(
  sql: {
    readonly begin: SqliteStatement;
    readonly commit: SqliteStatement;
    readonly rollback: SqliteStatement;
  },
  body: () => void,
): void {
  sql.begin.run();
  try {
    body();
    sql.commit.run();
  } catch (error) {
    try {
      sql.rollback.run();
    } catch {
      // A failed COMMIT may have rolled back already: the original error is what matters.
    }
    throw error;
  }
}
