import { CdsError } from '../errors.js';
import type { InferRequest, InferResult } from '../kserve/types.js';
import type { Logger } from '../phi/logger.js';
import { pickNode } from './balancer.js';
import type { NodeHandle } from './node-handle.js';
import { hedgeDelay, takeRetryBudget, type Pool } from './pool.js';
import { shouldRetry, type NodeFailure } from './retry-policy.js';

export interface AttemptEvents {
  nodeReadiness(node: string, ready: boolean): void;
  retried(pool: string): void;
  retryBudgetExhausted(pool: string): void;
  /** A hedged request settled: `won` the hedge answered first, `lost` the first call did, `failed` neither. */
  hedged(pool: string, model: string, outcome: 'won' | 'lost' | 'failed'): void;
}

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

/**
 * One node after another while failures are retryable (retry-policy.ts),
 * the deadline allows and the retry budget lasts; with hedging, a second
 * node joins when the first is slower than the pool's recent percentile.
 * Calls still running when one succeeds are cancelled. `sentTo` collects
 * every node the request's data went to, for the audit record.
 */
export async function runAttempts(
  pool: Pool, request: InferRequest, deadline: number, requestId: string, sentTo: string[], events: AttemptEvents, log: Logger,
): Promise<{ result: InferResult; node: string }> {
  const model = request.model;
  const hedged = pool.hedging.has(model);
  const running = new Set<Attempt>();
  const tried = new Set<string>();
  let lastFailure: NodeFailure | undefined;
  let hedge: Attempt | undefined;
  /** When (performance.now()) to send the hedge; undefined while not armed. */
  let hedgeAt: number | undefined;
  let hedgeSettled = false; // sent, or no other node to send it to
  let winner: Attempt | undefined;

  const launch = (role: Attempt['role']): 'sent' | 'no_node' | 'no_budget' => {
    const node = pickNode(pool, model, tried);
    if (!node) return 'no_node';
    if (role !== 'first' && !takeRetryBudget(pool)) {
      events.retryBudgetExhausted(pool.name);
      return 'no_budget';
    }
    tried.add(node.id);
    sentTo.push(node.id);
    const controller = hedged ? new AbortController() : undefined;
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
    if (role === 'retry') events.retried(pool.name);
    if (role === 'hedge') hedge = attempt;
    return 'sent';
  };

  try {
    if (Date.now() >= deadline) throw new CdsError('deadline_exceeded', 'deadline passed before a node could answer');
    if (launch('first') !== 'sent') throw noNode(model, undefined);
    while (running.size > 0) {
      // One hedge per request at most, and only while a single call is out.
      const delay = hedged && !hedgeSettled && running.size === 1 ? hedgeDelay(pool, model) : undefined;
      if (delay !== undefined) hedgeAt ??= running.values().next().value!.startedAt + delay;
      const settled = await nextEvent(running, delay === undefined ? undefined : hedgeAt! - performance.now());
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
      if (!shouldRetry(err)) throw err;
      lastFailure = err;
      eject(attempt.node, err, requestId, events, log);
      if (running.size > 0) continue; // the other copy may still answer
      if (Date.now() >= deadline) throw new CdsError('deadline_exceeded', 'deadline passed before a node could answer');
      if (tried.size >= pool.members.length || launch('retry') !== 'sent') break;
    }
    throw noNode(model, lastFailure);
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
    if (hedge) events.hedged(pool.name, model, winner === hedge ? 'won' : winner ? 'lost' : 'failed');
  }
}

/** The next attempt to settle, or HEDGE_TIMER when `inMs` passes first. */
async function nextEvent(running: Set<Attempt>, inMs: number | undefined): Promise<Settled | typeof HEDGE_TIMER> {
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

/** Passive ejection: a node that just failed leaves rotation until health checks bring it back. */
function eject(node: NodeHandle, err: NodeFailure, requestId: string, events: AttemptEvents, log: Logger): void {
  if (node.serverReady) {
    node.markFailed();
    log.warn({ node: node.id, reason: err.message }, 'node ejected after a failed call');
    events.nodeReadiness(node.id, false);
  }
  log.warn({ requestId, node: node.id, reason: err.message }, 'node failed, trying another');
}

export function noNode(model: string, lastFailure: NodeFailure | undefined): CdsError {
  const why = lastFailure ? ` (last failure: ${lastFailure.message})` : '';
  return new CdsError('unavailable', `no inference node can serve model '${model}' right now${why}`, { 'retry-after': '1' });
}
