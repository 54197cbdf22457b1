import { describe, expect, it } from 'vitest';
import { gatewaySchema } from '../../src/config/schema.js';
import { CdsError } from '../../src/errors.js';
import type { InferRequest, InferResult, ModelMetadata } from '../../src/kserve/types.js';
import { createLogger } from '../../src/phi/logger.js';
import type { NodeAddress, NodeClientLike } from '../../src/routing/node-client.js';
import { NodeFailure } from '../../src/routing/retry-policy.js';
import { Router, type RouterEvents } from '../../src/routing/router.js';

/**
 * The attempt loop (retries, hedges, budget, deadlines) with in-memory node
 * clients: fast and deterministic, no processes. The same loop runs against
 * real nodes in the integration tests (failover, hedging, availability).
 */
type Behaviour = (request: InferRequest, deadline: number, signal: AbortSignal | undefined) => Promise<InferResult>;

class FakeNode implements NodeClientLike {
  calls = 0;
  aborted = 0;
  constructor(readonly node: NodeAddress, public behaviour: Behaviour) {}
  async infer(request: InferRequest, deadline: number, _id: string, signal?: AbortSignal): Promise<InferResult> {
    this.calls++;
    signal?.addEventListener('abort', () => this.aborted++, { once: true });
    return this.behaviour(request, deadline, signal);
  }
  async serverReady(): Promise<boolean> { return true; }
  async modelReady(): Promise<boolean> { return true; }
  async modelMetadata(): Promise<ModelMetadata> { throw new Error('not used'); }
  reloadTls(): void {}
  close(): void {}
}

const answer = (node: string): Behaviour => async (r) => ({ model: r.model, version: '1', parameters: { node }, outputs: [] });
const after = (ms: number, then: Behaviour): Behaviour => (r, d, s) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => then(r, d, s).then(resolve, reject), ms);
  s?.addEventListener('abort', () => { clearTimeout(timer); reject(new CdsError('cancelled', 'cancelled')); }, { once: true });
});
const failing: Behaviour = async () => { throw new NodeFailure('node is unavailable: reset', true); };
const refusing: Behaviour = async () => { throw new CdsError('invalid_argument', 'input "x" is NaN'); };

function setup(o: { balancing?: 'round-robin' | 'least-request'; hedging?: boolean; budget?: { percent: number; minConcurrent: number } } = {}) {
  const config = gatewaySchema('/tmp').parse({
    gateway: { rest: { port: 0 }, grpc: { port: 0 }, admin: { port: 0 }, tls: { cert: 'c', key: 'k', ca: 'a' }, nodeClientTls: { cert: 'c', key: 'k', ca: 'a' } },
    auth: { issuers: [{ issuer: 'i', audience: 'a', jwks: { file: 'j' } }] },
    nodes: [{ id: 'node-0', address: 'h:1', serverName: 'n0', protocol: 'rest' }, { id: 'node-1', address: 'h:2', serverName: 'n1', protocol: 'rest' }],
    pools: { default: { nodes: ['node-0', 'node-1'], balancing: o.balancing ?? 'round-robin', ...(o.budget ? { retryBudget: o.budget } : {}) } },
    models: { m: { pool: 'default', allowRoles: ['r'], ...(o.hedging ? { hedging: { minSamples: 1, minDelayMs: 5, percentile: 50 } } : {}) } },
    audit: { dir: 'd', signingKey: 'k' },
    phi: { pseudonymKey: { file: 'p', keyId: 'k1' } },
  });
  const fakes = new Map<string, FakeNode>();
  const events: Array<[string, ...unknown[]]> = [];
  const recorder: RouterEvents = {
    breakerChanged: (...a) => void events.push(['breaker', ...a]), nodeReadiness: (...a) => void events.push(['readiness', ...a]),
    retried: (...a) => void events.push(['retried', ...a]), retryBudgetExhausted: (...a) => void events.push(['budget', ...a]),
    hedged: (...a) => void events.push(['hedged', ...a]),
    coalesced: (...a) => void events.push(['coalesced', ...a]), unsplittable: (...a) => void events.push(['unsplittable', ...a]),
  };
  const router = new Router(config, (node) => {
    const fake = new FakeNode(node, answer(node.id));
    fakes.set(node.id, fake);
    return fake;
  }, recorder, createLogger('test', 'silent'));
  return { router, fakes, events, node: (id: string) => fakes.get(id)! };
}

