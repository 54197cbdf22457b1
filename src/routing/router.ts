import { CdsError } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import type { InferRequest, InferResult, ModelMetadata } from '../kserve/types.js';
import type { Logger } from '../phi/logger.js';
import { NodeClient, NodeFailure, type ClientTlsMaterial } from './node-client.js';
import { NodeHandle, type BreakerState } from './node-handle.js';
import { Admission } from './admission.js';
import { LatencyWindow } from './latency-window.js';

/** How fast a node's latency record fades without new samples. */
const LATENCY_HALF_LIFE_MS = 2_000;

export interface RouterEvents {
  breakerChanged(node: string, state: BreakerState): void;
  nodeReadiness(node: string, ready: boolean): void;
  retried(pool: string): void;
  retryBudgetExhausted(pool: string): void;
  /** A hedged request settled: `won` the hedge answered first, `lost` the first call did, `failed` neither. */
  hedged(pool: string, model: string, outcome: 'won' | 'lost' | 'failed'): void;
}

type Hedging = NonNullable<GatewayConfig['models'][string]['hedging']>;

/** One call to one node on behalf of a request. */
interface Attempt {
  node: NodeHandle;
  role: 'first' | 'retry' | 'hedge';
  startedAt: number;
  /** Only with hedging can a call still be running when another settles the request. */
  controller: AbortController | undefined;
  /** Settles, never rejects: the loop decides what a failure means. */
  outcome: Promise<Settled>;
}
type Settled = { attempt: Attempt; result: InferResult } | { attempt: Attempt; error: unknown };

const HEDGE_TIMER = Symbol('hedge timer');

interface Pool {
  name: string;
  members: NodeHandle[];
  models: string[];
  config: GatewayConfig['pools'][string];
  nextStart: number;
  admission: Admission;
  /** Retries and hedges in flight, both drawn from the retry budget. */
  retriesInFlight: number;
  /** Recent first-attempt latency per hedged model, for the hedge delay (others record nothing). */
  latency: Map<string, LatencyWindow>;
}

/**
 * Pools of nodes per model. Picks the ready node with the fewest requests in
 * flight (weighted by recent latency), retries a node failure on another node
 * while the deadline and the retry budget allow, and, for models with hedging,
 * sends a second copy when the first is slower than the recent p95. Never
 * parses tensors.
 */
export class Router {
  private readonly nodes = new Map<string, NodeHandle>();
  private readonly pools = new Map<string, Pool>();
  private readonly modelPool = new Map<string, Pool>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly hedging = new Map<string, Hedging>();

  constructor(config: GatewayConfig, tls: ClientTlsMaterial, private readonly events: RouterEvents, private readonly log: Logger) {
    const breakerOf = (nodeId: string) =>
      Object.values(config.pools).find((p) => p.nodes.includes(nodeId))?.breaker ?? Object.values(config.pools)[0]!.breaker;
    for (const node of config.nodes) {
      const client = new NodeClient(node, tls, config.gateway.grpc.maxMessageBytes);
      const handle = new NodeHandle(client, breakerOf(node.id), (state) => {
        this.log.warn({ node: node.id, breaker: state }, 'circuit breaker state changed');
        events.breakerChanged(node.id, state);
      });
      this.nodes.set(node.id, handle);
    }
    for (const [name, poolConfig] of Object.entries(config.pools)) {
      const models = Object.entries(config.models).filter(([, r]) => r.pool === name).map(([m]) => m);
      this.pools.set(name, {
        name, config: poolConfig, models, members: poolConfig.nodes.map((id) => this.nodes.get(id)!), nextStart: 0,
        admission: new Admission(name, poolConfig.concurrencyLimit, poolConfig.queueSize), retriesInFlight: 0,
        latency: new Map(models.filter((m) => config.models[m]!.hedging).map((m) => [m, new LatencyWindow()])),
      });
    }
    for (const [model, route] of Object.entries(config.models)) {
      this.modelPool.set(model, this.pools.get(route.pool)!);
      if (route.hedging) this.hedging.set(model, route.hedging);
    }
  }

