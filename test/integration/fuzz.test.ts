import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliAsync, startCluster, type Cluster } from '../helpers/cluster.js';
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