const request = (): InferRequest => ({ model: 'm', parameters: {}, inputs: [], outputs: [] });
const soon = (ms = 2_000) => Date.now() + ms;

describe('the attempt loop', () => {
  it('a retryable node failure is retried on the other node; the audit list names both', async () => {
    const { router, node, events } = setup();
    await router.start();
    node('node-0').behaviour = failing;
    node('node-1').behaviour = failing;
    const sentTo: string[] = [];
    node('node-1').behaviour = answer('node-1');
    const { node: answeredBy } = await router.infer(request(), soon(), 'r1', sentTo);
    expect(answeredBy).toBe('node-1');
    expect(sentTo).toEqual(['node-0', 'node-1']);
    expect(events).toContainEqual(['retried', 'default']);
    expect(events).toContainEqual(['readiness', 'node-0', false]); // passively ejected
    router.close();
  });

  it('a client error from a node is not retried and ejects nothing', async () => {
    const { router, node, events } = setup();
    await router.start();
    node('node-0').behaviour = refusing;
    node('node-1').behaviour = refusing;
    const sentTo: string[] = [];
    await expect(router.infer(request(), soon(), 'r2', sentTo)).rejects.toMatchObject({ kind: 'invalid_argument' });
    expect(sentTo).toHaveLength(1);
    expect(events.filter(([e, , ready]) => e === 'retried' || (e === 'readiness' && ready === false))).toEqual([]);
    router.close();
  });

  it('when the budget is spent, no retry goes out: 503 and the budget event', async () => {
    const { router, node, events } = setup({ budget: { percent: 0, minConcurrent: 0 } });
    await router.start();
    node('node-0').behaviour = failing;
    await expect(router.infer(request(), soon(), 'r3', [])).rejects.toMatchObject({ kind: 'unavailable', headers: { 'retry-after': '1' } });
    expect(events).toContainEqual(['budget', 'default']);
    expect(node('node-1').calls).toBe(0);
    router.close();
  });

  it('a deadline already past is refused before any node is called', async () => {
    const { router, fakes } = setup();
    await router.start();
    await expect(router.infer(request(), Date.now() - 1, 'r4', [])).rejects.toMatchObject({ kind: 'deadline_exceeded' });
    expect([...fakes.values()].every((f) => f.calls === 0)).toBe(true);
    router.close();
  });

  it('hedge won: a slow first node is overtaken, its call cancelled; hedge lost: the first answers and the hedge is cancelled', async () => {
    const { router, node, events } = setup({ hedging: true });
    await router.start();
    // Teach the window what "usual" is: fast answers from both.
    for (let i = 0; i < 4; i++) await router.infer(request(), soon(), `warm-${i}`, []);
    node('node-0').behaviour = after(1_000, answer('node-0'));
    node('node-1').behaviour = answer('node-1');
    // Round-robin: the next first call goes to node-0, the slow one.
    const won = await router.infer(request(), soon(5_000), 'hedge-won', []);
    expect(won.node).toBe('node-1');
    expect(events).toContainEqual(['hedged', 'default', 'm', 'won']);
    expect(node('node-0').aborted).toBe(1);
    // Both nodes take 40 ms, longer than the hedge delay: the hedge goes out, the first call (sent earlier) answers first.
    node('node-0').behaviour = after(40, answer('node-0'));
    node('node-1').behaviour = after(40, answer('node-1'));
    const abortedBefore = node('node-0').aborted + node('node-1').aborted;
    await router.infer(request(), soon(5_000), 'hedge-lost', []);
    expect(events).toContainEqual(['hedged', 'default', 'm', 'lost']);
    expect(node('node-0').aborted + node('node-1').aborted).toBe(abortedBefore + 1);
    router.close();
  });
});
