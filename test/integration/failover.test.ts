import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { jsonLogs, grpcCall, grpcClient, httpsCall, startCluster, stopProcess, waitFor, type Cluster } from '../helpers/cluster.js';

let cluster: Cluster;
let token: string;
beforeAll(async () => {
  cluster = await startCluster({ nodes: 2 });
  token = await cluster.token(['clinician']);
});
afterAll(async () => { await cluster?.stop(); });

const infer = () => httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', {
  ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token,
  body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] },
});

const servedLines = () => jsonLogs(cluster.gateway).filter((l) => l.msg === 'request' && l.status === '200' && l.node);

describe('failover between nodes', () => {
  it('spreads load over both nodes while both are up', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, infer));
    expect(results.map((r) => r.status)).toEqual(new Array(20).fill(200));
    // Log lines cross a pipe from the gateway process: wait until all 20 have arrived.
    await waitFor(() => servedLines().length >= 20, 5000, 'the request log lines');
    expect(new Set(servedLines().map((l) => String(l.node)))).toEqual(new Set(['node-0', 'node-1']));
  });

  it('one node killed (SIGKILL) → every request still succeeds through the other', async () => {
    await stopProcess(cluster.nodes[0]!, 'SIGKILL');
    // Straight after the kill, before any health check has noticed: failures must be retried, not returned.
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await infer()).status);
    expect(statuses).toEqual(new Array(30).fill(200));
    const after = (await infer()).json();
    expect(after.outputs[0].data).toEqual([10]);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${cluster.gateway.ports.admin}/status`).then((r) => r.json()) as { nodes: Array<{ node: string; ready: boolean }> })
      .nodes.find((n) => n.node === 'node-0')?.ready === false, 5000, 'node-0 to leave rotation');
  });

  it('both killed → 503 with a clear message, promptly, on both doors', async () => {
    await stopProcess(cluster.nodes[1]!, 'SIGKILL');
    const started = Date.now();
    const res = await infer();
    expect(res.status).toBe(503);
    expect(res.json().error).toMatch(/no inference node can serve model 'news2'/);
    expect(Date.now() - started).toBeLessThan(5000);
    const client = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.ehr);
    await expect(grpcCall(client, 'ModelInfer', {
      model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], contents: { fp32_contents: [1, 2, 3, 4, 5, 6, 7] } }],
    }, token)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/no inference node/) });
    client.close();
    await waitFor(async () => (await httpsCall(cluster.gateway.ports.rest!, '/v2/health/ready', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr })).status === 503, 5000, 'gateway not ready');
  });
});
