/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof` or `deno run --cpu-prof`): the functions
 * with the most self time and their inclusive (total) time; with `--lines`, the hottest source
 * lines (self time, inlined callees included) with their text.
 *
 *   npx tsx bench/profile.ts bench/results/prof/*.cpuprofile [--top 25] [--filter core] [--lines]
 *                            [--layers] [--window writer]
 *
 * `--filter` keeps only rows whose label contains the given text (percentages stay relative to
 * the whole profile). Line numbers are those of the script V8 ran: profile a bundle (see
 * bench/README.md) so that they point at readable JavaScript.
 *
 * `--layers` groups the time by layer of the library instead (core step, driver, memory network,
 * memory store, state machine, harness, GC, runtime). Every sample goes to the innermost frame
 * that is project code, so time spent in built-ins and runtime internals (Map.set, setTimeout,
 * promise resolution) counts for the project function that called them; GC, idle and `(program)`
 * keep their own rows. Modules are told apart by the source URL, or inside an esbuild bundle by
 * the `// src/...` comments esbuild writes before each module. Under each layer its top
 * functions are listed with that inclusive-of-built-ins self time (`self+`) and plain `self`.
 *
 * `--window NAME` keeps only the samples from the first to the last whose stack holds a function
 * called NAME (`--window writer` for bench/inproc.ts: its measuring loop without setup, settling
 * and sorting of latencies).
 */
import { readFile } from "node:fs/promises";
import process from "node:process";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
  readonly hitCount?: number;
  readonly positionTicks?: readonly { readonly line: number; readonly ticks: number }[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

interface Row {
  readonly name: string;
  self: number;
  total: number;
}

function label(frame: CallFrame): string {
  const name = frame.functionName || "(anonymous)";
  if (!frame.url) return name;
  const file = frame.url.slice(frame.url.lastIndexOf("/") + 1);
  return `${name} ${file}:${frame.lineNumber + 1}`;
}

function summarize(profile: CpuProfile): { rows: Row[]; totalMicros: number } {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const rows = new Map<string, Row>();
  const row = (key: string): Row => {
    let r = rows.get(key);
    if (!r) {
      r = { name: key, self: 0, total: 0 };
      rows.set(key, r);
    }
    return r;
  };
  let totalMicros = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    totalMicros += dt;
    let id: number | undefined = profile.samples[i] as number;
    const seen = new Set<string>();
    let first = true;
    while (id !== undefined) {
      const node = byId.get(id);
      if (!node) break;
      const key = label(node.callFrame);
      const r = row(key);
      if (first) r.self += dt;
      first = false;
      if (!seen.has(key)) {
        seen.add(key); // recursion counts once toward total
        r.total += dt;
      }
      id = parent.get(id);
    }
  }
  return { rows: [...rows.values()], totalMicros };
}

/** Self ticks per source line (from positionTicks), with the line's text when readable. */
async function hotLines(profile: CpuProfile): Promise<{ name: string; share: number }[]> {
  let totalTicks = 0;
  const ticks = new Map<string, { url: string; fn: string; line: number; ticks: number }>();
  for (const node of profile.nodes) {
    totalTicks += node.hitCount ?? 0;
    for (const pt of node.positionTicks ?? []) {
      const key = `${node.callFrame.url}:${pt.line}:${node.callFrame.functionName}`;
      const entry = ticks.get(key);
      if (entry) entry.ticks += pt.ticks;
      else
        ticks.set(key, {
          url: node.callFrame.url,
          fn: node.callFrame.functionName || "(anonymous)",
          line: pt.line,
          ticks: pt.ticks,
        });
    }
  }
  const sources = new Map<string, string[] | undefined>();
  const rows: { name: string; share: number }[] = [];
  for (const t of ticks.values()) {
    if (!sources.has(t.url)) {
      let lines: string[] | undefined;
      try {
        if (t.url.startsWith("file:")) lines = (await readFile(new URL(t.url), "utf8")).split("\n");
      } catch {
        lines = undefined;
      }
      sources.set(t.url, lines);
    }
    const text = sources.get(t.url)?.[t.line - 1]?.trim().slice(0, 90) ?? "";
    const file = t.url.slice(t.url.lastIndexOf("/") + 1);
    rows.push({ name: `${t.fn} ${file}:${t.line}  ${text}`, share: t.ticks / totalTicks });
  }
  return rows.sort((a, b) => b.share - a.share);
}

