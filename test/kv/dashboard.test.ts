/**
 * The dashboard of the example key-value service (examples/kv/dashboard.ts), on three real
 * processes:
 *
 * - `GET /cluster` on every node reports all three members, the leader's replication lag per
 *   follower, and allows cross-origin reads from the members' origins only (every runtime).
 * - In a real browser (headless Chromium from Debian's `chromium` package, driven by
 *   playwright-core, so under Node only): the page opened on the leader shows three nodes and the
 *   leader; the leader is killed; the page, now fed by another node, shows the new leader and the
 *   old one down. Every wait is on a page or cluster condition, with a timeout.
 *
 * Without /usr/bin/chromium the browser case is skipped, unless KEEL_REQUIRE_CHROMIUM=1 (set by
 * .ci/run after installing it). `UPDATE_SCREENSHOT=1` writes the final page to docs/dashboard.png.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { runtime } from "../helpers/runtime.ts";
import { KvCluster, type KvNode, WAIT_MS } from "./cluster.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const root = fileURLToPath(new URL("../../", import.meta.url));

const browserSkip: string | false =
  runtime !== "node"
    ? `drives Chromium through playwright-core, which runs under Node: it runs under the Node test runner only (this is ${runtime})`
    : !existsSync(CHROMIUM) && process.env.KEEL_REQUIRE_CHROMIUM !== "1"
      ? `${CHROMIUM} is absent: install Debian's chromium package (apt-get install -y chromium) to run it`
      : false;

interface MemberView {
  id: string;
  url: string | null;
  kind: string;
  up: boolean;
  status: {
    id: string;
    role: string;
    leader: string | null;
    replication: Record<string, { matchIndex: number; lag: number }>;
  } | null;
  error?: string;
}

describe(`the dashboard of the example key-value service, 3 processes on ${runtime}`, () => {
  let dir = "";
  let cluster: KvCluster | undefined;

  const kv = (): KvCluster => {
    assert.ok(cluster, "the first case started the cluster");
    return cluster;
  };

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

  /** Puts `count` keys through `node`, `parallel` at a time; returns the highest index. */
  const writes = async (node: KvNode, prefix: string, count: number, parallel = 8) => {
    let next = 0;
    let highest = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < count) {
          const key = `${prefix}${next++}`;
          const response = await fetch(`${node.url}/kv/${key}`, { method: "PUT", body: key });
          const body = await response.text();
          assert.equal(response.status, 200, `PUT ${key}: ${body}`);
          const { index } = JSON.parse(body) as { index: number };
          highest = Math.max(highest, index);
        }
      }),
    );
    return highest;
  };

  after(async () => {
    await cluster?.kill();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it(
    "GET /cluster on any node reports every member and the leader's replication lag; GET / is the page",
    { timeout: 30_000 },
    withLogs(async () => {
      dir = await mkdtemp(join(tmpdir(), "keel-dashboard-"));
      cluster = await KvCluster.create(dir, ["n1", "n2", "n3"]);
      for (const n of cluster.nodes) cluster.start(n);
      const leader = await cluster.settled();
      const index = await writes(leader, "warm", 20);

      for (const node of cluster.nodes) {
        // Every member's status as this node sees it, once the followers caught up with `index`.
        const nodes = await kv().until(
          `${node.id}'s /cluster with every member caught up`,
          async () => {
            const response = await fetch(`${node.url}/cluster`);
            assert.equal(response.status, 200);
            const view = (await response.json()) as { via: string; nodes: MemberView[] };
            assert.equal(view.via, node.id);
            const lead = view.nodes.find((n) => n.status?.role === "leader");
            const lags = Object.values(lead?.status?.replication ?? {});
            const caughtUp = lags.length === 2 && lags.every((r) => r.matchIndex >= index);
            return caughtUp ? view.nodes : undefined;
          },
        );
        assert.deepEqual(
          nodes.map((n) => [n.id, n.url, n.kind, n.up]),
          cluster.nodes.map((n) => [n.id, n.url, "voter", true]),
        );
        for (const n of nodes) assert.equal(n.status?.leader, leader.id, `${n.id} sees the leader`);
        const replication = nodes.find((n) => n.id === leader.id)?.status?.replication ?? {};
        assert.deepEqual(
          Object.keys(replication).sort(),
          cluster.nodes.filter((n) => n !== leader).map((n) => n.id),
        );
        for (const r of Object.values(replication)) assert.equal(typeof r.lag, "number");
      }

      // Cross-origin reads: a member's origin may (the page's fallback), any other may not.
      const [a, b] = cluster.nodes as [KvNode, KvNode];
      const member = await fetch(`${a.url}/cluster`, { headers: { Origin: b.url } });
      assert.equal(member.headers.get("access-control-allow-origin"), b.url);
      await member.body?.cancel();
      const stranger = await fetch(`${a.url}/cluster`, {
        headers: { Origin: "http://evil.example" },
      });
      assert.equal(stranger.headers.get("access-control-allow-origin"), null);
      await stranger.body?.cancel();

      const page = await fetch(`${a.url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
      assert.match(await page.text(), /<title>Keel cluster<\/title>/);
    }),
  );

  it(
    "in Chromium: shows 3 nodes and the leader, and the new leader after the leader is killed",
    { skip: browserSkip, timeout: 90_000 },
    withLogs(async () => {
      assert.ok(
        existsSync(CHROMIUM),
        `${CHROMIUM} is absent and KEEL_REQUIRE_CHROMIUM=1: apt-get install -y chromium`,
      );
      const c = kv();
      const leader = await c.settled();
      const { chromium } = await import("playwright-core");
      const profile = await mkdtemp(join(tmpdir(), "keel-chromium-"));
      let context: BrowserContext | undefined;
      try {
        context = await chromium.launchPersistentContext(profile, {
          executablePath: CHROMIUM,
          headless: true,
          args: CHROMIUM_ARGS,
          viewport: { width: 1100, height: 520 },
        });
        const page = context.pages()[0] ?? (await context.newPage());
        const wait = { timeout: WAIT_MS };

        // The page on the leader: three rows, all up, and the leader named.
        await page.goto(`${leader.url}/`, wait);
        await page.waitForSelector(`#leader[data-leader="${leader.id}"]`, wait);
        await page.waitForSelector(`#via:text-is("${leader.id}")`, wait);
        for (const n of c.nodes) {
          const role = n === leader ? "leader" : "follower";
          await page.waitForSelector(
            `tr[data-node="${n.id}"][data-up="true"][data-role="${role}"]`,
            wait,
          );
        }
        assert.equal(await page.locator("#nodes tr[data-node]").count(), 3);
        // Each follower's replication lag, from the leader's metrics.
        for (const n of c.nodes.filter((n) => n !== leader)) {
          await page.waitForSelector(
            `tr[data-node="${n.id}"] td[data-lag]:not([data-lag=""])`,
            wait,
          );
        }
        // Writes show on the page's commit index and in the throughput chart.
        const before = await writes(leader, "before", 200);
        await page.waitForFunction(
          `Number(document.getElementById("commit").textContent) >= ${before}`,
          undefined,
          wait,
        );

        // Kill the leader (the page's own node): the page asks another node, shows the new leader.
        await c.stop(leader, "SIGKILL");
        const next = await c.settled();
        assert.notEqual(next.id, leader.id);
        await page.waitForSelector(`#leader[data-leader="${next.id}"]`, wait);
        await page.waitForSelector(
          `tr[data-node="${leader.id}"][data-up="false"][data-role="down"]`,
          wait,
        );
        await page.waitForSelector(
          `tr[data-node="${next.id}"][data-up="true"][data-role="leader"]`,
          wait,
        );
        assert.equal(await page.locator("#nodes tr[data-node]").count(), 3);
        assert.notEqual(await page.locator("#via").textContent(), leader.id);

        const afterward = await writes(next, "after", 200);
        await page.waitForFunction(
          `Number(document.getElementById("commit").textContent) >= ${afterward}`,
          undefined,
          wait,
        );
        await page.waitForSelector("#chart path", wait);
        await screenshot(page, dir);
      } finally {
        await context?.close();
        await rm(profile, { recursive: true, force: true });
      }
    }),
  );
});

/** The page as it is now: into docs/ with UPDATE_SCREENSHOT=1, else next to the cluster's data. */
async function screenshot(page: Page, dir: string): Promise<void> {
  const path =
    process.env.UPDATE_SCREENSHOT === "1"
      ? join(root, "docs", "dashboard.png")
      : join(dir, "dashboard.png");
  await page.screenshot({ path, fullPage: true });
  assert.ok(existsSync(path), `a screenshot at ${path}`);
}
