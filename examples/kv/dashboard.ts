/**
 * The live dashboard of the example key-value service, served by every node:
 *
 * | route        | answer                                                                     |
 * |--------------|----------------------------------------------------------------------------|
 * | GET /        | the page: plain HTML and one inline script, no build step                  |
 * | GET /cluster | every member's /status, fetched by this node: `{ via, time, nodes }`       |
 *
 * The page polls `/cluster` on its own node every 500 ms, so the browser needs to reach one node
 * only. This node finds the members in its membership (a member's Raft address is `<base>/raft`)
 * and asks each for `/status` with a short timeout; a member that does not answer is marked down.
 * If the page's own node goes down, the script asks the other members' `/cluster` instead: for
 * that, `/cluster` allows cross-origin reads from the members' own origins (CORS), and no other.
 *
 * Replication lag comes from the leader's `/status` (`replication`: matchIndex and lag of each
 * follower). The throughput chart is drawn by the script from successive readings of the highest
 * commit index: committed entries per second over the last minute.
 */
import { Hono } from "hono";
import type { NodeId } from "../../src/core/types.ts";
import type { Raft } from "../../src/driver/raft.ts";

/** How long a member may take to answer /status before it is shown as down. */
const PEER_TIMEOUT_MS = 400;
/** Views younger than this are served from memory: many open pages cost one fan-out. */
const CACHE_MS = 200;

export interface DashboardOptions {
  /** Where the members' Raft routes are mounted below their base URLs. */
  readonly raftPath: string;
  /** This node's /status body. */
  readonly status: () => unknown;
}

/** One member as /cluster reports it. */
export interface MemberView {
  readonly id: NodeId;
  /** Base URL (the Raft address minus the Raft path), or null when the address is unknown. */
  readonly url: string | null;
  readonly kind: "voter" | "outgoing" | "learner";
  readonly up: boolean;
  /** The member's /status body while up, else null. */
  readonly status: unknown;
  /** Why it is down. */
  readonly error?: string;
}

export interface ClusterView {
  /** The node that answered. */
  readonly via: NodeId;
  /** Its clock, in ms since the epoch. */
  readonly time: number;
  readonly nodes: readonly MemberView[];
}

/** GET / and GET /cluster, to mount at the root of the service's app. */
export function dashboardRoutes(raft: Raft, options: DashboardOptions): Hono {
  const app = new Hono();
  let cached: { at: number; view: Promise<ClusterView> } | null = null;

  app.get("/", (c) => {
    c.header("Cache-Control", "no-store");
    return c.html(DASHBOARD_HTML);
  });

  app.get("/cluster", async (c) => {
    const now = Date.now();
    if (cached === null || now - cached.at > CACHE_MS) {
      cached = { at: now, view: clusterView(raft, options) };
    }
    const view = await cached.view;
    const origin = c.req.header("origin");
    if (origin !== undefined && memberOrigins(raft, options.raftPath).has(origin)) {
      c.header("Access-Control-Allow-Origin", origin);
    }
    c.header("Vary", "Origin");
    c.header("Cache-Control", "no-store");
    return c.json(view);
  });

  return app;
}

/** Every member's status: this node's from memory, the others' over HTTP, in parallel. */
async function clusterView(raft: Raft, options: DashboardOptions): Promise<ClusterView> {
  const m = raft.metrics.current;
  const { voters, outgoing = [], learners, addresses } = m.membership;
  const kinds = new Map<NodeId, MemberView["kind"]>();
  for (const id of learners) kinds.set(id, "learner");
  for (const id of outgoing) kinds.set(id, "outgoing");
  for (const id of voters) kinds.set(id, "voter");
  if (!kinds.has(m.id)) kinds.set(m.id, m.role === "learner" ? "learner" : "voter");

  const ids = [...kinds.keys()].sort();
  const nodes = await Promise.all(
    ids.map(async (id): Promise<MemberView> => {
      const address = addresses[id];
      const url = address === undefined ? null : baseUrl(address, options.raftPath);
      const kind = kinds.get(id) ?? "voter";
      if (id === m.id) return { id, url, kind, up: true, status: options.status() };
      if (url === null) return { id, url, kind, up: false, status: null, error: "no address" };
      try {
        return { id, url, kind, up: true, status: await fetchStatus(url) };
      } catch (error) {
        return { id, url, kind, up: false, status: null, error: reason(error) };
      }
    }),
  );
  return { via: m.id, time: Date.now(), nodes };
}