/** Layers of the library, by module path (relative to the repository) and function name. */
const layerRules: readonly { layer: string; module: RegExp; fn?: RegExp }[] = [
  { layer: "core step", module: /^src\/core\// },
  { layer: "driver", module: /^src\/driver\// },
  { layer: "memory network", module: /^src\/net\// },
  { layer: "memory store", module: /^src\/storage\// },
  { layer: "state machine", module: /^(bench|test)\//, fn: /^(apply|lastApplied)$/ },
  { layer: "harness", module: /^(bench|test)\// },
];

function layerOf(module: string, fn: string): string {
  for (const rule of layerRules) {
    if (rule.module.test(module) && (!rule.fn || rule.fn.test(fn))) return rule.layer;
  }
  return "other project code";
}

/** The project module (repository-relative) of a path, or null for node_modules and runtimes. */
function projectModule(path: string): string | null {
  if (path.includes("node_modules/")) return null;
  const match = /(?:^|\/)((?:src|bench|test|adapters)\/.*)$/.exec(path);
  return match ? (match[1] as string) : null;
}

/** A script V8 ran, with what is needed to map its lines (1-based) to modules and functions. */
class Script {
  readonly #lines: readonly string[] | null;
  /** esbuild's `// path` comments: the line (0-based) where each module of a bundle starts. */
  readonly #markers: readonly { line: number; path: string }[];
  readonly #path: string;
  readonly #functions = new Map<number, string | null>();

  constructor(url: string, lines: readonly string[] | null, root: string) {
    this.#lines = lines;
    this.#path = url.startsWith(root) ? url.slice(root.length) : url;
    const markers: { line: number; path: string }[] = [];
    lines?.forEach((text, i) => {
      // esbuild names modules relative to its working directory: src/core/step.ts,
      // node_modules/..., or ../copy/src/core/step.ts for a bundle of a copy of the repository.
      const match = /^\/\/ (\S+\.[cm]?[jt]s)$/.exec(text);
      if (match) markers.push({ line: i, path: match[1] as string });
    });
    this.#markers = markers;
  }

  /** The project module of line `line` (0-based), or null when it is not project code. */
  moduleAt(line: number): string | null {
    if (this.#markers.length === 0) return projectModule(this.#path);
    let path: string | null = null;
    for (const m of this.#markers) {
      if (m.line > line) break;
      path = m.path;
    }
    return path === null ? null : projectModule(path);
  }

  /** Whether source lines can be told apart (a readable bundle: inlined code can be placed). */
  get readable(): boolean {
    return this.#lines !== null && this.#markers.length > 0;
  }

  /**
   * Name of the named function around line `line` (1-based), found by walking up with a brace
   * count (a heuristic for esbuild's output: anonymous callbacks count for their enclosing
   * function). Null when none is found.
   */
  functionAt(line: number): string | null {
    const cached = this.#functions.get(line);
    if (cached !== undefined) return cached;
    const lines = this.#lines ?? [];
    let depth = 0;
    let name: string | null = null;
    for (let i = line - 1; i >= 0 && name === null; i--) {
      const text = lines[i] ?? "";
      if (/^\/\/ \S+$/.test(text)) break; // start of the module
      const opens = (text.match(/\{/g) ?? []).length;
      const closes = (text.match(/\}/g) ?? []).length;
      depth += closes - opens;
      if (i < line - 1 || opens > closes) {
        if (depth >= 0) continue;
        depth = 0;
        const header =
          /^\s*(?:static\s+)?(?:async\s+)?(?:get\s+|set\s+)?\*?(#?[\w$]+)\s*\([^)]*\)\s*\{\s*$/.exec(
            text,
          ) ??
          /function\s*\*?\s*([\w$]+)\s*\(/.exec(text) ??
          /(?:const|let|var)\s+([\w$]+)\s*=\s*(?:async\s*)?(?:\([^)]*\)|[\w$]+)\s*=>\s*\{\s*$/.exec(
            text,
          );
        const candidate = header?.[1];
        if (candidate && !/^(if|for|while|switch|catch|with)$/.test(candidate)) name = candidate;
      }
    }
    this.#functions.set(line, name);
    return name;
  }
}

async function loadScripts(profile: CpuProfile): Promise<Map<string, Script>> {
  const root = new URL("..", import.meta.url).href;
  const scripts = new Map<string, Script>();
  for (const node of profile.nodes) {
    const url = node.callFrame.url;
    if (scripts.has(url)) continue;
    let lines: string[] | null = null;
    if (url.startsWith("file:")) {
      try {
        lines = (await readFile(new URL(url), "utf8")).split("\n");
      } catch {
        lines = null;
      }
    }
    scripts.set(url, new Script(url, lines, root));
  }
  return scripts;
}

/**
 * The profile cut to the samples from the first to the last one whose stack holds a function
 * named `name` (the benchmark's measuring loop, say), leaving out setup and teardown.
 */
function window(profile: CpuProfile, name: string): CpuProfile | null {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const inside = new Map<number, boolean>();
  const holds = (id: number): boolean => {
    let result = inside.get(id);
    if (result === undefined) {
      const node = byId.get(id);
      const up = parent.get(id);
      result = node?.callFrame.functionName === name || (up !== undefined && holds(up));
      inside.set(id, result);
    }
    return result;
  };
  let first = -1;
  let last = -1;
  profile.samples.forEach((id, i) => {
    if (!holds(id)) return;
    if (first < 0) first = i;
    last = i;
  });
  if (first < 0) return null;
  return {
    nodes: profile.nodes,
    samples: profile.samples.slice(first, last + 1),
    timeDeltas: profile.timeDeltas.slice(first, last + 1),
  };
}

/**
 * Time per layer. Each sample is charged to its innermost project frame; in a readable bundle
 * that frame's time is then split over its source lines (V8's positionTicks, which also cover
 * code inlined into it) and every line goes to the module and function it is written in.
 */
async function layers(profile: CpuProfile, top: number): Promise<void> {
  const scripts = await loadScripts(profile);
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const special = new Map<string, number>();
  /** Per charged node: time as the leaf (self) and time in non-project code it called. */
  const charged = new Map<number, { self: number; called: number }>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const leaf = byId.get(profile.samples[i] as number);
    if (!leaf) continue;
    const leafName = leaf.callFrame.functionName;
    let kind: string | null = null;
    if (leafName === "(idle)") {
      idle += dt;
      continue;
    }
    if (leafName === "(garbage collector)") kind = "GC";
    else if (leafName === "(program)") kind = "runtime: (program), native VM work";
    else {
      kind = "runtime: microtask queue, timers, built-ins outside project code";
      for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
        const node = byId.get(id) as ProfileNode;
        const script = scripts.get(node.callFrame.url);
        if (script?.moduleAt(node.callFrame.lineNumber) == null) continue;
        let c = charged.get(id);
        if (!c) {
          c = { self: 0, called: 0 };
          charged.set(id, c);
        }
        if (node === leaf) c.self += dt;
        else c.called += dt;
        kind = null;
        break;
      }
    }
    if (kind !== null) special.set(kind, (special.get(kind) ?? 0) + dt);
  }

  const rows = new Map<string, { layer: string; selfPlus: number; self: number }>();
  const charge = (module: string, fn: string, label: string, self: number, called: number) => {
    const key = `${fn}  ${module}${label}`;
    let row = rows.get(key);
    if (!row) {
      row = { layer: layerOf(module, fn), selfPlus: 0, self: 0 };
      rows.set(key, row);
    }
    row.self += self;
    row.selfPlus += self + called;
  };
  for (const [id, c] of charged) {
    const node = byId.get(id) as ProfileNode;
    const frame = node.callFrame;
    const script = scripts.get(frame.url) as Script;
    const fn = frame.functionName || "(anonymous)";
    const module = script.moduleAt(frame.lineNumber) as string;
    const ticks = node.positionTicks ?? [];
    const sum = ticks.reduce((n, t) => n + t.ticks, 0);
    if (!script.readable || sum === 0) {
      charge(module, fn, "", c.self, c.called);
      continue;
    }
    for (const t of ticks) {
      const share = t.ticks / sum;
      const lineModule = script.moduleAt(t.line - 1) ?? module;
      const lineFn = script.functionAt(t.line) ?? fn;
      const inlined = lineModule !== module || lineFn !== fn ? ` (inlined into ${fn})` : "";
      charge(lineModule, lineFn, inlined, c.self * share, c.called * share);
    }
  }

  const layerTime = new Map<string, number>(special);
  for (const row of rows.values()) {
    layerTime.set(row.layer, (layerTime.get(row.layer) ?? 0) + row.selfPlus);
  }
  const busy = total - idle;
  const pct = (micros: number) => `${((100 * micros) / busy).toFixed(1).padStart(5)}%`;
  console.log(
    `  ${(busy / 1e6).toFixed(2)} s busy (${(idle / 1e6).toFixed(2)} s idle left out); per layer ` +
      "its share, then its top functions: self+ (self and the built-ins it called), self",
  );
  for (const [layer, time] of [...layerTime].sort((a, b) => b[1] - a[1])) {
    console.log(`${pct(time)}  ${layer}`);
    const shown = [...rows]
      .filter(([, r]) => r.layer === layer)
      .sort((a, b) => b[1].selfPlus - a[1].selfPlus)
      .slice(0, top);
    for (const [name, r] of shown)
      console.log(`        ${pct(r.selfPlus)} ${pct(r.self)}  ${name}`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let top = 25;
  let filter = "";
  let lines = false;
  let byLayer = false;
  let windowFn = "";
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--top") top = Number(args[++i]);
    else if (arg === "--filter") filter = args[++i] ?? "";
    else if (arg === "--lines") lines = true;
    else if (arg === "--layers") byLayer = true;
    else if (arg === "--window") windowFn = args[++i] ?? "";
    else files.push(arg);
  }
  if (files.length === 0) throw new Error("usage: bench/profile.ts FILE.cpuprofile... [--top N]");
  for (const file of files) {
    let profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
    if (windowFn) {
      const cut = window(profile, windowFn);
      if (!cut) {
        console.log(`${file}: no sample has ${windowFn} on its stack (another thread?): skipped`);
        continue;
      }
      profile = cut;
    }
    if (byLayer) {
      console.log(`${file}:`);
      await layers(profile, top);
      continue;
    }
    const { rows, totalMicros } = summarize(profile);
    const pct = (micros: number) => `${((100 * micros) / totalMicros).toFixed(1).padStart(5)}%`;
    console.log(`${file}: ${(totalMicros / 1e6).toFixed(2)} s sampled`);
    console.log("  self  total  function");
    const shown = rows
      .filter((r) => r.name.includes(filter))
      .sort((a, b) => b.self - a.self)
      .slice(0, top);
    for (const r of shown) console.log(`${pct(r.self)} ${pct(r.total)}  ${r.name}`);
    if (lines) {
      console.log("  self  line");
      const hot = (await hotLines(profile)).filter((r) => r.name.includes(filter)).slice(0, top);
      for (const r of hot) console.log(`${(100 * r.share).toFixed(1).padStart(5)}%  ${r.name}`);
    }
  }
}

await main();