  /** Runs the first health round, then keeps checking at each pool's interval. */
  async start(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => this.checkPool(pool)));
    for (const pool of this.pools.values()) {
      const timer = setInterval(() => void this.checkPool(pool), pool.config.healthCheck.intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  private async checkPool(pool: Pool): Promise<void> {
    const { timeoutMs } = pool.config.healthCheck;
    const { healthyThreshold } = pool.config.healthCheck;
    await Promise.all(pool.members.map(async (node) => {
      const wasReady = node.serverReady;
      let passed = false;
      try {
        passed = await node.client.serverReady(timeoutMs);
        const ready = await Promise.all(pool.models.map((m) => node.client.modelReady(m, timeoutMs).catch(() => false)));
        pool.models.forEach((m, i) => node.setModelReady(m, ready[i]!));
      } catch {
        passed = false;
      }
      // Out at the first failed check; back in after `healthyThreshold` passes in a row
      // (a node seen for the first time joins at once).
      node.consecutivePasses = passed ? node.consecutivePasses + 1 : 0;
      if (!passed) node.serverReady = false;
      else if (!node.serverReady && (!node.everReady || node.consecutivePasses >= healthyThreshold)) node.serverReady = node.everReady = true;
      if (node.serverReady !== wasReady) {
        this.log.info({ node: node.id, ready: node.serverReady }, node.serverReady ? 'node joined rotation' : 'node left rotation');
        this.events.nodeReadiness(node.id, node.serverReady);
      }
    }));
  }

  knows(model: string): boolean {
    return this.modelPool.has(model);
  }

  /** Ready when every routed model has at least one node that can serve it. */
  ready(): boolean {
    return [...this.modelPool.entries()].every(([model, pool]) => pool.members.some((n) => n.canServe(model)));
  }

  modelReady(model: string): boolean {
    return this.poolOf(model).members.some((n) => n.canServe(model));
  }

  private poolOf(model: string): Pool {
    const pool = this.modelPool.get(model);
    if (!pool) throw new CdsError('not_found', `model '${model}' is not served by this gateway`);
    return pool;
  }

  /**
   * least-request: the lowest (requests in flight + 1) × latency, where
   * latency is the recent record or the age of the oldest call still in
   * flight, whichever is larger, so a slow or hung node gets less, and ties
   * (common at low load) rotate so no node idles; round-robin: the next ready
   * node in turn.
   */
  private pick(pool: Pool, model: string, exclude: Set<string>): NodeHandle | undefined {
    const n = pool.members.length;
    const start = pool.nextStart++ % n;
    const roundRobin = pool.config.balancing === 'round-robin';
    let best: NodeHandle | undefined;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const node = pool.members[(start + i) % n]!;
      if (exclude.has(node.id) || !node.canServe(model)) continue;
      if (roundRobin) return node;
      // A node still owing an old answer is at least that slow, whatever its record says.
      const latency = Math.max(1, node.recentLatency(LATENCY_HALF_LIFE_MS), node.oldestInFlightMs());
      const score = (node.inFlight + 1) * latency;
      if (score < bestScore) {
        best = node;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * Sends the request to the pool and answers with the first success.
   * `sentTo` collects every node the request's data was sent to, for the
   * audit record, whether or not one answered.
   */
  async infer(request: InferRequest, deadline: number, requestId: string, sentTo: string[] = []): Promise<{ result: InferResult; node: string }> {
    const pool = this.poolOf(request.model);
    // Segregation, checked where the bytes leave: configuration already forbids this, and this holds even if it did not.
    if (pool.config.dataClass === 'deidentified' && request.deidentified !== true) {
      throw new CdsError('internal', `refused to send a request that was not de-identified to de-identified pool '${pool.name}'`);
    }
    const release = await pool.admission.acquire(deadline);
    try {
      return await this.tryNodes(pool, request, deadline, requestId, sentTo);
    } finally {
      release();
    }
  }

  /**
   * One node after another while failures are retryable, the deadline allows
   * and the retry budget lasts; with hedging, a second node joins when the
   * first is slow. Calls still running when one succeeds are cancelled.
   */
  private async tryNodes(pool: Pool, request: InferRequest, deadline: number, requestId: string, sentTo: string[]): Promise<{ result: InferResult; node: string }> {
    const model = request.model;
    const hedging = this.hedging.get(model);
    const running = new Set<Attempt>();
    const tried = new Set<string>();
    let lastFailure: NodeFailure | undefined;
    let hedge: Attempt | undefined;
    /** When (performance.now()) to send the hedge; undefined while not armed. */
    let hedgeAt: number | undefined;
    let hedgeSettled = false; // sent, or no other node to send it to
    let winner: Attempt | undefined;

    const launch = (role: Attempt['role']): 'sent' | 'no_node' | 'no_budget' => {
      const node = this.pick(pool, model, tried);
      if (!node) return 'no_node';
      if (role !== 'first' && !this.takeRetryBudget(pool)) return 'no_budget';
      tried.add(node.id);
      sentTo.push(node.id);
      const controller = hedging ? new AbortController() : undefined;
      const startedAt = performance.now();
      // The callbacks run after `attempt` below exists.
      const outcome = node.infer(request, deadline, requestId, controller?.signal).then(
        (result): Settled => ({ attempt, result }),
        (error: unknown): Settled => ({ attempt, error }),
      ).finally(() => {
        if (role !== 'first') pool.retriesInFlight--;
      });
      const attempt: Attempt = { node, role, startedAt, controller, outcome };
      running.add(attempt);
      if (role === 'retry') this.events.retried(pool.name);
      if (role === 'hedge') hedge = attempt;
      return 'sent';
    };

    try {
      if (Date.now() >= deadline) throw new CdsError('deadline_exceeded', 'deadline passed before a node could answer');
      if (launch('first') !== 'sent') throw this.noNode(model, undefined);
      while (running.size > 0) {
        // One hedge per request at most, and only while a single call is out.
        const delay = hedging && !hedgeSettled && running.size === 1 ? this.hedgeDelay(pool, model, hedging) : undefined;
        if (delay !== undefined) hedgeAt ??= running.values().next().value!.startedAt + delay;
        const settled = await this.nextEvent(running, delay === undefined ? undefined : hedgeAt! - performance.now());
        if (settled === HEDGE_TIMER) {
          const sent = launch('hedge');
          // Budget spent (a burst of slow calls, or an outage): ask again one delay later rather than give up;
          // no other node: the call carries on alone.
          if (sent === 'no_budget') hedgeAt = performance.now() + delay!;
          else hedgeSettled = true;
          continue;
        }
        const { attempt } = settled;
        running.delete(attempt);
        hedgeAt = undefined;
        if ('result' in settled) {
          winner = attempt;
          if (attempt.role === 'first') pool.latency.get(model)?.record(performance.now() - attempt.startedAt);
          return { result: settled.result, node: attempt.node.id };
        }
        const err = settled.error;
        if (!(err instanceof NodeFailure) || !err.retryable) throw err;
        lastFailure = err;
        this.eject(attempt.node, err, requestId);
        if (running.size > 0) continue; // the other copy may still answer
        if (Date.now() >= deadline) throw new CdsError('deadline_exceeded', 'deadline passed before a node could answer');
        if (tried.size >= pool.members.length || launch('retry') !== 'sent') break;
      }
      throw this.noNode(model, lastFailure);
    } finally {
      for (const attempt of running) {
        if (attempt.role === 'first' && winner) {
          // Overtaken by its hedge: it waited at least this long. The lower bound keeps the window honest, and the balancer learns the node is slow.
          const waited = performance.now() - attempt.startedAt;
          pool.latency.get(model)?.record(waited);
          attempt.node.recordOvertaken(waited);
        }
        attempt.controller?.abort();
      }
      if (hedge) this.events.hedged(pool.name, model, winner === hedge ? 'won' : winner ? 'lost' : 'failed');
    }
  }

  /** The next attempt to settle, or HEDGE_TIMER when `inMs` passes first. */
  private async nextEvent(running: Set<Attempt>, inMs: number | undefined): Promise<Settled | typeof HEDGE_TIMER> {
    const outcomes: Array<Promise<Settled | typeof HEDGE_TIMER>> = [...running].map((a) => a.outcome);
    if (inMs === undefined) return Promise.race(outcomes);
    let timer: NodeJS.Timeout | undefined;
    outcomes.push(new Promise((resolve) => { timer = setTimeout(resolve, Math.max(0, inMs), HEDGE_TIMER); }));
    try {
      return await Promise.race(outcomes);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The pool's recent percentile for this model, floored; undefined (no hedging) until enough has been seen. */
  private hedgeDelay(pool: Pool, model: string, hedging: Hedging): number | undefined {
    const p = pool.latency.get(model)?.percentile(hedging.percentile, hedging.minSamples);
    return p === undefined ? undefined : Math.max(hedging.minDelayMs, p);
  }

  /** Envoy-style: retries and hedges in flight may be at most a share of the pool's active requests, with a floor. */
  private takeRetryBudget(pool: Pool): boolean {
    const budget = Math.max(pool.config.retryBudget.minConcurrent, (pool.config.retryBudget.percent / 100) * pool.admission.active);
    if (pool.retriesInFlight >= budget) {
      this.events.retryBudgetExhausted(pool.name);
      return false;
    }
    pool.retriesInFlight++;
    return true;
  }

  /** Passive ejection: a node that just failed leaves rotation until health checks bring it back. */
  private eject(node: NodeHandle, err: NodeFailure, requestId: string): void {
    if (node.serverReady) {
      node.markFailed();
      this.log.warn({ node: node.id, reason: err.message }, 'node ejected after a failed call');
      this.events.nodeReadiness(node.id, false);
    }
    this.log.warn({ requestId, node: node.id, reason: err.message }, 'node failed, trying another');
  }

  private noNode(model: string, lastFailure: NodeFailure | undefined): CdsError {
    const why = lastFailure ? ` (last failure: ${lastFailure.message})` : '';
    return new CdsError('unavailable', `no inference node can serve model '${model}' right now${why}`, { 'retry-after': '1' });
  }

  async metadata(model: string, version: string | undefined, timeoutMs: number): Promise<ModelMetadata> {
    const pool = this.poolOf(model);
    const node = this.pick(pool, model, new Set());
    if (!node) throw new CdsError('unavailable', `no inference node can serve model '${model}' right now`);
    return node.client.modelMetadata(model, version, timeoutMs);
  }

  status(): {
    nodes: Array<{ node: string; state: 'ready' | 'ejected' | 'half_open'; ready: boolean; breaker: BreakerState; inFlight: number; latencyMs: number | null }>;
    pools: Array<{ pool: string; active: number; queued: number; retriesInFlight: number; hedgeDelayMs: Record<string, number | null> }>;
  } {
    const round = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms * 10) / 10);
    return {
      nodes: [...this.nodes.values()].map((n) => ({
        node: n.id,
        state: n.breakerState === 'half_open' ? 'half_open' : n.serverReady && n.breakerState === 'closed' ? 'ready' : 'ejected',
        ready: n.serverReady, breaker: n.breakerState, inFlight: n.inFlight,
        latencyMs: round(n.latencyMs),
      })),
      pools: [...this.pools.values()].map((p) => ({
        pool: p.name, active: p.admission.active, queued: p.admission.queued, retriesInFlight: p.retriesInFlight,
        // Per hedged model: the delay in force now, null while too few first attempts have been seen.
        hedgeDelayMs: Object.fromEntries(p.models.filter((m) => this.hedging.has(m)).map((m) => [m, round(this.hedgeDelay(p, m, this.hedging.get(m)!))])),
      })),
    };
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    for (const n of this.nodes.values()) n.shutdown();
  }
}