async function fetchStatus(url: string): Promise<unknown> {
  const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(PEER_TIMEOUT_MS) });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const body: unknown = await response.json();
  if (typeof body !== "object" || body === null) throw new Error("not a status");
  return body;
}

function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === "TimeoutError" || error.name === "AbortError") {
    return `no answer within ${PEER_TIMEOUT_MS} ms`;
  }
  return error.message;
}

/** `http://host:port/raft` → `http://host:port`. */
function baseUrl(address: string, raftPath: string): string {
  const trimmed = address.replace(/\/+$/, "");
  return trimmed.endsWith(raftPath) ? trimmed.slice(0, -raftPath.length) : trimmed;
}

/** The origins (scheme://host:port) of every member: the pages allowed to read /cluster. */
function memberOrigins(raft: Raft, raftPath: string): Set<string> {
  const origins = new Set<string>();
  for (const address of Object.values(raft.metrics.current.membership.addresses)) {
    try {
      origins.add(new URL(baseUrl(address, raftPath)).origin);
    } catch {
      // Not a URL: not an origin either.
    }
  }
  return origins;
}

/**
 * The page. Everything the script puts on the page from the cluster goes through textContent.
 * Hooks for tests: `#leader[data-leader]`, `tr[data-node][data-role][data-up]`, `#via`.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keel cluster</title>
<style>
  :root { --fg: #1d2430; --muted: #6b7483; --line: #e3e6ec; --bg: #f6f7f9; --card: #fff;
          --leader: #1f7a4d; --down: #b3261e; --accent: #2f6fdb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--fg); background: var(--bg); }
  main { max-width: 1040px; margin: 0 auto; padding: 20px; }
  header { display: flex; align-items: baseline; gap: 24px; flex-wrap: wrap; margin-bottom: 14px; }
  h1 { font-size: 20px; margin: 0; }
  .facts { display: flex; gap: 22px; flex-wrap: wrap; color: var(--muted); }
  .facts b { color: var(--fg); font-variant-numeric: tabular-nums; }
  #leader { color: var(--leader); }
  #leader[data-leader=""] { color: var(--down); }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
          padding: 14px 16px; margin-bottom: 16px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line);
           white-space: nowrap; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; }
  td.num, th.num { text-align: right; }
  tr:last-child td { border-bottom: 0; }
  tr[data-up="false"] td { color: var(--muted); }
  .role { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
          background: #eef1f5; }
  tr[data-role="leader"] .role { background: #dcf2e6; color: var(--leader); font-weight: 600; }
  tr[data-up="false"] .role { background: #fbe4e2; color: var(--down); font-weight: 600; }
  .lag { display: inline-flex; align-items: center; gap: 8px; }
  .bar { display: inline-block; width: 70px; height: 6px; background: #eef1f5; border-radius: 3px; }
  .bar i { display: block; height: 100%; background: var(--accent); border-radius: 3px; }
  .muted { color: var(--muted); }
  #error { color: var(--down); min-height: 1.45em; margin: 0 0 8px; }
  svg text { fill: var(--muted); font-size: 11px; }
  h2 { font-size: 14px; margin: 0 0 8px; display: flex; justify-content: space-between; }
</style>
</head>
<body>
<main>
  <header>
    <h1>Keel cluster</h1>
    <div class="facts">
      <span>leader <b id="leader" data-leader="">…</b></span>
      <span>term <b id="term">…</b></span>
      <span>commit index <b id="commit">…</b></span>
      <span>nodes up <b id="up">…</b></span>
      <span>via <b id="via">…</b></span>
    </div>
  </header>
  <p id="error"></p>
  <section class="card">
    <table>
      <thead><tr>
        <th>node</th><th>role</th><th class="num">term</th><th>sees leader</th>
        <th class="num">commit</th><th class="num">applied</th><th class="num">last log</th>
        <th class="num" title="the latest snapshot's index; the log starts at its first index">snapshot</th>
        <th>replication lag</th><th>address</th>
      </tr></thead>
      <tbody id="nodes"></tbody>
    </table>
  </section>
  <section class="card">
    <h2><span>Write throughput, last minute (committed entries/s)</span>
        <span class="muted" id="rate"></span></h2>
    <svg id="chart" viewBox="0 0 1000 180" width="100%" role="img"
         aria-label="committed entries per second over the last minute"></svg>
  </section>
</main>
<script>
"use strict";
var POLL_MS = 500, WINDOW_MS = 60000, TIMEOUT_MS = 2000;
var sources = [""];          // base URLs to ask for /cluster; "" is this page's own node
var current = 0;
var samples = [];            // { t, commit }: the highest commit index seen, over time
var changes = [];            // { t, leader }: leader changes, marked on the chart
var lastLeader = null;
var SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  var node = document.createElement(tag);
  for (var k in attrs) node.setAttribute(k, attrs[k]);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  var node = document.createElementNS(SVG, tag);
  for (var k in attrs) node.setAttribute(k, attrs[k]);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function fetchView(base) {
  var response = await fetch(base + "/cluster", {
    cache: "no-store", signal: AbortSignal.timeout(TIMEOUT_MS)
  });
  if (!response.ok) throw new Error("HTTP " + response.status);
  return response.json();
}

/** Asks the current source; on failure, every other known node in turn. */
async function poll() {
  for (var i = 0; i < sources.length; i++) {
    var index = (current + i) % sources.length;
    try {
      var view = await fetchView(sources[index]);
      current = index;
      return view;
    } catch (e) { /* next one */ }
  }
  return null;
}

