// @ts-check
// Smoke test of the packed npm tarball, run by .ci/package-check.sh from a temporary project that
// installed it: imports `keel` and the current runtime's adapter the way a user would, runs a
// single-node Raft on the memory store and network, writes once, serves a trivial app and, when
// a SQLite driver is available, opens a SqliteLogStore.
import { MemoryLogStore, MemoryNetwork, Raft } from "keel";

const runtime =
  "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : /** @type {const} */ ("node");
/** @type {typeof import("keel/node")} */
const adapter = await import(`keel/${runtime}`);

/** @type {import("keel").StateMachine} */
const stateMachine = {
  apply: (entries) =>
    entries.map((entry) => (entry.kind === "command" ? entry.data : new Uint8Array())),
  lastApplied: () => 0,
};

const network = new MemoryNetwork();
const raft = new Raft({
  id: "n1",
  logStore: new MemoryLogStore(),
  stateMachine,
  network: network.endpoint("n1"),
});
network.register("mem://n1", raft);
await raft.start();
await raft.initialize({ n1: "mem://n1" });
await raft.metrics.waitFor((m) => m.role === "leader", { timeoutMs: 5000 });
const { index, response } = await raft.write(new TextEncoder().encode("hello"));
await raft.shutdown();
const written = new TextDecoder().decode(response);
if (written !== "hello") throw new Error(`write answered ${JSON.stringify(written)}`);
console.log(`${runtime}: keel write committed at index ${index}: ${written}`);

const server = await adapter.serve({ fetch: () => new Response("pong") }, { port: 0 });
const pong = await (await fetch(`http://${server.hostname}:${server.port}/`)).text();
await server.close();
if (pong !== "pong") throw new Error(`serve answered ${JSON.stringify(pong)}`);
console.log(`${runtime}: keel/${runtime} serve answered ${pong}`);

// `process.argv` exists on all three runtimes (on Deno through its Node compatibility).
const argv = /** @type {{ process: { argv: string[] } }} */ (/** @type {unknown} */ (globalThis))
  .process.argv;
const sqlitePath = argv[2];
const expectSqlite = argv[3] ?? "yes";
if (sqlitePath) {
  try {
    const store = await adapter.openSqliteLogStore(sqlitePath);
    const state = await store.load();
    await store.close();
    if (expectSqlite !== "yes") throw new Error("opened SQLite although no driver is installed");
    console.log(`${runtime}: SqliteLogStore opened, lastIndex ${state.lastIndex}`);
  } catch (error) {
    const code = /** @type {{ code?: string }} */ (error).code;
    if (expectSqlite === "yes" || code !== "ERR_MODULE_NOT_FOUND") throw error;
    console.log(`${runtime}: without better-sqlite3, openSqliteLogStore rejects with ${code}`);
  }
}
