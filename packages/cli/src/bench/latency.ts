/**
 * Latency samples and their summary.
 *
 * Every successful request's latency (ms, double precision) is kept, so percentiles are
 * exact (nearest rank over the sorted samples). A --total run allocates exactly --total
 * slots up front; a --duration run grows the array by doubling up to `cap` samples
 * (2M = 16 MiB by default) and from then on keeps a uniform random sample of all latencies
 * (reservoir sampling, Vitter's algorithm R), so percentiles stay unbiased. Count, sum,
 * sum of squares, min and max are kept over every sample whatever the cap.
 */

export const DEFAULT_SAMPLE_CAP = 2_000_000;

export interface LatencySummary {
  /** Number of latencies summarized (successful requests). */
  count: number;
  avg: number;
  stddev: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** Samples the percentiles were computed from (< count only when the cap was hit). */
  sampled: number;
}

export class LatencyRecorder {
  private samples: Float64Array;
  private kept = 0;
  private n = 0;
  private sum = 0;
  private sumSq = 0;
  private lo = Infinity;
  private hi = 0;

  constructor(
    expected: number | undefined,
    private readonly cap: number = DEFAULT_SAMPLE_CAP,
  ) {
    const initial = expected !== undefined ? Math.min(expected, cap) : Math.min(65_536, cap);
    this.samples = new Float64Array(Math.max(1, initial));
  }

  record(ms: number): void {
    this.n++;
    this.sum += ms;
    this.sumSq += ms * ms;
    if (ms < this.lo) this.lo = ms;
    if (ms > this.hi) this.hi = ms;
    if (this.kept < this.samples.length) {
      this.samples[this.kept++] = ms;
      return;
    }
    if (this.kept < this.cap) {
      const grown = new Float64Array(Math.min(this.cap, this.samples.length * 2));
      grown.set(this.samples);
      this.samples = grown;
      this.samples[this.kept++] = ms;
      return;
    }
    const j = Math.floor(Math.random() * this.n);
    if (j < this.cap) this.samples[j] = ms;
  }

  get count(): number {
    return this.n;
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.kept).sort();
    const pct = (p: number): number => {
      if (sorted.length === 0) return 0;
      const rank = Math.ceil((p / 100) * sorted.length);
      return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
    };
    const avg = this.n ? this.sum / this.n : 0;
    const variance = this.n ? Math.max(0, this.sumSq / this.n - avg * avg) : 0;
    return {
      count: this.n,
      avg,
      stddev: Math.sqrt(variance),
      min: this.n ? this.lo : 0,
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      p999: pct(99.9),
      max: this.hi,
      sampled: this.kept,
    };
  }
}