function learnSources(view) {
  for (var i = 0; i < view.nodes.length; i++) {
    var url = view.nodes[i].url;
    if (url && url !== location.origin && sources.indexOf(url) < 0) sources.push(url);
  }
}

function leaderOf(view) {
  var best = null;
  view.nodes.forEach(function (n) {
    if (n.up && n.status && n.status.role === "leader" &&
        (best === null || n.status.term > best.status.term)) best = n;
  });
  return best;
}

function render(view, now) {
  learnSources(view);
  var leader = leaderOf(view);
  var up = view.nodes.filter(function (n) { return n.up && n.status; });
  var maxTerm = 0, maxCommit = 0;
  up.forEach(function (n) {
    maxTerm = Math.max(maxTerm, n.status.term);
    maxCommit = Math.max(maxCommit, n.status.commitIndex);
  });
  var leaderId = leader ? leader.id : "";
  var leaderEl = document.getElementById("leader");
  leaderEl.textContent = leader ? leader.id : "none";
  leaderEl.setAttribute("data-leader", leaderId);
  document.getElementById("term").textContent = String(leader ? leader.status.term : maxTerm);
  document.getElementById("commit").textContent = String(maxCommit);
  document.getElementById("up").textContent = up.length + " / " + view.nodes.length;
  document.getElementById("via").textContent = view.via;
  document.getElementById("error").textContent = "";

  var replication = (leader && leader.status.replication) || {};
  var lastIndex = leader ? leader.status.lastLogIndex : 0;
  var rows = view.nodes.map(function (n) {
    var s = n.status;
    var role = n.up && s ? s.role : "down";
    var tr = el("tr", { "data-node": n.id, "data-role": role, "data-up": String(n.up) });
    tr.appendChild(el("td", {}, n.id + (n.kind === "voter" ? "" : " (" + n.kind + ")")));
    var roleCell = el("td");
    roleCell.appendChild(el("span", { class: "role", title: n.error || "" }, role));
    tr.appendChild(roleCell);
    tr.appendChild(el("td", { class: "num" }, s ? String(s.term) : "–"));
    tr.appendChild(el("td", {}, s ? (s.leader === null ? "none" : s.leader) : "–"));
    tr.appendChild(el("td", { class: "num" }, s ? String(s.commitIndex) : "–"));
    tr.appendChild(el("td", { class: "num" }, s ? String(s.lastApplied) : "–"));
    tr.appendChild(el("td", { class: "num" }, s ? String(s.lastLogIndex) : "–"));
    var snap = el("td", { class: "num" }, s && s.snapshotIndex ? String(s.snapshotIndex) : "–");
    if (s && s.firstLogIndex) snap.setAttribute("title", "log from " + s.firstLogIndex);
    tr.appendChild(snap);
    var lagCell = el("td", { "data-lag": "" });
    var r = replication[n.id];
    if (leader && n.id === leader.id) {
      lagCell.appendChild(el("span", { class: "muted" }, "leader, last index " + lastIndex));
    } else if (r) {
      lagCell.setAttribute("data-lag", String(r.lag));
      var box = el("span", { class: "lag" });
      var bar = el("span", { class: "bar" });
      var width = r.lag <= 0 ? 0 : Math.min(100, 8 + Math.log10(1 + r.lag) * 30);
      bar.appendChild(el("i", { style: "width:" + width + "%" }));
      box.appendChild(bar);
      box.appendChild(el("span", {}, r.lag + " behind (match " + r.matchIndex + ")"));
      lagCell.appendChild(box);
    } else {
      lagCell.appendChild(el("span", { class: "muted" }, n.up ? "–" : (n.error || "down")));
    }
    tr.appendChild(lagCell);
    tr.appendChild(el("td", { class: "muted" }, n.url || "?"));
    return tr;
  });
  document.getElementById("nodes").replaceChildren.apply(document.getElementById("nodes"), rows);

  if (leaderId !== lastLeader) {
    if (leaderId !== "" && lastLeader !== null) changes.push({ t: now, leader: leaderId });
    lastLeader = leaderId;
  }
  var previous = samples.length ? samples[samples.length - 1].commit : 0;
  samples.push({ t: now, commit: Math.max(previous, maxCommit) });
  while (samples.length > 2 && samples[1].t < now - WINDOW_MS) samples.shift();
  while (changes.length && changes[0].t < now - WINDOW_MS) changes.shift();
  drawChart(now);
}

