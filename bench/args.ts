/** Command-line options shared by the benchmarks: timing, output, and one list of levels. */
import process from "node:process";
import { parseArgs } from "node:util";

export interface BenchArgs {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly levels: readonly number[];
  readonly out: string | URL;
  /** Values of the benchmark's own extra options, by name. */
  readonly extra: Readonly<Record<string, number>>;
}

export interface BenchArgsSpec {
  readonly usage: string;
  /** The option naming the levels, e.g. "sizes" or "writers", and their default. */
  readonly levelsName: string;
  readonly levels: readonly number[];
  readonly out: URL;
  /** Seconds per level and warm-up, normally and with --quick. */
  readonly seconds: { readonly normal: number; readonly quick: number };
  readonly warmup: { readonly normal: number; readonly quick: number };
  /** Extra positive-number options and their defaults. */
  readonly extra?: Readonly<Record<string, number>>;
}

/** Parses `argv` (without the runtime and script); prints usage and exits on --help. */
export function benchArgs(argv: readonly string[], spec: BenchArgsSpec): BenchArgs {
  const extraNames = Object.keys(spec.extra ?? {});
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
      seconds: { type: "string" },
      warmup: { type: "string" },
      out: { type: "string" },
      [spec.levelsName]: { type: "string" },
      ...Object.fromEntries(extraNames.map((name) => [name, { type: "string" as const }])),
    },
  });
  if (values.help) {
    console.log(spec.usage);
    process.exit(0);
  }
  const number = (name: string, min: number): number | undefined => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}`);
    return n;
  };
  const quick = values.quick === true;
  const list = values[spec.levelsName];
  const levels =
    typeof list === "string"
      ? list.split(",").map((s) => {
          const n = Math.floor(Number(s));
          if (!(n > 0)) throw new Error(`--${spec.levelsName}: expected positive numbers`);
          return n;
        })
      : spec.levels;
  const extra: Record<string, number> = {};
  for (const name of extraNames) {
    extra[name] = Math.floor(number(name, 1) ?? (spec.extra?.[name] as number));
  }
  return {
    seconds: number("seconds", 0.001) ?? (quick ? spec.seconds.quick : spec.seconds.normal),
    warmupSeconds: number("warmup", 0) ?? (quick ? spec.warmup.quick : spec.warmup.normal),
    levels,
    out: typeof values.out === "string" ? values.out : spec.out,
    extra,
  };
}
