/**
 * The recent latencies of first attempts for one model in one pool, from
 * which the hedge delay is read. A ring of the last SIZE samples; the
 * percentile is recomputed at most every REFRESH_EVERY samples, so recording
 * and reading cost a request O(1) and the sort is amortised.
 *
 * A first attempt cancelled because its hedge answered first is recorded with
 * the time it had waited, a lower bound. Recording only the ones that finished
 * would hide exactly the slow tail, the delay would shrink, and hedging would
 * feed on itself; with the lower bound, the share of requests slower than the
 * p95 stays about 5%, and so does the share hedged.
 */
const SIZE = 512;
const REFRESH_EVERY = 32;

export class LatencyWindow {
  private readonly samples = new Float64Array(SIZE);
  private count = 0;
  private next = 0;
  private sinceRefresh = 0;
  private cached = new Map<number, number>();

  record(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % SIZE;
    if (this.count < SIZE) this.count++;
    if (++this.sinceRefresh >= REFRESH_EVERY) {
      this.sinceRefresh = 0;
      // Replaced, not cleared: a cleared Map's table points at its successor, which can keep a chain of them alive past scavenges (coalescer.ts, flush).
      this.cached = new Map();
    }
  }

  get size(): number {
    return this.count;
  }

  /** The p-th percentile (0–100) of the samples held, nearest rank; undefined while fewer than `minSamples`. */
  percentile(p: number, minSamples: number): number | undefined {
    if (this.count < Math.max(1, minSamples)) return undefined;
    let value = this.cached.get(p);
    if (value === undefined) {
      const sorted = this.samples.slice(0, this.count).sort();
      value = sorted[Math.min(this.count - 1, Math.max(0, Math.ceil((p / 100) * this.count) - 1))]!;
      this.cached.set(p, value);
    }
    return value;
  }
}
