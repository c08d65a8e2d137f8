/** Output shared by the benchmarks: the runtime's name, a right-aligned table, the JSON file. */
import { mkdir, writeFile } from "node:fs/promises";
import process from "node:process";

export function runtime(): { name: string; version: string } {
  const g = globalThis as {
    Deno?: { version: { deno: string } };
    Bun?: { version: string };
  };
  if (g.Deno) return { name: "deno", version: g.Deno.version.deno };
  if (g.Bun) return { name: "bun", version: g.Bun.version };
  return { name: "node", version: process.versions.node ?? "unknown" };
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Prints `rows` under `header`, every column right-aligned to its widest cell. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => c.padStart(widths[i] ?? 0)).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

/** Writes `report` as JSON to `out` (creating its folder) and says where. */
export async function writeReport(out: string | URL, report: unknown): Promise<void> {
  if (out instanceof URL) await mkdir(new URL(".", out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${out instanceof URL ? out.pathname : out}`);
}
