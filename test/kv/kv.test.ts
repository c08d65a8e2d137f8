/**
 * Black-box tests of the example key-value service: three real processes of
 * examples/kv/main.ts, started with its CLI on the runtime running the tests (so `npm test`
 * exercises Node, Bun and Deno), used through HTTP only. One cluster serves the cases in order:
 * the API, redirects, bad requests, exactly-once retries, a node killed and restarted, the whole
 * cluster stopped and restarted from its data.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runtime } from "../helpers/runtime.ts";
import { KvCluster, type KvNode } from "./cluster.ts";

/** Per case: process start-ups and elections on a small, busy machine. */
const TIMEOUT = { timeout: 30_000 };

describe(`the example key-value service, 3 processes on ${runtime}`, () => {
  let dir = "";
  let cluster: KvCluster | undefined;
  let leader: KvNode | undefined;
  /** Keys written and acknowledged, with their values: they must survive every restart. */
  const acknowledged = new Map<string, string>();

  const kv = (): KvCluster => {
    assert.ok(cluster, "the first case started the cluster");
    return cluster;
  };
  const leaderNode = (): KvNode => {
    assert.ok(leader, "a leader was elected");
    return leader;
  };
  const follower = (): KvNode => {
    const f = kv().nodes.find((n) => n !== leader && n.child !== null);
    assert.ok(f, "a running follower");
    return f;
  };

  /** A request to `node`; redirects are not followed. */
  const request = (node: KvNode, path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${node.url}${path}`, { redirect: "manual", ...init });

  const put = async (node: KvNode, key: string, value: string, headers = {}) => {
    const response = await request(node, `/kv/${key}`, { method: "PUT", body: value, headers });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  const get = async (node: KvNode, key: string, query = "") => {
    const response = await request(node, `/kv/${key}${query}`);
    return { status: response.status, text: await response.text() };
  };

  const cas = async (
    node: KvNode,
    key: string,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const response = await request(node, `/kv/${key}/cas`, {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      headers: { "Content-Type": "application/json", ...headers },
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  /** Waits until every running node has applied `index` (for stale reads). */
  const appliedEverywhere = (index: number) =>
    kv().until(`every running node applied ${index}`, async () => {
      const running = kv().nodes.filter((n) => n.child !== null);
      const statuses = await Promise.all(running.map((n) => kv().status(n)));
      return statuses.every((s) => s !== null && s.lastApplied >= index) ? true : undefined;
    });

  /** On a failure, the nodes' stderr helps. */
  const withLogs =
    (fn: () => Promise<void>): (() => Promise<void>) =>
    async () => {
      try {
        await fn();
      } catch (error) {
        cluster?.dump();
        throw error;
      }
    };

  after(async () => {
    await cluster?.kill();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it(
    "forms the cluster given by --cluster and elects a leader",
    TIMEOUT,
    withLogs(async () => {
      dir = await mkdtemp(join(tmpdir(), "keel-kv-"));
      cluster = await KvCluster.create(dir, ["n1", "n2", "n3"]);
      for (const n of cluster.nodes) cluster.start(n);
      leader = await cluster.settled();
      const status = await cluster.status(leader);
      assert.ok(status);
      assert.equal(status.id, leader.id);
      assert.equal(status.role, "leader");
      assert.equal(status.leader, leader.id);
      assert.deepEqual([...status.membership.voters].sort(), ["n1", "n2", "n3"]);
      assert.deepEqual(status.membership.learners, []);
      for (const field of ["term", "commitIndex", "lastApplied", "lastLogIndex"] as const) {
        assert.equal(typeof status[field], "number", field);
      }
    }),
  );

  it(
    "puts, gets, deletes and compares-and-sets (200, 404, 409)",
    TIMEOUT,
    withLogs(async () => {
      const l = leaderNode();
      const first = await put(l, "alpha", "one");
      assert.equal(first.status, 200);
      assert.ok(Number.isInteger(first.body.index));
      assert.deepEqual(await get(l, "alpha"), { status: 200, text: "one" });
      assert.equal((await get(l, "missing")).status, 404);

      const second = await put(l, "alpha", "héllo wörld");
      assert.ok((second.body.index as number) > (first.body.index as number));
      assert.deepEqual(await get(l, "alpha"), { status: 200, text: "héllo wörld" });

      const deleted = await request(l, "/kv/alpha", { method: "DELETE" });
      assert.equal(deleted.status, 200);
      assert.ok(
        ((await deleted.json()) as { index: number }).index > (second.body.index as number),
      );
      assert.equal((await get(l, "alpha")).status, 404);

      // Compare-and-set: create when absent, fail on a mismatch (409 with the current value).
      const created = await cas(l, "beta", { expected: null, value: "1" });
      assert.equal(created.status, 200);
      assert.equal(created.body.ok, true);
      assert.ok(Number.isInteger(created.body.index));
      assert.deepEqual(await cas(l, "beta", { expected: null, value: "2" }), {
        status: 409,
        body: { ok: false, current: "1" },
      });
      assert.deepEqual((await cas(l, "beta", { expected: "0", value: "2" })).body, {
        ok: false,
        current: "1",
      });
      assert.equal((await cas(l, "beta", { expected: "1", value: "2" })).status, 200);
      assert.deepEqual((await cas(l, "gamma", { expected: "x", value: "y" })).body, {
        ok: false,
        current: null,
      });
      assert.deepEqual(await get(l, "beta"), { status: 200, text: "2" });
      acknowledged.set("beta", "2");
    }),
  );

  it(
    "a follower redirects to the leader (307) and serves stale reads itself",
    TIMEOUT,
    withLogs(async () => {
      const l = leaderNode();
      const f = follower();
      const written = await put(l, "delta", "d");
      acknowledged.set("delta", "d");

      for (const [method, path] of [
        ["PUT", "/kv/delta?x=1"],
        ["GET", "/kv/delta"],
        ["DELETE", "/kv/delta"],
        ["POST", "/kv/delta/cas"],
      ] as const) {
        const response = await request(f, path, {
          method,
          ...(method === "GET" ? {} : { body: "{}" }),
        });
        assert.equal(response.status, 307, `${method} ${path}`);
        assert.equal(response.headers.get("location"), `${l.url}${path}`);
        await response.body?.cancel();
      }
      // A redirect-following client gets through.
      const followed = await fetch(`${f.url}/kv/delta`);
      assert.deepEqual(
        { status: followed.status, text: await followed.text() },
        {
          status: 200,
          text: "d",
        },
      );

      await appliedEverywhere(written.body.index as number);
      assert.deepEqual(await get(f, "delta", "?consistency=stale"), { status: 200, text: "d" });
      assert.equal((await get(f, "nothing", "?consistency=stale")).status, 404);
    }),
  );

  it(
    "refuses bad requests with 400 and 413 and a message",
    TIMEOUT,
    withLogs(async () => {
      const l = leaderNode();
      const expectError = async (response: Response, status: number, what: string) => {
        assert.equal(response.status, status, what);
        const body = (await response.json()) as { error?: unknown };
        assert.equal(typeof body.error, "string", `${what}: a message`);
      };
      const longKey = "k".repeat(1025);
      await expectError(
        await request(l, `/kv/${longKey}`, { method: "PUT", body: "v" }),
        400,
        "key too long",
      );
      await expectError(await request(l, `/kv/${longKey}`), 400, "key too long (GET)");
      assert.equal((await put(l, "k".repeat(1024), "v")).status, 200, "a 1024-byte key");

      const big = new Uint8Array(1024 * 1024 + 1).fill(0x61);
      await expectError(
        await request(l, "/kv/big", { method: "PUT", body: big }),
        413,
        "body over 1 MiB",
      );
      assert.equal((await get(l, "big")).status, 404);

      await expectError(
        await request(l, "/kv/beta/cas", { method: "POST", body: '{"expected": "2",' }),
        400,
        "malformed JSON",
      );
      for (const body of [
        [],
        { value: "x" },
        { expected: 1, value: "x" },
        { expected: null, value: 2 },
        { expected: null, value: "x", extra: true },
      ]) {
        await expectError(
          await request(l, "/kv/beta/cas", { method: "POST", body: JSON.stringify(body) }),
          400,
          `cas body ${JSON.stringify(body)}`,
        );
      }
      await expectError(
        await request(l, "/kv/x", { method: "PUT", body: new Uint8Array([0xff, 0xfe]) }),
        400,
        "a value that is not UTF-8",
      );
      await expectError(await request(l, "/kv/x?consistency=weird"), 400, "unknown consistency");
      const badHeaders: Record<string, string>[] = [
        { "X-Client-Id": "c" },
        { "X-Request-Seq": "1" },
        { "X-Client-Id": "c", "X-Request-Seq": "0" },
        { "X-Client-Id": "c", "X-Request-Seq": "1.5" },
      ];
      for (const headers of badHeaders) {
        await expectError(
          await request(l, "/kv/x", { method: "PUT", body: "v", headers }),
          400,
          `headers ${JSON.stringify(headers)}`,
        );
      }
      assert.deepEqual(await get(l, "beta"), { status: 200, text: "2" }, "nothing changed");
    }),
  );

  it(
    "applies a retried write (same X-Client-Id and X-Request-Seq) once and answers it again",
    TIMEOUT,
    withLogs(async () => {
      const l = leaderNode();
      const session = (seq: number) => ({ "X-Client-Id": "client-1", "X-Request-Seq": `${seq}` });
      // A cas applied twice would fail the second time (409): the retry must return the first answer.
      const first = await cas(l, "counter", { expected: null, value: "1" }, session(1));
      assert.equal(first.status, 200);
      const retried = await cas(l, "counter", { expected: null, value: "1" }, session(1));
      assert.deepEqual(retried, first, "the retry gets the first answer, index included");

      // Retries racing each other: one application, one answer for all.
      const racing = await Promise.all(
        [1, 2, 3].map(() => cas(l, "counter", { expected: "1", value: "2" }, session(2))),
      );
      for (const r of racing) assert.deepEqual(r, racing[0]);
      assert.equal(racing[0]?.status, 200);

      const put3 = await put(l, "counter", "3", session(3));
      assert.deepEqual(await put(l, "counter", "3", session(3)), put3);
      assert.deepEqual(await get(l, "counter"), { status: 200, text: "3" });

      // A request older than the client's last is refused, not applied.
      const stale = await cas(l, "counter", { expected: "3", value: "old" }, session(2));
      assert.equal(stale.status, 409);
      assert.match(String(stale.body.error), /stale_request/);
      assert.deepEqual(await get(l, "counter"), { status: 200, text: "3" });
      acknowledged.set("counter", "3");
    }),
  );

  it(
    "a node killed with SIGKILL restarts from its data and catches up",
    TIMEOUT,
    withLogs(async () => {
      const c = kv();
      const victim = follower();
      await c.stop(victim, "SIGKILL");
      let last = 0;
      for (let i = 0; i < 20; i++) {
        const written = await put(leaderNode(), `missed-${i}`, `value ${i}`);
        assert.equal(written.status, 200);
        acknowledged.set(`missed-${i}`, `value ${i}`);
        last = written.body.index as number;
      }
      c.start(victim);
      await c.until(`${victim.id} caught up to ${last}`, async () => {
        const s = await c.status(victim);
        return s !== null && s.lastApplied >= last && s.leader === leaderNode().id ? s : undefined;
      });
      for (const [key, value] of acknowledged) {
        assert.deepEqual(await get(victim, key, "?consistency=stale"), {
          status: 200,
          text: value,
        });
      }
    }),
  );

  it(
    "the whole cluster stops gracefully and restarts from its data with every value",
    TIMEOUT,
    withLogs(async () => {
      const c = kv();
      const exits = await Promise.all(c.nodes.map((n) => c.stop(n, "SIGTERM")));
      for (const [i, exit] of exits.entries()) {
        const n = c.nodes[i] as KvNode;
        assert.match(n.log, new RegExp(`^${n.id} stopped$`, "m"), `${n.id} stopped gracefully`);
        // Deno's node:child_process reports the signal it sent even when the child handled it
        // and exited with code 0 (Node and Bun report code 0).
        const expected =
          runtime === "deno" ? { code: null, signal: "SIGTERM" } : { code: 0, signal: null };
        assert.deepEqual(exit, expected, `${n.id}'s exit`);
      }
      // Same --cluster: ignored, since every data directory exists.
      for (const n of c.nodes) c.start(n);
      leader = await c.settled();
      for (const [key, value] of acknowledged) {
        assert.deepEqual(await get(leader, key), { status: 200, text: value }, key);
      }
      assert.equal((await put(leader, "after-restart", "yes")).status, 200);
    }),
  );

  it(
    "a node started without --cluster waits uninitialized and answers 503 no_leader",
    TIMEOUT,
    withLogs(async () => {
      const lone = await KvCluster.create(dir, ["lone"]);
      const node = lone.node("lone");
      try {
        lone.start(node, { cluster: false });
        const status = await lone.until("the lone node answers", () =>
          lone.status(node).then((s) => s ?? undefined),
        );
        assert.deepEqual(status.membership.voters, []);
        assert.equal(status.leader, null);
        const response = await request(node, "/kv/x", { method: "PUT", body: "v" });
        assert.equal(response.status, 503);
        assert.ok(response.headers.get("retry-after"), "Retry-After");
        assert.deepEqual(await response.json(), { error: "no_leader" });
      } finally {
        await lone.kill();
      }
    }),
  );
});
