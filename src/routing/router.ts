import { CdsError, quote } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import { compileRoutes, type CompiledRoutes } from '../config/routes.js';
import type { InferRequest, InferResult, ModelMetadata } from '../kserve/types.js';
import type { Logger } from '../phi/logger.js';
import type { NodeAddress, NodeClientLike } from './node-client.js';
import type { ClientTlsMaterial } from '../tls/client-tls.js';
import { GrpcNodeClient } from './grpc-node-client.js';
import { RestNodeClient } from './rest-node-client.js';
import { NodeHandle, type BreakerState } from './node-handle.js';
import { createPool, hedgeDelay, type Pool } from './pool.js';
import { pickNode } from './balancer.js';
import { HealthChecker } from './health-checker.js';
import { noNode, runAttempts, type AttemptEvents } from './attempts.js';
import { CoalescingNodeClient, type CoalescingEvents } from './coalescer.js';

export interface RouterEvents extends AttemptEvents, CoalescingEvents {
  breakerChanged(node: string, state: BreakerState): void;
}

/** Makes the client for one node: mTLS REST or gRPC in the gateway, an in-memory fake in unit tests. */
export type NodeClientFactory = (node: NodeAddress) => NodeClientLike;

/** `longestDeadlineMs`: the longest deadline a call may have (a gRPC channel retired by a certificate renewal outlives it). */
export const nodeClients = (tls: ClientTlsMaterial, maxMessageBytes: number, longestDeadlineMs: number): NodeClientFactory =>
  (node) => (node.protocol === 'grpc' ? new GrpcNodeClient(node, tls, maxMessageBytes, longestDeadlineMs + 60_000) : new RestNodeClient(node, tls, maxMessageBytes));

/**
 * The routing facade: pools of nodes per model (pool.ts), active health
 * checks (health-checker.ts), latency-weighted balancing (balancer.ts), and
 * per request admission then the attempt loop with retries and hedges
 * (attempts.ts) under the rules of retry-policy.ts. Never parses tensors.
 */
export class Router {
  private readonly nodes = new Map<string, NodeHandle>();
  private readonly pools = new Map<string, Pool>();
  private readonly modelPool = new Map<string, Pool>();
  private readonly health: HealthChecker;

  constructor(config: GatewayConfig, clients: NodeClientFactory, private readonly events: RouterEvents, private readonly log: Logger, routes: CompiledRoutes = compileRoutes(config)) {
    const breakerOf = (nodeId: string) =>
      Object.values(config.pools).find((p) => p.nodes.includes(nodeId))?.breaker ?? Object.values(config.pools)[0]!.breaker;
    const coalesceRows = new Map([...routes.values()].flatMap((r) => (r.coalesceRows === undefined ? [] : [[r.model, r.coalesceRows] as const])));
    // Beneath the breaker: each caller's request still counts as one call to the node, whether or not it shared the wire.
    const clientOf = (node: NodeAddress): NodeClientLike =>
      coalesceRows.size === 0 ? clients(node) : new CoalescingNodeClient(clients(node), (model) => coalesceRows.get(model), events);
    for (const node of config.nodes) {
      this.nodes.set(node.id, new NodeHandle(clientOf(node), breakerOf(node.id), (state) => {
        this.log.warn({ node: node.id, breaker: state }, 'circuit breaker state changed');
        events.breakerChanged(node.id, state);
      }));
    }
    for (const name of Object.keys(config.pools)) this.pools.set(name, createPool(name, config, this.nodes, routes));
    for (const route of routes.values()) this.modelPool.set(route.model, this.pools.get(route.pool)!);
    this.health = new HealthChecker(this.pools.values(), events, log);
  }

  /** Runs the first health round, then keeps checking at each pool's interval. */
  start(): Promise<void> {
    return this.health.start();
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
    if (!pool) throw new CdsError('not_found', `model ${quote(model)} is not served by this gateway`);
    return pool;
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
      return await runAttempts(pool, request, deadline, requestId, sentTo, this.events, this.log);
    } finally {
      release();
    }
  }

  async metadata(model: string, version: string | undefined, timeoutMs: number): Promise<ModelMetadata> {
    const node = pickNode(this.poolOf(model), model, new Set());
    if (!node) throw noNode(model, undefined);
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
        hedgeDelayMs: Object.fromEntries([...p.hedging.keys()].map((m) => [m, round(hedgeDelay(p, m))])),
      })),
    };
  }

  /** Renewed client TLS material for every node's next connection. */
  reloadClientTls(tls: ClientTlsMaterial): void {
    for (const n of this.nodes.values()) n.client.reloadTls(tls);
  }

  close(): void {
    this.health.close();
    for (const n of this.nodes.values()) n.shutdown();
  }
}
