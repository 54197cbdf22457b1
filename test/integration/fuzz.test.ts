import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcCall, grpcClient, joinedNodeCalls, runCliAsync, startCluster, type Cluster } from '../helpers/cluster.js';
import { runFuzz } from '../helpers/fuzz.js';
import { join } from 'node:path';

/**
 * A bounded, seeded run of the mutation fuzzer (`npm run fuzz` runs it longer
 * with fresh seeds): every answer clean, no canary identifier anywhere
 * afterwards, the audit chain intact, the gateway's memory bounded.
 */
let cluster: Cluster;
beforeAll(async () => { cluster = await startCluster({ nodes: 2 }); }, 60_000);
afterAll(async () => { await cluster?.stop(); });

describe('mutation fuzzing (seeded, bounded)', () => {
  it('REST and gRPC: clean answers, no canary in any log, metric or audit record, bounded memory', async () => {
    const report = await runFuzz(cluster, { seed: 20261127, restRuns: 150, grpcRuns: 150 });
    expect(report.violations).toEqual([]);
    expect(report.canaryLeaks).toEqual([]);
    // Bounded: the gateway starts near 100 MB; hostile shapes once took it to gigabytes.
    expect(report.gatewayRssMb.max).toBeLessThan(600);
    const verify = await runCliAsync(['audit', 'verify', '--public-key', cluster.secrets.auditPublicKey, join(cluster.dir, 'audit')]);
    expect(verify.code, verify.stderr).toBe(0);
  }, 300_000);
});

describe('coalesced calls under random concurrent load (seeded)', () => {
  /** The model's plausible ranges (models/news2/config.json); a value outside one is refused by the node. */
  const RANGES: Array<[number, number]> = [[0, 80], [40, 100], [0, 1], [0, 300], [0, 300], [0, 1], [25, 45]];
  const row = fc.tuple(...RANGES.map(([lo, hi]) => fc.oneof(
    { weight: 19, arbitrary: fc.integer({ min: lo * 10, max: hi * 10 }).map((v) => v / 10) },
    { weight: 1, arbitrary: fc.constantFrom(lo - 1, hi + 7) }, // out of range: that caller's request is refused
  )));
  const wave = fc.array(fc.array(row, { minLength: 1, maxLength: 3 }), { minLength: 8, maxLength: 40 });

  it('every caller of a wave gets exactly what its request gets alone: the same outputs, or the same refusal', async () => {
    const client = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.smart);
    const token = await cluster.token(['clinician']);
    const call = (rows: number[][]) => grpcCall(client, 'ModelInfer', {
      model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [rows.length, 7], contents: { fp32_contents: rows.flat() } }],
    }, token).then((reply: any) => ({ ok: reply.outputs.map((o: { name: string }, i: number) => [o.name, Buffer.from(reply.raw_output_contents[i]).toString('hex')]) }), (err: { code: number }) => ({ code: err.code }));
    const joinedBefore = await joinedNodeCalls(cluster.gateway.ports.admin!, 'news2');
    await fc.assert(fc.asyncProperty(wave, async (requests) => {
      const together = await Promise.all(requests.map(call)); // one HTTP/2 connection: many arrive in one read, and join
      for (const [i, rows] of requests.entries()) expect(together[i], JSON.stringify(rows)).toEqual(await call(rows)); // alone: nothing else out
    }), { seed: 20261206, numRuns: 12 });
    client.close();
    // The waves did share node calls (else this test proved nothing about coalescing).
    expect(await joinedNodeCalls(cluster.gateway.ports.admin!, 'news2')).toBeGreaterThan(joinedBefore);
  }, 300_000);
});
