import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAuditEvent } from '../../src/audit/fhir-export.js';
import { requestRecords, httpsCall, rid, scrapeMetrics, startCluster, waitFor, type Cluster } from '../helpers/cluster.js';

/** The value of one Prometheus sample, 0 when the series does not exist yet. */
const sample = (text: string, name: string, labels: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line ? Number(line.split(' ').pop()) : 0;
};

// One WDBC sample (the public data set's second row): plausible for every feature.
const WDBC_ROW = [20.57, 17.77, 132.9, 1326, 0.08474, 0.07864, 0.0869, 0.07017, 0.1812, 0.05667, 0.5435, 0.7339, 3.398, 74.08, 0.005225, 0.01308, 0.0186, 0.0134, 0.01389, 0.003532, 24.99, 23.41, 158.8, 1956, 0.1238, 0.1866, 0.2416, 0.186, 0.275, 0.08902];

describe('hedging (2 nodes, round-robin; news2 hedged, wdbc-risk not)', () => {
  let cluster: Cluster;
  let token: string;
  const slowNode = (delayMs: number) => fetch(`http://127.0.0.1:${cluster.nodes[0]!.ports.admin}/fault?delayMs=${delayMs}`, { method: 'POST' });
  const call = (model: string, requestId: string) => httpsCall(cluster.gateway.ports.rest!, `/v2/models/${model}/infer`, {
    ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, headers: { 'x-request-id': rid(requestId) },
    body: model === 'news2'
      ? { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] }
      : { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: WDBC_ROW }] },
  });
  const records = (prefix: string, count: number) => {
    const ids = new Set(Array.from({ length: count }, (_, i) => rid(`${prefix}${i}`)));
    return requestRecords(join(cluster.dir, 'audit')).filter((r) => ids.has(String(r.requestId)));
  };

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 2,
      // Round-robin, so a known share of first calls lands on the slow node whatever its latency record says.
      gatewayPatch: (c) => { c.pools.default.balancing = 'round-robin'; c.models.news2.hedging = { minSamples: 10 }; },
      nodeConfigPatch: (c) => { c.node.faultInjection = true; },
    });
    token = await cluster.token(['clinician']);
    // Both nodes fast: enough first attempts for a p95 to exist.
    for (let i = 0; i < 20; i++) expect((await call('news2', `warm-${i}`)).status).toBe(200);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('the hedge delay in force is on /status for hedged models only, never below minDelayMs', async () => {
    const status = (await fetch(`http://127.0.0.1:${cluster.gateway.ports.admin}/status`).then((r) => r.json())) as { pools: Array<{ hedgeDelayMs: Record<string, number | null> }> };
    expect(status.pools[0]!.hedgeDelayMs.news2).toBeGreaterThanOrEqual(2);
    expect(status.pools[0]!.hedgeDelayMs).not.toHaveProperty('wdbc-risk');
  });

  it('a slow node: its requests are answered by the other node, and its copy is cancelled and never run', async () => {
    await slowNode(1000);
    const before = await scrapeMetrics(cluster.gateway.ports.admin!);
    const node0Before = await scrapeMetrics(cluster.nodes[0]!.ports.admin!);
    for (let i = 0; i < 10; i++) expect((await call('news2', `hedge-${i}`)).status).toBe(200);

    const phase = records('hedge-', 10);
    expect(phase).toHaveLength(10);
    // node-0 answers nothing: 1 s is far beyond the p95, so every first call on it is hedged and overtaken.
    for (const r of phase) {
      expect(r.node).toBe('node-1');
      expect(r.status).toBe('ok');
    }
    // Round-robin puts at least every other first call on node-0. (A first call on node-1 slower than its p95
    // may itself be hedged to node-0 and win anyway: sentTo ['node-1', 'node-0'], not counted here.)
    const hedged = phase.filter((r) => r.sentTo?.[0] === 'node-0');
    expect(hedged.length).toBeGreaterThanOrEqual(5);
    for (const r of hedged) expect(r.sentTo).toEqual(['node-0', 'node-1']);
    // A disclosure accounting from the FHIR export names both nodes that received the data.
    const event = toAuditEvent(hedged[0] as Parameters<typeof toAuditEvent>[0], 'cdsgate') as { entity: Array<{ detail?: unknown[] }> };
    expect(event.entity.flatMap((e) => e.detail ?? [])).toEqual(expect.arrayContaining([
      { type: 'node', valueString: 'node-1' }, { type: 'sent-to-node', valueString: 'node-0' }, { type: 'sent-to-node', valueString: 'node-1' },
    ]));
    const after = await scrapeMetrics(cluster.gateway.ports.admin!);
    const won = sample(after, 'cdsgate_hedges_total', 'model="news2",outcome="won"') - sample(before, 'cdsgate_hedges_total', 'model="news2",outcome="won"');
    expect(won).toBe(hedged.length);
    expect(sample(after, 'cdsgate_hedges_total', 'outcome="failed"')).toBe(0);

    // The node finishes its injected delay, sees the cancellation and drops the work instead of running the model.
    const sentToNode0 = phase.filter((r) => r.sentTo?.includes('node-0')).length;
    await waitFor(async () => sample(await scrapeMetrics(cluster.nodes[0]!.ports.admin!), 'cdsgate_node_inference_requests_total', 'model="news2",outcome="cancelled"') >= sentToNode0, 5000, 'node-0 to drop the cancelled copies');
    const ran = (text: string) => sample(text, 'cdsgate_node_inference_requests_total', 'model="news2",outcome="ok"');
    expect(ran(await scrapeMetrics(cluster.nodes[0]!.ports.admin!))).toBe(ran(node0Before));
  });

  it('hedging is off unless configured: wdbc-risk requests wait for the slow node, and go to one node only', async () => {
    for (let i = 0; i < 4; i++) expect((await call('wdbc-risk', `nohedge-${i}`)).status).toBe(200);
    const rs = records('nohedge-', 4);
    expect(rs).toHaveLength(4);
    expect(rs.every((r) => r.sentTo === undefined)).toBe(true);
    expect(rs.some((r) => r.node === 'node-0')).toBe(true);
    expect(sample(await scrapeMetrics(cluster.gateway.ports.admin!), 'cdsgate_hedges_total', 'model="wdbc-risk"')).toBe(0);
    await slowNode(0);
  });
});

