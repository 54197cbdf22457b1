import type { GatewayConfig } from '../config/schema.js';
import { Admission } from './admission.js';
import { LatencyWindow } from './latency-window.js';
import type { NodeHandle } from './node-handle.js';

import type { CompiledRoutes } from '../config/routes.js';

export type Hedging = NonNullable<GatewayConfig['models'][string]['hedging']>;

/** A pool as the router runs it: its nodes, the models routed to it, and its shared counters. */
export interface Pool {
  name: string;
  members: NodeHandle[];
  models: string[];
  config: GatewayConfig['pools'][string];
  /** Where the next balancing scan starts, so ties rotate. */
  nextStart: number;
  admission: Admission;
  /** Retries and hedges in flight, both drawn from the retry budget. */
  retriesInFlight: number;
  /** Recent first-attempt latency per hedged model, for the hedge delay (others record nothing). */
  latency: Map<string, LatencyWindow>;
  /** Hedging settings per hedged model. */
  hedging: Map<string, Hedging>;
}

export function createPool(name: string, config: GatewayConfig, nodes: ReadonlyMap<string, NodeHandle>, routes: CompiledRoutes): Pool {
  const poolConfig = config.pools[name]!;
  const models = [...routes.values()].filter((r) => r.pool === name).map((r) => r.model);
  const hedged = models.filter((m) => routes.get(m)!.hedging);
  return {
    name, config: poolConfig, models, members: poolConfig.nodes.map((id) => nodes.get(id)!), nextStart: 0,
    admission: new Admission(name, poolConfig.concurrencyLimit, poolConfig.queueSize), retriesInFlight: 0,
    latency: new Map(hedged.map((m) => [m, new LatencyWindow()])),
    hedging: new Map(hedged.map((m) => [m, routes.get(m)!.hedging!])),
  };
}

/** The pool's recent percentile for this model, floored; undefined (no hedging) until enough has been seen. */
export function hedgeDelay(pool: Pool, model: string): number | undefined {
  const hedging = pool.hedging.get(model);
  const p = hedging && pool.latency.get(model)?.percentile(hedging.percentile, hedging.minSamples);
  return p === undefined || !hedging ? undefined : Math.max(hedging.minDelayMs, p);
}

/** Envoy-style: retries and hedges in flight may be at most a share of the pool's active requests, with a floor. */
export function takeRetryBudget(pool: Pool): boolean {
  const budget = Math.max(pool.config.retryBudget.minConcurrent, (pool.config.retryBudget.percent / 100) * pool.admission.active);
  if (pool.retriesInFlight >= budget) return false;
  pool.retriesInFlight++;
  return true;
}
