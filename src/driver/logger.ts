/** Structured logging. Every line carries the node, its role and its term. */

/** Severity of a log line, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * Structured context of a log line: the node's `id`, `role` and `term`, plus what the event
 * carries (a peer, an index, an error). Values are plain data, safe for `JSON.stringify`.
 */
export type LogFields = Record<string, unknown>;

/**
 * Where the driver's log lines go (`Raft`'s `logger` option). Adapt your logging library to it
 * (pino, winston, `console`); {@link consoleLogger} writes JSON lines, {@link silentLogger}
 * drops them.
 */
export interface Logger {
  /**
   * Records one event. Called synchronously from the driver's loop: it must not throw, and
   * should not block (buffer slow sinks).
   */
  log(level: LogLevel, message: string, fields: LogFields): void;
}

/** The default: says nothing. */
export const silentLogger: Logger = { log() {} };

/** One JSON object per line on the console, at `minLevel` and above. */
export function consoleLogger(minLevel: LogLevel = "info"): Logger {
  const order: LogLevel[] = ["debug", "info", "warn", "error"];
  const min = order.indexOf(minLevel);
  return {
    log(level, message, fields) {
      if (order.indexOf(level) < min) return;
      console.log(JSON.stringify({ level, message, ...fields }));
    },
  };
}
