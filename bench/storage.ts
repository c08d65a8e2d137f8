/**
 * Throughput of the SQLite LogStore of the running runtime: appends of 64-byte command entries in
 * batches of 1, 64 and 1024 (one `write`, one transaction per batch), with `synchronous` FULL and
 * NORMAL, then reads of 1024-entry ranges. Each case runs on a fresh file in a temp directory for
 * a fixed wall time.
 *
 *   npx tsx bench/storage.ts [--seconds 1] [--sizes 1,64,1024] [--out FILE]
 *   npx bun bench/storage.ts
 *   npx deno run -A bench/storage.ts
 *
 * Prints a table and writes bench/results/storage-<runtime>.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Entry } from "../src/core/types.ts";
import type { SqliteLogStore, SqliteSynchronous } from "../src/storage/sqlite.ts";

const ENTRY_BYTES = 64;
const READ_RANGE = 1024;

type RuntimeName = "node" | "bun" | "deno";
const runtime: RuntimeName = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

interface Adapter {
  openSqliteLogStore(
    path: string,
    options?: { readonly synchronous?: SqliteSynchronous },
  ): Promise<SqliteLogStore>;
}

interface Result {
  readonly synchronous: SqliteSynchronous;
  readonly batch: number;
  readonly batchesPerSecond: number;
  readonly entriesPerSecond: number;
  readonly msPerBatch: number;
  /** Entries read per second with entries(i, i + 1023) over what was written. */
  readonly readEntriesPerSecond: number;
}

function parseArgs(argv: readonly string[]) {
  let seconds = 1;
  let sizes = [1, 64, 1024];
  let out: string | URL = new URL(`./results/storage-${runtime}.json`, import.meta.url);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = () => {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      return value;
    };
    if (arg === "--seconds") seconds = Number(next());
    else if (arg === "--sizes") sizes = next().split(",").map(Number);
    else if (arg === "--out") out = next();
    else throw new Error(`unknown option ${arg}`);
  }
  if (!(seconds > 0) || sizes.some((size) => !Number.isSafeInteger(size) || size < 1)) {
    throw new Error("--seconds must be positive and --sizes positive integers");
  }
  return { seconds, sizes, out };
}

function batchOf(firstIndex: number, size: number, payload: Uint8Array): Entry[] {
  const entries = new Array<Entry>(size);
  for (let i = 0; i < size; i++) {
    entries[i] = { index: firstIndex + i, term: 1, kind: "command", data: payload };
  }
  return entries;
}

async function measure(
  adapter: Adapter,
  dir: string,
  synchronous: SqliteSynchronous,
  batch: number,
  seconds: number,
): Promise<Result> {
  const path = join(dir, `${synchronous}-${batch}.db`);
  const store = await adapter.openSqliteLogStore(path, { synchronous });
  const payload = new Uint8Array(ENTRY_BYTES).fill(7);
  let last = 0;
  // Warm-up: a few batches, so statements are compiled and the file exists.
  for (let i = 0; i < 5; i++) {
    await store.write({ entries: batchOf(last + 1, batch, payload) });
    last += batch;
  }
  let batches = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let now = start;
  while (now < deadline) {
    await store.write({ entries: batchOf(last + 1, batch, payload) });
    last += batch;
    batches++;
    now = performance.now();
  }
  const elapsed = (now - start) / 1000;

  let read = 0;
  const readStart = performance.now();
  for (let from = 1; from + READ_RANGE - 1 <= last; from += READ_RANGE) {
    read += (await store.entries(from, from + READ_RANGE - 1)).length;
    if (performance.now() - readStart > seconds * 1000) break;
  }
  const readElapsed = (performance.now() - readStart) / 1000;
  await store.close();
  return {
    synchronous,
    batch,
    batchesPerSecond: batches / elapsed,
    entriesPerSecond: (batches * batch) / elapsed,
    msPerBatch: (elapsed * 1000) / batches,
    readEntriesPerSecond: read > 0 ? read / readElapsed : 0,
  };
}

const options = parseArgs(process.argv.slice(2));
const adapter = (await import(`../adapters/${runtime}.ts`)) as Adapter;
const dir = await mkdtemp(join(tmpdir(), "keel-bench-storage-"));
const results: Result[] = [];
try {
  for (const synchronous of ["full", "normal"] as const) {
    for (const batch of options.sizes) {
      results.push(await measure(adapter, dir, synchronous, batch, options.seconds));
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
console.log(
  `SQLite LogStore on ${runtime}, ${ENTRY_BYTES}-byte entries, ${options.seconds} s per case`,
);
console.log("sync    batch   batches/s   entries/s   ms/batch   read entries/s");
for (const r of results) {
  console.log(
    `${r.synchronous.padEnd(7)} ${String(r.batch).padStart(5)} ${fmt(r.batchesPerSecond).padStart(11)} ` +
      `${fmt(r.entriesPerSecond).padStart(11)} ${r.msPerBatch.toFixed(3).padStart(10)} ` +
      `${fmt(r.readEntriesPerSecond).padStart(16)}`,
  );
}
for (const batch of options.sizes) {
  const full = results.find((r) => r.synchronous === "full" && r.batch === batch);
  const normal = results.find((r) => r.synchronous === "normal" && r.batch === batch);
  if (full && normal) {
    console.log(
      `batch ${batch}: NORMAL/FULL = ${(normal.entriesPerSecond / full.entriesPerSecond).toFixed(1)}x`,
    );
  }
}
await mkdir(new URL("./results/", import.meta.url), { recursive: true });
await writeFile(
  options.out,
  `${JSON.stringify({ runtime, entryBytes: ENTRY_BYTES, seconds: options.seconds, results }, null, 2)}\n`,
);
