/** Structured logging. Every line carries the node, its role and its term. */
export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, unknown>;

export interface Logger {
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