describe('hedging draws on the retry budget', () => {
  it('with no budget left no hedge goes out: the request waits for its node instead of multiplying load', async () => {
    const cluster = await startCluster({
      nodes: 2,
      gatewayPatch: (c) => {
        c.pools.default.balancing = 'round-robin';
        c.pools.default.retryBudget = { percent: 0, minConcurrent: 0 };
        c.models.news2.hedging = { minSamples: 10 };
      },
      nodeConfigPatch: (c) => { c.node.faultInjection = true; },
    });
    try {
      const token = await cluster.token(['clinician']);
      const call = (id: string) => httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', {
        ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, headers: { 'x-request-id': rid(id) },
        body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] },
      });
      for (let i = 0; i < 20; i++) expect((await call(`warm-${i}`)).status).toBe(200);
      await fetch(`http://127.0.0.1:${cluster.nodes[0]!.ports.admin}/fault?delayMs=300`, { method: 'POST' });
      for (let i = 0; i < 4; i++) expect((await call(`budget-${i}`)).status).toBe(200);
      const budgetIds = new Set([0, 1, 2, 3].map((i) => rid(`budget-${i}`)));
      const rs = requestRecords(join(cluster.dir, 'audit')).filter((r) => budgetIds.has(String(r.requestId)));
      expect(rs.some((r) => r.node === 'node-0')).toBe(true);
      expect(rs.every((r) => r.sentTo === undefined)).toBe(true);
      const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
      expect(sample(metrics, 'cdsgate_hedges_total', 'model="news2"')).toBe(0);
      expect(sample(metrics, 'cdsgate_retry_budget_exhausted_total', 'pool="default"')).toBeGreaterThan(0);
    } finally {
      await cluster.stop();
    }
  });
});
