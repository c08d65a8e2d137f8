/**
 * Admin endpoints as a Hono sub-app: `app.route("/admin", adminRoutes(raft, { secret }))`.
 *
 * | route                  | JSON body                                        | 200 answer              |
 * |------------------------|--------------------------------------------------|-------------------------|
 * | POST /learners         | `{ id, addr, blocking? }`                        | `{ index, membership }` |
 * | POST /membership       | `{ voters: [id…] | { id: addr… }, retain? }`     | `{ index, membership }` |
 * | POST /transfer-leader  | `{ to? }` (or no body: the most up-to-date voter) | `{ leader }`            |
 * | GET /status            | —                                                | the node's metrics      |
 *
 * They call `Raft.addLearner`, `changeMembership` and `transferLeadership` (see docs/driver.md)
 * and answer once the change is committed (or leadership moved). Errors are JSON
 * `{ error: code, message }`:
 *
 * | status | code |
 * |--------|------|
 * | 400 | `invalid_request` (malformed JSON, wrong fields), `invalid_membership`, `unknown_target` |
 * | 401 | a secret is set and the request lacks it |
 * | 409 | `change_in_progress`, `transfer_in_progress`, `transfer_aborted` |
 * | 413 | `body_too_large` |
 * | 421 | `not_leader`, with `leaderId` and `leaderAddr` (null when no leader is known) |
 * | 503 | `leadership_lost` (outcome unknown), `unavailable` (the node stopped) |
 * | 504 | `timeout` (outcome unknown) |
 *
 * Admin requests change the cluster: always set a secret outside a trusted network.
 */
import { type Context, Hono } from "hono";
import * as v from "valibot";
import type { NodeId } from "../core/types.ts";
import { AdminError, FatalError, NotLeaderError, ShutdownError } from "../driver/errors.ts";
import type { RaftMetrics } from "../driver/metrics.ts";
import type { Raft } from "../driver/raft.ts";
import { BodyTooLargeError, readBody } from "./body.ts";
import { authorized } from "./routes.ts";
import { check, MAX_ADDRESS_BYTES, MAX_ID_BYTES, MAX_MEMBERS } from "./schemas.ts";

/** What the admin routes need of a node; `Raft` fits. */
export type RaftAdmin = Pick<
  Raft,
  "addLearner" | "changeMembership" | "transferLeadership" | "metrics"
>;

