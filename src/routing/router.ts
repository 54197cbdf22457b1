import { CdsError } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import type { InferRequest, InferResult, ModelMetadata } from '../kserve/types.js';
import type { Logger } from '../phi/logger.js';
import { NodeClient, NodeFailure, type ClientTlsMaterial } from './node-client.js';
import { NodeHandle, type BreakerState } from './node-handle.js';
import { Admission } from './admission.js';

/** How fast a node's latency record fades without new samples. */
const LATENCY_HALF_LIFE_MS = 2_000;

export interface RouterEvents {
  breakerChanged(node: string, state: BreakerState): void;
  nodeReadiness(node: string, ready: boolean): void;
  retried(pool: string): void;
  retryBudgetExhausted(pool: string): void;
}

interface Pool {
  name: string;
  members: NodeHandle[];
  models: string[];
  config: GatewayConfig['pools'][string];
  nextStart: number;
  admission: Admission;
  retriesInFlight: number;
}

/**
 * Pools of nodes per model. Picks the ready node with the fewest requests in
 * flight, and retries a node failure once on another node while the deadline
 * allows. Never parses tensors.
 */
export class Router {
  private readonly nodes = new Map<string, NodeHandle>();
  private readonly pools = new Map<string, Pool>();
  private readonly modelPool = new Map<string, Pool>();
  private readonly timers: NodeJS.Timeout[] = [];

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
      });
    }
    for (const [model, route] of Object.entries(config.models)) this.modelPool.set(model, this.pools.get(route.pool)!);
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
   * least-request: the lowest (requests in flight + 1) × recent latency, so a
   * slow node gets less, and ties (common at low load) rotate so no node
   * idles; round-robin: the next ready node in turn.
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
      const score = (node.inFlight + 1) * Math.max(1, node.recentLatency(LATENCY_HALF_LIFE_MS));
      if (score < bestScore) {
        best = node;
        bestScore = score;
      }
    }
    return best;
  }

  async infer(request: InferRequest, deadline: number, requestId: string): Promise<{ result: InferResult; node: string }> {
    const pool = this.poolOf(request.model);
    // Segregation, checked where the bytes leave: configuration already forbids this, and this holds even if it did not.
    if (pool.config.dataClass === 'deidentified' && request.deidentified !== true) {
      throw new CdsError('internal', `refused to send a request that was not de-identified to de-identified pool '${pool.name}'`);
    }
    const release = await pool.admission.acquire(deadline);
    try {
      return await this.tryNodes(pool, request, deadline, requestId);
    } finally {
      release();
    }
  }

  /** One node after another while failures are retryable, the deadline allows and the retry budget lasts. */
  private async tryNodes(pool: Pool, request: InferRequest, deadline: number, requestId: string): Promise<{ result: InferResult; node: string }> {
    const tried = new Set<string>();
    let lastFailure: NodeFailure | undefined;
    for (let attempt = 0; attempt < pool.members.length; attempt++) {
      const node = this.pick(pool, request.model, tried);
      if (!node) break;
      if (Date.now() >= deadline) throw new CdsError('deadline_exceeded', 'deadline passed before a node could answer');
      const retry = attempt > 0;
      if (retry) {
        const budget = Math.max(pool.config.retryBudget.minConcurrent, (pool.config.retryBudget.percent / 100) * pool.admission.active);
        if (pool.retriesInFlight >= budget) {
          this.events.retryBudgetExhausted(pool.name);
          break;
        }
        pool.retriesInFlight++;
        this.events.retried(pool.name);
      }
      tried.add(node.id);
      try {
        return { result: await node.infer(request, deadline, requestId), node: node.id };
      } catch (err) {
        if (!(err instanceof NodeFailure) || !err.retryable) throw err;
        lastFailure = err;
        if (node.serverReady) {
          node.markFailed();
          this.log.warn({ node: node.id, reason: err.message }, 'node ejected after a failed call');
          this.events.nodeReadiness(node.id, false);
        }
        this.log.warn({ requestId, node: node.id, reason: err.message }, 'node failed, trying another');
      } finally {
        if (retry) pool.retriesInFlight--;
      }
    }
    const why = lastFailure ? ` (last failure: ${lastFailure.message})` : '';
    throw new CdsError('unavailable', `no inference node can serve model '${request.model}' right now${why}`, { 'retry-after': '1' });
  }

  async metadata(model: string, version: string | undefined, timeoutMs: number): Promise<ModelMetadata> {
    const pool = this.poolOf(model);
    const node = this.pick(pool, model, new Set());
    if (!node) throw new CdsError('unavailable', `no inference node can serve model '${model}' right now`);
    return node.client.modelMetadata(model, version, timeoutMs);
  }

  status(): { nodes: Array<{ node: string; state: 'ready' | 'ejected' | 'half_open'; ready: boolean; breaker: BreakerState; inFlight: number; latencyMs: number | null }>; pools: Array<{ pool: string; active: number; queued: number; retriesInFlight: number }> } {
    return {
      nodes: [...this.nodes.values()].map((n) => ({
        node: n.id,
        state: n.breakerState === 'half_open' ? 'half_open' : n.serverReady && n.breakerState === 'closed' ? 'ready' : 'ejected',
        ready: n.serverReady, breaker: n.breakerState, inFlight: n.inFlight,
        latencyMs: n.latencyMs === undefined ? null : Math.round(n.latencyMs * 10) / 10,
      })),
      pools: [...this.pools.values()].map((p) => ({ pool: p.name, active: p.admission.active, queued: p.admission.queued, retriesInFlight: p.retriesInFlight })),
    };
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    for (const n of this.nodes.values()) n.shutdown();
  }
}
