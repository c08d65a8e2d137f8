/**
 * Black-box test of the example service's admin API: a fourth process started without
 * `--cluster` joins a running 3-node cluster as a learner (POST /admin/learners), becomes a voter
 * (POST /admin/membership), catches up on the data and takes over leadership
 * (POST /admin/transfer-leader). HTTP only, on the runtime running the tests.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runtime } from "../helpers/runtime.ts";
import { KvCluster, type KvNode } from "./cluster.ts";

const SECRET = "admin-test-secret";

describe(`the example service's admin API, on ${runtime}`, () => {
  let dir = "";
  let cluster: KvCluster | undefined;

  after(async () => {
    await cluster?.kill();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  const admin = async (
    node: KvNode,
    path: string,
    body: unknown,
    secret: string | null = SECRET,
  ) => {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (secret !== null) headers.Authorization = `Bearer ${secret}`;
    const response = await fetch(`${node.url}/admin${path}`, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it("adds a node started without --cluster as a learner, then as a voter; it applies the data", {
    timeout: 60_000,
  }, async () => {
    dir = await mkdtemp(join(tmpdir(), "keel-kv-admin-"));
    const c = await KvCluster.create(dir, ["n1", "n2", "n3"], { secret: SECRET });
    cluster = c;
    try {
      for (const n of c.nodes) c.start(n);
      const leader = await c.settled();
      for (let i = 0; i < 10; i++) {
        const response = await fetch(`${leader.url}/kv/k${i}`, { method: "PUT", body: `v${i}` });
        assert.equal(response.status, 200);
        await response.body?.cancel();
      }
      const n4 = await c.addNode("n4");
      c.start(n4, { cluster: false });
      await c.until("n4 answers", () => c.status(n4).then((s) => s ?? undefined));

      const learner = { id: "n4", addr: n4.url };
      assert.equal((await admin(leader, "/learners", learner, null)).status, 401);
      assert.equal((await admin(leader, "/learners", learner, "wrong")).status, 401);
      const follower = c.nodes.find((n) => n !== leader && n !== n4) as KvNode;
      const misdirected = await admin(follower, "/learners", learner);
      assert.equal(misdirected.status, 421);
      assert.equal(misdirected.body.error, "not_leader");
      assert.equal(misdirected.body.leaderId, leader.id);
      assert.equal(misdirected.body.leaderAddr, leader.url);
      const bad = await admin(leader, "/learners", { id: "n4" });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, "invalid_request");
      const noAddr = await admin(leader, "/membership", { voters: ["n1", "n2", "n3", "n5"] });
      assert.equal(noAddr.status, 400);
      assert.equal(noAddr.body.error, "invalid_membership");

      const added = await admin(leader, "/learners", learner);
      assert.equal(added.status, 200, JSON.stringify(added.body));
      assert.deepEqual(added.body.membership, { voters: ["n1", "n2", "n3"], learners: ["n4"] });
      const asLearner = await c.until("n4 is a learner with the data", async () => {
        const s = await c.status(n4);
        return s && s.role === "learner" && s.lastApplied >= 10 ? s : undefined;
      });
      assert.deepEqual(asLearner.membership.learners, ["n4"]);

      const promoted = await admin(leader, "/membership", { voters: ["n1", "n2", "n3", "n4"] });
      assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
      assert.deepEqual(promoted.body.membership, {
        voters: ["n1", "n2", "n3", "n4"],
        learners: [],
      });
      const written = await fetch(`${leader.url}/kv/after`, { method: "PUT", body: "yes" });
      const { index } = (await written.json()) as { index: number };
      const status = await c.until("n4 is a voter and applied the data", async () => {
        const s = await c.status(n4);
        return s && s.role === "follower" && s.lastApplied >= index ? s : undefined;
      });
      assert.deepEqual([...status.membership.voters].sort(), ["n1", "n2", "n3", "n4"]);
      for (const [key, value] of [
        ["k0", "v0"],
        ["k9", "v9"],
        ["after", "yes"],
      ]) {
        const response = await fetch(`${n4.url}/kv/${key}?consistency=stale`);
        assert.equal(await response.text(), value, key);
      }

      const moved = await admin(leader, "/transfer-leader", { to: "n4" });
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      assert.deepEqual(moved.body, { leader: "n4" });
      assert.equal((await c.settled()).id, "n4");
    } catch (error) {
      c.dump();
      throw error;
    }
  });
});