/** Options of {@link adminRoutes}. */
export interface AdminRoutesOptions {
  /** Cluster secret: every request must carry `Authorization: Bearer <secret>`, or gets a 401. */
  readonly secret?: string;
  /** Largest request body, in bytes (default 64 KiB). */
  readonly maxBodyBytes?: number;
  /** Timeout of each admin request (default: the node's `adminTimeoutMs`). */
  readonly timeoutMs?: number;
  /**
   * Turns an address given by a client into the member's Raft address (default: unchanged), for
   * services whose users know a node by its base URL. Throwing refuses the request with a 400.
   */
  readonly toRaftAddress?: (addr: string) => string;
  /** The reverse, for addresses in answers (the leader's address of a `not_leader`). */
  readonly fromRaftAddress?: (addr: string) => string;
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

const nodeId = v.pipe(
  v.string("expected a string"),
  v.minLength(1, "must not be empty"),
  v.maxBytes(MAX_ID_BYTES, `longer than ${MAX_ID_BYTES} bytes`),
);
const address = v.pipe(
  v.string("expected a string"),
  v.minLength(1, "must not be empty"),
  v.maxBytes(MAX_ADDRESS_BYTES, `longer than ${MAX_ADDRESS_BYTES} bytes`),
);
const flag = v.optional(v.boolean("expected a boolean"));
const learnerSchema = v.strictObject({ id: nodeId, addr: address, blocking: flag });
const membershipSchema = v.strictObject({
  voters: v.union(
    [
      v.pipe(
        v.array(nodeId, "expected an array"),
        v.maxLength(MAX_MEMBERS, `more than ${MAX_MEMBERS} voters`),
      ),
      v.pipe(
        v.record(nodeId, address),
        v.check((r) => Object.keys(r).length <= MAX_MEMBERS, `more than ${MAX_MEMBERS} voters`),
      ),
    ],
    "expected an array of ids or an object of id → address",
  ),
  retain: flag,
});
const transferSchema = v.strictObject({ to: v.optional(v.nullable(nodeId)) });

/** A request refused before it reaches the node. */
class BadRequest extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Returns a Hono app serving the admin routes for `raft` (see the module comment). Throws a
 * RangeError if `secret` is empty.
 */
export function adminRoutes(raft: RaftAdmin, options: AdminRoutesOptions = {}): Hono {
  if (options.secret === "") throw new RangeError("adminRoutes: secret must not be empty");
  const secret = options.secret === undefined ? null : encoder.encode(options.secret);
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  const toRaft = options.toRaftAddress ?? ((addr: string) => addr);
  const fromRaft = options.fromRaftAddress ?? ((addr: string) => addr);
  const { timeoutMs } = options;

  const app = new Hono();
  app.onError((error, c) => failure(c, error, fromRaft));
  if (secret !== null) {
    app.use("*", async (c, next) => {
      if (!authorized(c.req.header("authorization"), secret)) {
        c.header("WWW-Authenticate", 'Bearer realm="keel"');
        return c.json({ error: "unauthorized", message: "missing or wrong cluster secret" }, 401);
      }
      await next();
    });
  }

  app.get("/status", (c) => c.json(nodeStatus(raft.metrics.current)));

  app.post("/learners", async (c) => {
    const body = parse(learnerSchema, await json(c, maxBodyBytes));
    const addr = convert(toRaft, body.addr);
    const result = await raft.addLearner(body.id, addr, {
      ...(body.blocking === undefined ? {} : { blocking: body.blocking }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    return c.json(changed(result));
  });

  app.post("/membership", async (c) => {
    const body = parse(membershipSchema, await json(c, maxBodyBytes));
    let voters: NodeId[] | Record<NodeId, string>;
    if (Array.isArray(body.voters)) {
      voters = body.voters;
    } else {
      voters = {};
      for (const [id, addr] of Object.entries(body.voters)) voters[id] = convert(toRaft, addr);
    }
    const result = await raft.changeMembership(voters, {
      ...(body.retain === undefined ? {} : { retain: body.retain }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    return c.json(changed(result));
  });

  app.post("/transfer-leader", async (c) => {
    const body = parse(transferSchema, await json(c, maxBodyBytes, {}));
    const leader = await raft.transferLeadership(
      body.to ?? undefined,
      timeoutMs === undefined ? {} : { timeoutMs },
    );
    return c.json({ leader });
  });

  return app;
}

function changed(result: {
  index: number;
  membership: { voters: readonly NodeId[]; learners: readonly NodeId[] };
}) {
  const { voters, learners } = result.membership;
  return { index: result.index, membership: { voters, learners } };
}

/** The body as JSON; `empty` stands for an empty body where one is allowed. */
async function json(c: Context, maxBodyBytes: number, empty?: unknown): Promise<unknown> {
  let bytes: Uint8Array;
  try {
    bytes = await readBody(c.req.raw.body, maxBodyBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      throw new BadRequest(413, "body_too_large", `the body is over ${maxBodyBytes} bytes`);
    }
    throw new BadRequest(400, "invalid_request", "could not read the body");
  }
  if (bytes.length === 0 && empty !== undefined) return empty;
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch {
    throw new BadRequest(400, "invalid_request", "the body is not JSON");
  }
}

function parse<S extends v.GenericSchema>(schema: S, value: unknown): v.InferOutput<S> {
  const result = check(schema, value, (key) => `missing field ${key}`);
  if (result.ok) return result.output;
  const { path, problem } = result;
  throw new BadRequest(400, "invalid_request", path ? `${path}: ${problem}` : problem);
}

function convert(toRaft: (addr: string) => string, addr: string): string {
  try {
    return toRaft(addr);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new BadRequest(400, "invalid_request", `address ${addr}: ${reason}`);
  }
}

const statusOf: Record<AdminError["code"], 400 | 409 | 503 | 504> = {
  invalid_membership: 400,
  unknown_target: 400,
  change_in_progress: 409,
  transfer_in_progress: 409,
  transfer_aborted: 409,
  leadership_lost: 503,
  timeout: 504,
};

function failure(c: Context, error: unknown, fromRaft: (addr: string) => string): Response {
  if (error instanceof BadRequest) {
    return c.json({ error: error.code, message: error.message }, error.status);
  }
  if (error instanceof NotLeaderError) {
    return c.json(
      {
        error: "not_leader",
        message: error.message,
        leaderId: error.leaderId,
        leaderAddr: error.leaderAddr === null ? null : fromRaft(error.leaderAddr),
      },
      421,
    );
  }
  if (error instanceof AdminError) {
    return c.json({ error: error.code, message: error.message }, statusOf[error.code]);
  }
  if (error instanceof ShutdownError || error instanceof FatalError) {
    return c.json({ error: "unavailable", message: error.message }, 503);
  }
  return c.json({ error: "internal", message: "internal error" }, 500);
}

/**
 * A node's metrics as a `/status` route answers them: role, term, leader, indexes (the
 * snapshot's and the log's first among them, §7), membership and, on the leader, each
 * follower's replication progress. The example service's `/status` narrows the membership.
 */
export function nodeStatus(m: RaftMetrics) {
  return {
    id: m.id,
    role: m.role,
    term: m.term,
    leader: m.leaderId,
    commitIndex: m.commitIndex,
    lastApplied: m.lastApplied,
    lastLogIndex: m.lastLogIndex,
    snapshotIndex: m.snapshotIndex,
    snapshotTerm: m.snapshotTerm,
    firstLogIndex: m.firstLogIndex,
    membership: m.membership,
    replication: m.replication,
  };
}
