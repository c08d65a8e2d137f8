/**
 * One Keel node as a standalone process, on whichever runtime runs it, for the mixed-cluster
 * test:
 *
 *   node --import tsx test/e2e/node-process.ts --id ID --port P --data DIR [--secret S]
 *   bun test/e2e/node-process.ts …
 *   deno run -A test/e2e/node-process.ts …
 *
 * It opens `DIR/ID.db` with the running runtime's SQLite adapter (synchronous FULL), serves the
 * Raft routes at `/raft` and a small control API on 127.0.0.1:P (0: any free port), and prints
 * one line `ready <port>` on stdout once it listens. With a secret, the Raft routes and the
 * control API both require `Authorization: Bearer <secret>`.
 *
 * | route                   | body                    | answer                                    |
 * |-------------------------|-------------------------|-------------------------------------------|
 * | POST /control/initialize| JSON `{ id: address }`  | 200 `{ ok: true }`, 400 or 409 `{ error }` |
 * | POST /control/write     | the command, as text    | 200 `{ index, response }`; not the leader: |
 * |                         |                         | 421 (leader known) or 503 `{ error, name, |
 * |                         |                         | leaderId }`; other failures 503 or 500    |
 * | GET  /control/state     |                         | 200 `{ id, runtime, role, term, leaderId, |
 * |                         |                         | commitIndex, lastApplied, applied }`      |
 * | POST /control/shutdown  |                         | 200 `{ ok: true }`, then the process exits |
 *
 * `applied` lists the commands the state machine applied, in order. The process exits with code 0
 * after an orderly shutdown (on SIGTERM, SIGINT or /control/shutdown), with 1 on a failure
 * (messages go to stderr).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { type Context, Hono } from "hono";
import type { NodeId } from "../../src/core/types.ts";
import { LeadershipLostError, NotLeaderError } from "../../src/driver/errors.ts";
import type { Logger } from "../../src/driver/logger.ts";
import { Raft, type RaftOptionsConfig } from "../../src/driver/raft.ts";
import { raftRoutes } from "../../src/http/routes.ts";
import { FetchNetwork } from "../../src/net/fetch.ts";
import { bytes, RecordingStateMachine, text } from "../driver/harness.ts";
import { describeError, exitOnFailure, loadAdapter, runtime } from "../helpers/runtime.ts";

/** Timings with room for three runtimes' HTTP stacks on a small, busy machine. */
const config: RaftOptionsConfig = {
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  heartbeatIntervalMs: 50,
  rpcTimeoutMs: 1000,
  readTimeoutMs: 5000,
};

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    id: { type: "string" },
    port: { type: "string", default: "0" },
    data: { type: "string" },
    secret: { type: "string" },
  },
  strict: true,
});
const id: NodeId | undefined = values.id;
const dataDir = values.data;
const port = Number(values.port);
if (id === undefined || id === "" || dataDir === undefined || !Number.isInteger(port)) {
  process.stderr.write(
    "usage: node-process.ts --id ID --port P --data DIR [--secret S] (P: an integer, 0 = any)\n",
  );
  process.exit(2);
}
const secret = values.secret;

/** Warnings and errors of the node and its transport, one line each on stderr. */
const logger: Logger = {
  log(level, message, fields) {
    if (level === "debug") return;
    process.stderr.write(`${runtime} ${id} ${level} ${message} ${JSON.stringify(fields)}\n`);
  },
};

process.on("unhandledRejection", (reason) => fail("unhandled rejection", reason));
process.on("uncaughtException", (error) => fail("uncaught exception", error));

const { serve, openSqliteLogStore } = await loadAdapter();
await mkdir(dataDir, { recursive: true });
const store = await openSqliteLogStore(join(dataDir, `${id}.db`), { synchronous: "full" });
const machine = new RecordingStateMachine();
const network = new FetchNetwork({ secret, logger });
const raft = new Raft({ id, config, logStore: store, stateMachine: machine, network, logger });

// Started (its state loaded) before the first request can reach it.
await raft.start();
const app = new Hono();
app.route("/raft", raftRoutes(raft, { secret }));
app.route("/control", controlRoutes());
const server = await serve(app, { hostname: "127.0.0.1", port });
// A node that stops by itself (its store or state machine failed) takes the process down.
void raft.closed.then((error) => {
  if (error !== null) fail("the node stopped", error);
});
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.stdout.write(`ready ${server.port}\n`);

function controlRoutes(): Hono {
  const control = new Hono();
  control.onError((error, c) => c.json({ error: describeError(error) }, 500));
  if (secret !== undefined) {
    control.use("*", async (c, next) => {
      if (c.req.header("authorization") !== `Bearer ${secret}`) {
        return c.json({ error: "missing or wrong cluster secret" }, 401);
      }
      await next();
    });
  }

  control.post("/initialize", async (c) => {
    let members: unknown;
    try {
      members = await c.req.json();
    } catch {
      return c.json({ error: "the body is not JSON" }, 400);
    }
    if (!isMembers(members)) {
      return c.json({ error: "expected a JSON object of node id → address strings" }, 400);
    }
    try {
      await raft.initialize(members);
    } catch (error) {
      return c.json({ error: describeError(error) }, 409);
    }
    return c.json({ ok: true });
  });

  control.post("/write", async (c) => {
    const command = await c.req.text();
    try {
      const { index, response } = await raft.write(bytes(command));
      return c.json({ index, response: text(response) });
    } catch (error) {
      return writeFailure(c, error);
    }
  });

  control.get("/state", (c) => {
    const m = raft.metrics.current;
    return c.json({
      id,
      runtime,
      role: m.role,
      term: m.term,
      leaderId: m.leaderId,
      commitIndex: m.commitIndex,
      lastApplied: m.lastApplied,
      applied: machine.applied,
    });
  });

  control.post("/shutdown", (c) => {
    // After this answer is on its way: the server's close would cut it off.
    setTimeout(() => void stop(), 0);
    return c.json({ ok: true });
  });
  return control;
}

/** 421 when another node leads, 503 when none is known or the write may be retried. */
function writeFailure(c: Context, error: unknown): Response {
  const name = error instanceof Error ? error.name : "Error";
  const leaderId = raft.metrics.current.leaderId;
  if (error instanceof NotLeaderError) {
    const body = { error: error.message, name, leaderId: error.leaderId };
    return error.leaderId === null ? c.json(body, 503) : c.json(body, 421);
  }
  if (error instanceof LeadershipLostError || raft.metrics.current.stopped) {
    return c.json({ error: describeError(error), name, leaderId }, 503);
  }
  return c.json({ error: describeError(error), name, leaderId }, 500);
}

function isMembers(value: unknown): value is Record<NodeId, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const entries = Object.entries(value);
  return entries.length > 0 && entries.every(([, address]) => typeof address === "string");
}

let stopping: Promise<void> | null = null;

/** Stops the node, its transport, its server and its file, then exits with code 0. */
function stop(): Promise<void> {
  stopping ??= (async () => {
    try {
      await raft.shutdown();
      network.close();
      await server.close();
      await store.close();
    } catch (error) {
      fail("shutdown failed", error);
      return;
    }
    process.exit(0);
  })();
  return stopping;
}

function fail(what: string, error: unknown): void {
  exitOnFailure(String(id), what, error);
}
