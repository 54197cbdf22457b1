import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCdsClientToken } from '../../src/auth/dev-issuer.js';
import { exampleHookRequest } from '../../src/cli/start.js';
import { auditRecords, requestRecords, httpsCall, rid, runCliAsync, scrapeMetrics, startCluster, stopProcess, type Cluster } from '../helpers/cluster.js';

/**
 * A gateway of two worker processes on the same ports (gateway.workers: 2):
 * both serve, each writes its own audit segment that `audit verify` reads
 * with the others, a one-time token is used once across both, the admin port
 * sums both workers' metrics, and SIGTERM drains both.
 */
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1, gatewayPatch: (c) => { c.gateway.workers = 2; } });
}, 90_000);
afterAll(async () => { await cluster?.stop(); });

const segment = (i: number) => join(cluster.secrets.auditDir, `worker-${i}`);
const requests = (i: number) => requestRecords(segment(i));

describe('gateway.workers: 2', () => {
  it('the workers serve the one port, each recording in its own audit segment', async () => {
    const token = await cluster.token(['clinician']);
    for (let i = 0; i < 12; i++) {
      const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', {
        ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, headers: { 'x-request-id': rid(`w${i}`) },
        body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] },
      });
      expect(res.status).toBe(200);
    }
    // Which worker accepts a connection is the kernel's choice (one shared socket): the records add up across segments.
    expect(requests(0).length + requests(1).length).toBe(12);
    expect(auditRecords(segment(0))[0]).toMatchObject({ type: 'genesis', gateway: 'cdsgate#0' });
    expect(auditRecords(segment(1))[0]).toMatchObject({ type: 'genesis', gateway: 'cdsgate#1' });
  });

  it('the admin port sums both workers\' metrics and reports each worker', async () => {
    const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
    const infer = [...metrics.matchAll(/^cdsgate_requests_total\{[^}]*route="infer"[^}]*status="200"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(infer).toBe(12);
    const status = await (await fetch(`http://127.0.0.1:${cluster.gateway.ports.admin}/status`)).json() as { ready: boolean; workers: unknown[] };
    expect(status.workers).toHaveLength(2);
    expect(status.ready).toBe(true);
  });

  it('a one-time token is used once, whichever worker sees it (the replay cache is the primary\'s)', async () => {
    const url = `https://localhost:${cluster.gateway.ports.rest}/cds-services/news2-deterioration`;
    const token = await mintCdsClientToken(cluster.ehr.privateJwk, { audience: url });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await httpsCall(cluster.gateway.ports.rest!, '/cds-services/news2-deterioration', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body: exampleHookRequest() });
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
  });

  it('audit verify reads every worker\'s segment; SIGTERM drains both and signs both final heads', async () => {
    await stopProcess(cluster.gateway);
    expect(cluster.gateway.child.exitCode).toBe(0);
    const verify = await runCliAsync(['audit', 'verify', cluster.secrets.auditDir]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/worker-0: audit log verifies/);
    expect(verify.stdout).toMatch(/worker-1: audit log verifies/);
    for (const i of [0, 1]) {
      const heads = readFileSync(join(segment(i), 'heads.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { final: boolean });
      expect(heads.at(-1)!.final).toBe(true);
    }
  });
});
