/** A latency histogram with fixed relative precision, shared by the benchmarks. */
/**
 * Latencies (ms) counted in buckets under 0.8% wide: the bucket of a sample is its float64
 * exponent and the top 7 bits of its mantissa, so recording is a few integer operations and
 * percentiles need neither the samples nor a sort.
 */
export class Histogram {
  static readonly #float = new Float64Array(1);
  static readonly #words = new Uint32Array(Histogram.#float.buffer);
  /** Index of the word holding sign, exponent and high mantissa (1 on little-endian hosts). */
  static readonly #high = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
  static readonly #min = 1e-4;
  static readonly #base = Histogram.#bucketOf(Histogram.#min);
  readonly #counts = new Uint32Array(Histogram.#bucketOf(1e7) - Histogram.#base + 1);
  count = 0;
  sum = 0;
  max = 0;

  static #bucketOf(ms: number): number {
    Histogram.#float[0] = ms;
    return (Histogram.#words[Histogram.#high] as number) >>> 13;
  }

  /** The smallest value of bucket `bucket` (relative to #base). */
  static #lowerBound(bucket: number): number {
    Histogram.#words[Histogram.#high] = (bucket + Histogram.#base) << 13;
    Histogram.#words[1 - Histogram.#high] = 0;
    return Histogram.#float[0] as number;
  }

  record(ms: number): void {
    const counts = this.#counts;
    const bucket = Histogram.#bucketOf(ms < Histogram.#min ? Histogram.#min : ms) - Histogram.#base;
    counts[bucket < counts.length ? bucket : counts.length - 1]++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** The upper bound of the bucket holding the sample at `p` percent (NaN when empty). */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] as number;
      if (seen >= rank) return Math.min(this.max, Histogram.#lowerBound(i + 1));
    }
    return this.max;
  }
}
