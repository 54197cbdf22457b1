import { internalCause, type CdsError } from '../errors.js';
import type { CallContext } from '../kserve/context.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { Logger } from '../phi/logger.js';
import { UNKNOWN_MODEL } from './pipeline.js';

const CLIENT_ECHO = new Set<CdsError['kind']>(['invalid_argument', 'not_found', 'payload_too_large']);

/**
 * One log line and one metric sample per answered request. Fields are named
 * one by one: never a body, a header value or a token.
 */
export function requestObserver(log: Logger, metrics: GatewayMetrics, isConfigured: (model: string) => boolean) {
  return (ctx: CallContext, route: string, status: string, asked: string | undefined, error: CdsError | undefined): void => {
    // A model name becomes a label or a log field only if it is configured: anything else is client text.
    const model = asked === undefined || asked === '' ? undefined : isConfigured(asked) ? asked : UNKNOWN_MODEL;
    const seconds = (Date.now() - ctx.startedAt) / 1000;
    const labels = { route, model: model ?? '', door: ctx.door, status };
    metrics.requests.inc(labels);
    metrics.latency.observe(labels, seconds);
    if (route === 'live' || route === 'ready') return; // probes would drown the log
    const line = {
      requestId: ctx.requestId,
      door: ctx.door,
      route,
      model,
      subject: ctx.trace.subject,
      status,
      latencyMs: Math.round(seconds * 1000 * 10) / 10,
      node: ctx.trace.node,
      // Client-error messages can echo what the client sent (input names, values): log only their kind.
      ...(error ? { error: error.kind, ...(CLIENT_ECHO.has(error.kind) ? {} : { reason: error.message }), ...internalCause(error) } : {}),
    };
    if (error && (error.kind === 'internal' || error.kind === 'unavailable')) log.warn(line, 'request failed');
    else log.info(line, 'request');
  };
}
