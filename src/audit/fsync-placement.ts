/**
 * Where an audit batch's fdatasync runs: on the event loop's own thread, or
 * on libuv's thread pool.
 *
 * On the thread pool the event loop keeps serving while the disk works, but
 * every batch pays two hand-offs (a futex wake of a pool thread, then an
 * eventfd wake back), and under load the pool thread and then the loop each
 * wait for a core. Measured on the 2-core development VM at 32 connections
 * (its disk syncs in about 0.35 ms when idle): a sync on the loop took 0.58 ms
 * at p50, the same sync through the pool came back after 2.85 ms, and the
 * requests of a batch wait for it either way. In A/B runs of two builds (10
 * interleaved rounds each, 32 connections), syncing every batch on the loop
 * gave a median of per-round CPU ratios of 0.92 (709 → 650 µs per request,
 * p99 72 → 67 ms), and this class's rule 0.90 and 0.97 in two runs (0.95
 * over their 20 rounds; p99 66 → 63.5 and 63.5 → 62 ms). What the loop gives
 * up is the sync's duration, during which it reads no new request.
 *
 * That trade pays while the disk is fast. Single slow syncs are common under
 * load (p90 2.25 ms, p99 6 ms on that VM) and change nothing; a disk whose
 * syncs stay slow (a spinning disk, a failing or overloaded device) would
 * hold the loop for longer than many requests' worth of work, so when the
 * smoothed duration passes `slowMs` the batches of the next `poolForMs` go to
 * the thread pool, and then the loop measures the disk afresh. A quiet
 * gateway (no request in progress but those being recorded) syncs on the
 * loop whatever the disk: nothing else is waiting (at one connection, two
 * A/B runs of that alone: p50 0.30 and 0.14 ms lower, CPU per request 8% and
 * 1% lower).
 */
export class FsyncPlacement {
  /** Exponentially weighted mean of recent syncs on the loop (weight 0.2 for the newest); none yet, or none since a spell on the pool. */
  private typicalMs: number | undefined;
  private poolUntil = -Infinity;

  constructor(
    /** Smoothed sync duration above which batches go to the thread pool. */
    readonly slowMs = 4,
    /** For this long, after which the next sync on the loop starts the mean afresh. */
    readonly poolForMs = 1_000,
  ) {}

  /** True: sync this batch on the event loop's thread; false: on the thread pool. */
  onLoop(quiet: boolean, now: number): boolean {
    return quiet || now >= this.poolUntil;
  }

  /** How long a sync on the loop took (milliseconds, at `now`). */
  tookOnLoop(ms: number, now: number): void {
    this.typicalMs = this.typicalMs === undefined ? ms : 0.8 * this.typicalMs + 0.2 * ms;
    if (this.typicalMs <= this.slowMs) {
      this.poolUntil = -Infinity;
      return;
    }
    this.poolUntil = now + this.poolForMs;
    // The first sync after the spell measures the disk as it is then, not as it was.
    this.typicalMs = undefined;
  }
}
