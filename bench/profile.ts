/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof` or `deno run --cpu-prof`): the functions
 * with the most self time and their inclusive (total) time; with `--lines`, the hottest source
 * lines (self time, inlined callees included) with their text.
 *
 *   npx tsx bench/profile.ts bench/results/prof/*.cpuprofile [--top 25] [--filter core] [--lines]
 *
 * `--filter` keeps only rows whose label contains the given text (percentages stay relative to
 * the whole profile). Line numbers are those of the script V8 ran: profile a bundle (see
 * bench/README.md) so that they point at readable JavaScript.
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

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let top = 25;
  let filter = "";
  let lines = false;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--top") top = Number(args[++i]);
    else if (arg === "--filter") filter = args[++i] ?? "";
    else if (arg === "--lines") lines = true;
    else files.push(arg);
  }
  if (files.length === 0) throw new Error("usage: bench/profile.ts FILE.cpuprofile... [--top N]");
  for (const file of files) {
    const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
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
