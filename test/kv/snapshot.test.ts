/**
 * Black-box test of snapshots in the example service, over real HTTP between processes with
 * SQLite files: POST /admin/snapshot compacts a node's log; a node added after compaction and a
 * node restarted after missing the kept log catch up through a snapshot streamed over
 * /raft/install-snapshot, map and exactly-once session table included.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runtime } from "../helpers/runtime.ts";
import { KvCluster, type KvNode, type Status } from "./cluster.ts";

const SECRET = "kv-snapshot-secret";
const TRAILING = 2;

describe(`the example service's snapshots, on ${runtime}`, () => {
  let dir = "";
  let cluster: KvCluster | undefined;

  after(async () => {
    await cluster?.kill();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  const auth = { Authorization: `Bearer ${SECRET}` };

  async function snapshot(node: KvNode, headers: Record<string, string> = auth) {
    const response = await fetch(`${node.url}/admin/snapshot`, { method: "POST", headers });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async function put(node: KvNode, key: string, value: string, session?: [string, number]) {
    const headers: Record<string, string> = {};
    if (session) {
      headers["X-Client-Id"] = session[0];
      headers["X-Request-Seq"] = String(session[1]);
    }
    const response = await fetch(`${node.url}/kv/${key}`, { method: "PUT", body: value, headers });
    assert.equal(response.status, 200, `PUT ${key}`);
    return (await response.json()) as { index: number };
  }

  async function stale(node: KvNode, key: string): Promise<string | null> {
    const response = await fetch(`${node.url}/kv/${key}?consistency=stale`);
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    return response.text();
  }

  it("compacts on POST /admin/snapshot; added and restarted nodes catch up through a snapshot", {
    timeout: 120_000,
  }, async () => {
    dir = await mkdtemp(join(tmpdir(), "keel-kv-snapshot-"));
    const c = await KvCluster.create(dir, ["n1", "n2", "n3"], {
      secret: SECRET,
      args: ["--snapshot-threshold", "0", "--snapshot-trailing-entries", String(TRAILING)],
    });
    cluster = c;
    try {
      for (const n of c.nodes) c.start(n);
      let leader = await c.settled();
      for (let i = 0; i < 20; i++) await put(leader, `k${i}`, `v${i}`);
      const once = await put(leader, "once", "first", ["client-1", 7]);

      assert.equal((await snapshot(leader, {})).status, 401);
      const taken = await snapshot(leader);
      assert.equal(taken.status, 200, JSON.stringify(taken.body));
      const index = taken.body.index as number;
      assert.ok(index >= once.index, `snapshot ${index} covers the writes`);
      const compacted = (await c.status(leader)) as Status;
      assert.equal(compacted.snapshotIndex, index);
      assert.equal(compacted.firstLogIndex, index - TRAILING + 1);
      // Nothing applied since: the same snapshot again.
      assert.equal((await snapshot(leader)).body.index, index);

      // A new node gets the snapshot (the leader no longer has the log before it), then the log.
      const n4 = await c.addNode("n4");
      c.start(n4, { cluster: false });
      await c.until("n4 answers", () => c.status(n4).then((s) => s ?? undefined));
      const added = await fetch(`${leader.url}/admin/learners`, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: JSON.stringify({ id: "n4", addr: n4.url, blocking: true }),
      });
      assert.equal(added.status, 200, await added.text());
      const promoted = await fetch(`${leader.url}/admin/membership`, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: JSON.stringify({ voters: ["n1", "n2", "n3", "n4"] }),
      });
      assert.equal(promoted.status, 200, await promoted.text());
      const after = await put(leader, "after", "yes");
      const joined = await c.until("n4 installed the snapshot and applied the log", async () => {
        const s = await c.status(n4);
        return s && s.lastApplied >= after.index ? s : undefined;
      });
      assert.ok(joined.snapshotIndex >= index, `n4's snapshot ${joined.snapshotIndex}`);
      assert.ok(
        joined.firstLogIndex > index - TRAILING,
        `n4's log starts at ${joined.firstLogIndex}`,
      );
      for (const key of ["k0", "k19", "once", "after"]) {
        assert.equal(await stale(n4, key), await stale(leader, key), key);
      }

      // A follower killed, then left behind the kept log, catches up on restart.
      const lagging = c.nodes.find((n) => n !== leader && n !== n4) as KvNode;
      await c.stop(lagging, "SIGKILL");
      for (let i = 0; i < 10; i++) await put(leader, `late${i}`, `w${i}`);
      const second = (await snapshot(leader)).body.index as number;
      assert.ok(second > index);
      c.start(lagging);
      const caughtUp = await c.until("the restarted node catches up", async () => {
        const s = await c.status(lagging);
        return s && s.snapshotIndex >= second && s.lastApplied >= second ? s : undefined;
      });
      assert.ok(caughtUp.firstLogIndex > index, `its log starts at ${caughtUp.firstLogIndex}`);
      assert.equal(await stale(lagging, "late9"), "w9");
      assert.equal(await stale(lagging, "k3"), "v3");

      // The session table travelled in the snapshot: n4 leads and answers the retry from it.
      const moved = await fetch(`${leader.url}/admin/transfer-leader`, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: JSON.stringify({ to: "n4" }),
      });
      assert.equal(moved.status, 200, await moved.text());
      leader = await c.settled();
      assert.equal(leader.id, "n4");
      const retried = await put(leader, "once", "second", ["client-1", 7]);
      assert.equal(retried.index, once.index, "the retry is answered with the first index");
      assert.equal(await stale(leader, "once"), "first");
    } catch (error) {
      c.dump();
      throw error;
    }
  });
});