function drawChart(now) {
  var chart = document.getElementById("chart");
  var W = 1000, H = 180, L = 48, R = 8, T = 10, B = 24;
  var x = function (t) { return L + (W - L - R) * (1 - (now - t) / WINDOW_MS); };
  var rates = [];
  for (var i = 1; i < samples.length; i++) {
    var dt = (samples[i].t - samples[i - 1].t) / 1000;
    if (dt > 0) rates.push({ from: Math.max(samples[i - 1].t, now - WINDOW_MS), to: samples[i].t,
                             rate: (samples[i].commit - samples[i - 1].commit) / dt });
  }
  var peak = 0;
  rates.forEach(function (r) { peak = Math.max(peak, r.rate); });
  var top = niceCeil(Math.max(peak, 10));
  var y = function (v) { return T + (H - T - B) * (1 - v / top); };
  var parts = [];
  [0, top / 2, top].forEach(function (v) {
    parts.push(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e6ec" }));
    parts.push(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
  });
  [60, 45, 30, 15, 0].forEach(function (s) {
    var anchor = s === 60 ? "start" : s === 0 ? "end" : "middle";
    parts.push(svg("text", { x: x(now - s * 1000), y: H - 6, "text-anchor": anchor },
                   s === 0 ? "now" : "-" + s + " s"));
  });
  if (rates.length) {
    var d = "M" + x(rates[0].from) + " " + y(0);
    rates.forEach(function (r) { d += " L" + x(r.from) + " " + y(r.rate) + " L" + x(r.to) + " " + y(r.rate); });
    d += " L" + x(rates[rates.length - 1].to) + " " + y(0) + " Z";
    parts.push(svg("path", { d: d, fill: "rgba(47,111,219,0.15)", stroke: "#2f6fdb",
                             "stroke-width": 1.5, "stroke-linejoin": "round" }));
  } else {
    parts.push(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "collecting…"));
  }
  changes.forEach(function (c) {
    parts.push(svg("line", { x1: x(c.t), x2: x(c.t), y1: T, y2: H - B, stroke: "#1f7a4d",
                             "stroke-dasharray": "4 3" }));
    var right = x(c.t) > W - 120;
    parts.push(svg("text", { x: x(c.t) + (right ? -4 : 4), y: T + 10,
                             "text-anchor": right ? "end" : "start" }, "leader " + c.leader));
  });
  chart.replaceChildren.apply(chart, parts);
  chart.setAttribute("data-samples", String(samples.length));
  var recent = rates.slice(-4);
  var sum = 0, span = 0;
  recent.forEach(function (r) { sum += r.rate * (r.to - r.from); span += r.to - r.from; });
  document.getElementById("rate").textContent = span > 0 ? "now " + fmt(sum / span) + "/s" : "";
}

function niceCeil(v) {
  var p = Math.pow(10, Math.floor(Math.log10(v)));
  var steps = [1, 2, 5, 10];
  for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
  return 10 * p;
}

function fmt(v) {
  return v >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
}

async function loop() {
  var started = performance.now();
  var view = await poll();
  if (view) render(view, Date.now());
  else document.getElementById("error").textContent =
    "No node answers (tried " + sources.length + "); retrying…";
  setTimeout(loop, Math.max(0, POLL_MS - (performance.now() - started)));
}
loop();
</script>
</body>
</html>
`;
