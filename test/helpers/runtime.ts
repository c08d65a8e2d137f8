/** The adapter of the runtime running the tests, so one suite exercises all three. */
import type { FetchApp, ServeOptions, Server } from "../../adapters/server.ts";

export type RuntimeName = "node" | "bun" | "deno";

export const runtime: RuntimeName =
  "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

interface Adapter {
  serve(app: FetchApp, options?: ServeOptions): Promise<Server>;
}

/** Loads adapters/<runtime>.ts; the specifier is computed so no runtime loads another's adapter. */
export async function loadAdapter(): Promise<Adapter> {
  const specifier = `../../adapters/${runtime}.ts`;
  return (await import(specifier)) as Adapter;
}
