import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BreakerState } from '../routing/node-handle.js';

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

export function createGatewayMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cdsgate_process_' });
  const breakerState = new Gauge({ name: 'cdsgate_node_breaker_state', help: 'Circuit breaker per node: 0 closed, 1 half-open, 2 open', labelNames: ['node'], registers: [registry], aggregator: 'max' }); // several workers: the worst breaker
  return {
    registry,
    requests: new Counter({ name: 'cdsgate_requests_total', help: 'Requests by route, model, door and status', labelNames: ['route', 'model', 'door', 'status'], registers: [registry] }),
    latency: new Histogram({
      name: 'cdsgate_request_duration_seconds', help: 'Request latency by route, model, door and status', labelNames: ['route', 'model', 'door', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
    }),
    fileReloads: new Counter({ name: 'cdsgate_file_reloads_total', help: 'Watched files that changed, by what they are (tls, node_client_tls, jwks) and whether the change was applied or refused (the previous ones stay in force)', labelNames: ['file', 'result'], registers: [registry] }),
    handshakeFailures: new Counter({ name: 'cdsgate_tls_handshake_failures_total', help: 'Failed TLS handshakes by door and reason', labelNames: ['door', 'reason'], registers: [registry] }),
    nodeReady: new Gauge({ name: 'cdsgate_node_ready', help: 'Node passes health checks (1) or not (0)', labelNames: ['node'], registers: [registry], aggregator: 'min' }), // several workers: ready in all
    emergencyAccess: new Counter({ name: 'cdsgate_emergency_access_total', help: 'Requests with purpose BTG or ETREAT, by model and kind', labelNames: ['model', 'kind'], registers: [registry] }),
    signatureChecks: new Counter({ name: 'cdsgate_token_signature_checks_total', help: 'Token signatures checked (tokens not served from the verified-token cache), by where: loop (the event loop, a quiet gateway) or pool (the thread pool, under load)', labelNames: ['where'], registers: [registry] }),
    auditFailures: new Counter({ name: 'cdsgate_audit_write_failures_total', help: 'Requests refused because their audit record could not be written', registers: [registry] }),
    // Every answer waits for its batch's sync: this is the disk's share of request latency, and where it ran.
    auditSync: new Histogram({
      name: 'cdsgate_audit_fsync_seconds', help: 'Time an audit batch waited for fdatasync, by where it ran (loop: the event loop, pool: the thread pool)', labelNames: ['placement'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry],
    }),
    shed: new Counter({ name: 'cdsgate_shed_total', help: 'Requests refused at once to protect the gateway', labelNames: ['reason'], registers: [registry] }),
    retryBudgetExhausted: new Counter({ name: 'cdsgate_retry_budget_exhausted_total', help: 'Retries not made because the pool retry budget was spent', labelNames: ['pool'], registers: [registry] }),
    retries: new Counter({ name: 'cdsgate_retries_total', help: 'Requests retried on another node', labelNames: ['pool'], registers: [registry] }),
    cdsCards: new Counter({ name: 'cdsgate_cds_cards_total', help: 'CDS Hooks cards returned, by service and indicator (no_score: the data needed was missing)', labelNames: ['service', 'indicator'], registers: [registry] }),
    cdsFeedback: new Counter({ name: 'cdsgate_cds_feedback_total', help: 'CDS Hooks card feedback, by service and outcome', labelNames: ['service', 'outcome'], registers: [registry] }),
    cdsFhirFetches: new Counter({ name: 'cdsgate_cds_fhir_fetches_total', help: 'Prefetch queries the gateway ran against the FHIR server, by outcome', labelNames: ['service', 'outcome'], registers: [registry] }),
    hedges: new Counter({ name: 'cdsgate_hedges_total', help: 'Hedged requests by outcome: won (the hedge answered first), lost (the first call did), failed (neither)', labelNames: ['pool', 'model', 'outcome'], registers: [registry] }),
    // How many callers' requests shared each node call of a coalesced model (routing/coalescer.ts).
    coalesced: new Histogram({
      name: 'cdsgate_node_call_requests', help: 'Requests joined into one node call, by model (models with coalesce only)', labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry],
    }),
    setBreaker: (node: string, state: BreakerState) => breakerState.set({ node }, BREAKER_VALUE[state]),
  };
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
