/**
 * What the side-by-side benchmarks (floor.ts, transport.ts) share: their options and the order
 * of their runs, every side at every level in every round, the first side rotating.
 */
import { parseArgs } from "node:util";

export interface InterleaveArgs<Side extends string> {
  readonly levels: readonly number[];
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly rounds: number;
  readonly sides: readonly Side[];
  readonly out: string | undefined;
}

/**
 * `--connections`, `--seconds`, `--warmup`, `--rounds`, `--sides`, `--out` from `argv`, checked:
 * levels and rounds positive integers, seconds positive, warm-up not negative, sides among `known`.
 */
export function interleaveArgs<Side extends string>(
  argv: readonly string[],
  known: readonly Side[],
  defaults: { readonly connections: string; readonly rounds: string; readonly sides: string },
): InterleaveArgs<Side> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      connections: { type: "string", default: defaults.connections },
      seconds: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      rounds: { type: "string", default: defaults.rounds },
      sides: { type: "string", default: defaults.sides },
      out: { type: "string" },
    },
  });
  const levels = values.connections.split(",").map(Number);
  const seconds = Number(values.seconds);
  const warmupSeconds = Number(values.warmup);
  const rounds = Number(values.rounds);
  const sides = values.sides.split(",") as Side[];
  if (
    !levels.every((n) => Number.isSafeInteger(n) && n > 0) ||
    !(seconds > 0 && warmupSeconds >= 0 && Number.isSafeInteger(rounds) && rounds > 0) ||
    !sides.every((side) => known.includes(side))
  ) {
    throw new Error(
      "--connections, --rounds: positive integers; --seconds > 0; --warmup >= 0; " +
        `--sides: any of ${known.join(", ")}`,
    );
  }
  return { levels, seconds, warmupSeconds, rounds, sides, out: values.out };
}

/** Every run in order: for each round and level every side, the first rotating so none always
 * runs on a warmer machine. */
export function* interleaved<Side extends string>(
  args: InterleaveArgs<Side>,
): Generator<{ round: number; connections: number; side: Side }> {
  const { sides } = args;
  for (let round = 1; round <= args.rounds; round++) {
    for (const [i, connections] of args.levels.entries()) {
      const shift = (round + i) % sides.length;
      for (const side of [...sides.slice(shift), ...sides.slice(0, shift)]) {
        yield { round, connections, side };
      }
    }
  }
}
