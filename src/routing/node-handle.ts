import CircuitBreaker from 'opossum';
import { CdsError } from '../errors.js';
import type { PoolConfig } from '../config/schema.js';
import type { InferRequest, InferResult } from '../kserve/types.js';
import type { NodeClientLike } from './node-client.js';
import { NodeFailure, breakerOpen, countsAgainstNode, perTryTimeout, unexpectedFailure } from './retry-policy.js';

export type BreakerState = 'closed' | 'half_open' | 'open';

type Attempt = (request: InferRequest, deadline: number, requestId: string, signal: AbortSignal | undefined) => Promise<InferResult>;

/**
 * One node as the router sees it: its client, its circuit breaker, what it is
 * doing now and whether health checks say it may serve each model.
 */
export class NodeHandle {
  serverReady = false;
  /** Ever passed a health check: a new node joins at once, an ejected one needs several passes. */
  everReady = false;
  consecutivePasses = 0;
  /** Exponentially weighted recent latency of successful calls. */
  latencyMs: number | undefined;
  private latencyAt = 0;
  /** Start times of calls in flight, oldest first (a Map keeps insertion order, and starts only grow). */
  private readonly inFlightStarts = new Map<number, number>();
  private nextCall = 0;

  get inFlight(): number {
    return this.inFlightStarts.size;
  }
  private readonly readyModels = new Set<string>();
  private readonly breaker: CircuitBreaker<Parameters<Attempt>, InferResult>;

  constructor(readonly client: NodeClientLike, private readonly breakerConfig: PoolConfig['breaker'], onStateChange: (state: BreakerState) => void) {
    this.breaker = new CircuitBreaker<Parameters<Attempt>, InferResult>(
      (request, deadline, requestId, signal) => this.attempt(request, deadline, requestId, signal),
      {
        // The per-try timeout is enforced as a gRPC deadline in attempt(), so the call is cancelled, not abandoned.
        timeout: false,
        errorThresholdPercentage: breakerConfig.errorThresholdPercentage,
        volumeThreshold: breakerConfig.volumeThreshold,
        resetTimeout: breakerConfig.resetTimeoutMs,
        rollingCountTimeout: breakerConfig.rollingCountTimeoutMs,
        // The breaker decides from counts alone. With percentiles on (opossum's default), reading its stats, which
        // it does on every failed call to decide whether to open, concatenates and sorts every latency of the
        // rolling window: 2.5–3 ms of CPU per failed call with 20,000 calls in the window against 30–50 µs
        // without (npm run bench:breaker), spent on the event loop just when a node is failing. Its snapshots,
        // which nothing here reads, did the same once per bucket (every second by default).
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
        // Only node trouble opens the breaker; a caller's bad input or short deadline, or a hedge the gateway
        // cancelled, says nothing about the node.
        errorFilter: (err: unknown) => !countsAgainstNode(err),
      },
    );
    this.breaker.on('open', () => onStateChange('open'));
    this.breaker.on('halfOpen', () => onStateChange('half_open'));
    this.breaker.on('close', () => onStateChange('closed'));
  }

  get id(): string {
    return this.client.node.id;
  }

  get breakerState(): BreakerState {
    return this.breaker.opened ? 'open' : this.breaker.halfOpen ? 'half_open' : 'closed';
  }

  /**
   * The latency record, aged: it halves every `halfLifeMs` without a new
   * sample, so a node that was avoided for being slow gets probed again.
   */
  recentLatency(halfLifeMs: number): number {
    if (this.latencyMs === undefined) return 0;
    return this.latencyMs * 0.5 ** ((Date.now() - this.latencyAt) / halfLifeMs);
  }

  /**
   * How long the oldest call in flight has been waiting. A hung node finishes
   * nothing, so its latency record never grows (it even ages down) while its
   * calls pile up until the per-try timeout, which then fires for all of
   * them at once and asks more retries of the budget than it holds. The age
   * of what it owes is evidence the record lacks.
   */
  oldestInFlightMs(): number {
    const oldest = this.inFlightStarts.values().next();
    return oldest.done ? 0 : performance.now() - oldest.value;
  }

  /** Passive ejection: a node that just failed leaves rotation until health checks bring it back. */
  markFailed(): void {
    this.serverReady = false;
    this.consecutivePasses = 0;
  }

  canServe(model: string): boolean {
    return this.serverReady && this.readyModels.has(model) && !this.breaker.opened;
  }

  setModelReady(model: string, ready: boolean): void {
    if (ready) this.readyModels.add(model);
    else this.readyModels.delete(model);
  }

  /**
   * `signal` cancels the call when another copy of a hedged request answered
   * first. A half-open breaker's probe is never cancelled: opossum counts a
   * filtered error as success, which would close the breaker on no evidence.
   */
  async infer(request: InferRequest, deadline: number, requestId: string, signal?: AbortSignal): Promise<InferResult> {
    const started = performance.now();
    const call = this.nextCall++;
    this.inFlightStarts.set(call, started);
    try {
      const result = await this.breaker.fire(request, deadline, requestId, this.breaker.halfOpen ? undefined : signal);
      this.recordLatency(performance.now() - started);
      return result;
    } catch (err) {
      if (err instanceof CdsError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'EOPENBREAKER') throw breakerOpen(this.id);
      throw unexpectedFailure(this.id, err);
    } finally {
      this.inFlightStarts.delete(call);
    }
  }

  /**
   * This node's call was overtaken: a hedge sent `waitedMs` later to another
   * node answered first. The call's true latency is unknown and larger than
   * `waitedMs`, and blending the lower bound in would tell the balancer a
   * slow node is nearly as fast as the rest, so it would keep getting first
   * calls only for them to be hedged. Doubling (at least the wait) keeps it
   * avoided; its next success blends the real figure back in, and the record
   * ages like any other.
   */
  recordOvertaken(waitedMs: number): void {
    this.latencyMs = 2 * Math.max(this.latencyMs ?? 0, waitedMs);
    this.latencyAt = Date.now();
  }

  private recordLatency(ms: number): void {
    this.latencyMs = this.latencyMs === undefined ? ms : 0.8 * this.latencyMs + 0.2 * ms;
    this.latencyAt = Date.now();
  }

  private async attempt(request: InferRequest, deadline: number, requestId: string, signal: AbortSignal | undefined): Promise<InferResult> {
    const perTryDeadline = Math.min(deadline, Date.now() + this.breakerConfig.timeoutMs);
    try {
      return await this.client.infer(request, perTryDeadline, requestId, signal);
    } catch (err) {
      // Our per-try timeout (not the caller's deadline) ran out: the node is slow or hung.
      if (err instanceof NodeFailure && err.kind === 'deadline_exceeded' && perTryDeadline < deadline) {
        throw perTryTimeout(this.id, this.breakerConfig.timeoutMs);
      }
      throw err;
    }
  }

  shutdown(): void {
    this.breaker.shutdown();
    this.client.close();
  }
}
