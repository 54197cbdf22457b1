import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGGREGATE_CASES, CHART_EDGES, NORMAL_VITALS, edgeRows } from '../helpers/news2-chart.js';
import { grpcCall, grpcClient, httpsCall, joinedNodeCalls, runCliAsync, startCluster, type Cluster } from '../helpers/cluster.js';

let cluster: Cluster;
beforeAll(async () => { cluster = await startCluster({ nodes: 1 }); });
afterAll(async () => { await cluster?.stop(); });

describe('NEWS2 chart cases end to end through the gateway', () => {
  it('every band edge over REST', async () => {
    const rows = edgeRows();
    const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', {
      ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token: await cluster.token(['nurse']),
      body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [rows.length, 7], data: rows }] },
    });
    expect(res.status, res.body).toBe(200);
    const sub = res.json().outputs.find((o: { name: string }) => o.name === 'subscores').data as number[];
    CHART_EDGES.forEach(({ param, label, value, score }, i) => expect(sub[i * 7 + param], `${label} ${value}`).toBe(score));
  });

  it('aggregate bands over gRPC', async () => {
    const client = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.smart);
    const reply = await grpcCall(client, 'ModelInfer', {
      model_name: 'news2',
      inputs: [{ name: 'vitals', datatype: 'FP32', shape: [AGGREGATE_CASES.length, 7], contents: { fp32_contents: AGGREGATE_CASES.flatMap((c) => c.vitals) } }],
    }, await cluster.token(['clinician']));
    client.close();
    const byName = (n: string) => reply.raw_output_contents[reply.outputs.findIndex((o: { name: string }) => o.name === n)];
    const totals = new Float32Array(new Uint8Array(byName('news2_score')).buffer);
    const risks = new BigInt64Array(new Uint8Array(byName('risk')).buffer);
    AGGREGATE_CASES.forEach((c, i) => {
      expect(totals[i], c.why).toBe(c.total);
      expect(Number(risks[i]), c.why).toBe(c.risk);
    });
  });
});

describe('coalesced node calls (news2 is configured with coalesce)', () => {
  const joinedCalls = () => joinedNodeCalls(cluster.gateway.ports.admin!, 'news2');

  it('concurrent callers each get their own row\'s scores, and one caller\'s refused input fails only that caller', async () => {
    const client = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.smart);
    const token = await cluster.token(['clinician']);
    const one = (vitals: number[]) => grpcCall(client, 'ModelInfer', {
      model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], contents: { fp32_contents: vitals } }],
    }, token);
    const subscores = (reply: any) => Array.from(new Float32Array(new Uint8Array(reply.raw_output_contents[reply.outputs.findIndex((o: { name: string }) => o.name === 'subscores')]).buffer));
    await one(NORMAL_VITALS); // the token verified and cached, so a wave's calls reach the router together
    const before = await joinedCalls();
    // Waves of single-row calls on one HTTP/2 connection, each wave sent at once, until one node call has carried several
    // (the requests of one socket read join; how many arrive per read is up to the kernel, so the waves repeat).
    for (let wave = 0; wave < 30 && (wave === 0 || await joinedCalls() === before); wave++) {
      const rows = edgeRows();
      const outOfRange = [16, 97, 0, 120, 70, 0, 99]; // temperature above the model's plausible range: the node refuses it
      const results = await Promise.allSettled([...rows.map(one), one(outOfRange), ...AGGREGATE_CASES.map((c) => one(c.vitals))]);
      CHART_EDGES.forEach(({ param, label, value, score }, i) => {
        expect(results[i]!.status, `${label} ${value}`).toBe('fulfilled');
        expect(subscores((results[i] as PromiseFulfilledResult<any>).value)[param], `${label} ${value}`).toBe(score);
      });
      expect((results[rows.length] as PromiseRejectedResult).reason.code).toBe(3); // INVALID_ARGUMENT, to that caller only
      AGGREGATE_CASES.forEach((c, i) => {
        const reply = (results[rows.length + 1 + i] as PromiseFulfilledResult<any>).value;
        const total = new Float32Array(new Uint8Array(reply.raw_output_contents[reply.outputs.findIndex((o: { name: string }) => o.name === 'news2_score')]).buffer)[0];
        expect(total, c.why).toBe(c.total);
      });
    }
    client.close();
    expect(await joinedCalls()).toBeGreaterThan(before);
  });
});

describe('cdsgate infer (the gRPC example npm start prints)', () => {
  it('sends a KServe JSON body over the gRPC door and prints the result', async () => {
    const body = JSON.stringify({ inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [[24, 93, 1, 105, 115, 0, 38.5]] }] });
    const args = ['infer', '--address', `localhost:${cluster.gateway.ports.grpc}`, '--model', 'news2', '--ca', cluster.pki.ca,
      '--cert', cluster.pki.apps.ehr.cert, '--key', cluster.pki.apps.ehr.key, '--body', body];
    const ok = await runCliAsync([...args, '--token', await cluster.token(['clinician'])]);
    expect(ok.code, ok.stderr).toBe(0);
    const result = JSON.parse(ok.stdout);
    expect(result.outputs.find((o: { name: string }) => o.name === 'news2_score').data).toEqual([10]);
    expect(result.outputs.find((o: { name: string }) => o.name === 'risk').data).toEqual([3]);
    const denied = await runCliAsync([...args, '--token', await cluster.token(['billing'])]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/gRPC PERMISSION_DENIED/);
  });
});
