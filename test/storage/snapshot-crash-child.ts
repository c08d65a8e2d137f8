/**
 * Child process of the snapshot crash test: `<runtime> snapshot-crash-child.ts <file>` opens the
 * SQLite store with the runtime's adapter and writes a pending snapshot (index 20, stream 22) in
 * chunks, printing `ack <offset>` once each write is durable, until it is killed. It never
 * commits.
 */
import process from "node:process";
import { loadAdapter } from "../helpers/runtime.ts";
import { ByteStream, metaAt } from "./snapshot-contract.ts";

const [path] = process.argv.slice(-1) as [string];
const { openSqliteLogStore } = await loadAdapter();
const log = await openSqliteLogStore(path);
const writer = await log.snapshots.begin(metaAt(20, 2));
const source = new ByteStream(22);
for (let i = 0; i < 100_000; i++) {
  await writer.write(source.take(100_000));
  process.stdout.write(`ack ${writer.offset}\n`);
}
await log.close();
