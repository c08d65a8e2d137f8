/** The runtime running this process, its adapter, and the command that runs a script on it. */
import process from "node:process";
import type { FetchApp, ServeOptions, Server } from "../../adapters/server.ts";
import type {
  SqliteDatabase,
  SqliteLogStore,
  SqliteLogStoreOptions,
} from "../../src/storage/sqlite.ts";

export type RuntimeName = "node" | "bun" | "deno";

export const runtime: RuntimeName =
  "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

export interface Adapter {
  serve(app: FetchApp, options?: ServeOptions): Promise<Server>;
  /** The runtime's SQLite file wrapped in the store's driver interface. */
  openSqliteDatabase(path: string): Promise<SqliteDatabase>;
  /** A SqliteLogStore on the runtime's SQLite. */
  openSqliteLogStore(path: string, options?: SqliteLogStoreOptions): Promise<SqliteLogStore>;
}

/** Loads adapters/<runtime>.ts; the specifier is computed so no runtime loads another's adapter. */
export async function loadAdapter(): Promise<Adapter> {
  const specifier = `../../adapters/${runtime}.ts`;
  return (await import(specifier)) as Adapter;
}

/**
 * The command that runs the TypeScript file `script` on the running runtime, in a child process:
 * Node through tsx (`node --import <tsx> script`), `bun script`, `deno run -A script`.
 */
export function scriptCommand(script: string): { command: string; args: string[] } {
  const command = process.execPath;
  switch (runtime) {
    case "node":
      return { command, args: ["--import", import.meta.resolve("tsx"), script] };
    case "bun":
      return { command, args: [script] };
    case "deno":
      return { command, args: ["run", "-A", script] };
  }
}

/** An error's message, with its cause's message when it has one. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.message}${cause}`;
}

/** Ends a node process on an unrecoverable error: one line naming it, its stack, exit code 1. */
export function exitOnFailure(node: string, what: string, error: unknown): never {
  process.stderr.write(`${runtime} ${node}: ${what}: ${describeError(error)}\n`);
  if (error instanceof Error && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
  process.exit(1);
}
