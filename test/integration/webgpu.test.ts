import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareOutputs, referenceInputs, runAll } from '../../src/cli/gpu-check.js';
import { openSession, resolveProvider, type ResolvedProvider } from '../../src/node/provider.js';
import { loadRepository, type LoadedModel } from '../../src/node/repository.js';
import { MODELS, httpsCall, rid, scrapeMetrics, startCluster, type Cluster } from '../helpers/cluster.js';

/**
 * The non-CPU provider path, for real: sessions on onnxruntime's WebGPU
 * provider (Dawn over Vulkan). In CI the Vulkan driver is Mesa's lavapipe,
 * Vulkan on the CPU (.ci/run installs Mesa 25 from bookworm-backports; Debian
 * 12's Mesa 22 has no adapter Dawn accepts). On a GPU host the same tests run
 * on the GPU. Where no adapter exists the suite is skipped, saying so.
 */
const models = loadRepository(MODELS).filter((e): e is LoadedModel => e.status === 'loaded');
const news2 = models.find((m) => m.name === 'news2')!;
let probeFailure: string | undefined;
try {
  await resolveProvider('webgpu', 0, new Uint8Array(news2.bytes).slice());
} catch (err) {
  probeFailure = (err as Error).message;
}
if (probeFailure) {
  console.warn(`WebGPU tests SKIPPED: no WebGPU adapter on this host (${probeFailure.slice(0, 200)}). `
    + 'Install the Vulkan loader and a driver: Debian 12 needs mesa-vulkan-drivers and libvulkan1 from bookworm-backports (.ci/run does this).');
}

describe.skipIf(probeFailure !== undefined)('WebGPU provider (lavapipe in CI, the GPU on a GPU host)', () => {
  const webgpu: ResolvedProvider = { name: 'webgpu' };
  const cpu: ResolvedProvider = { name: 'cpu' };

  // Lavapipe runs the CNN slowly (about 45 ms an image on two cores): few rows of it, many of the small models.
  it.each(models.map((m) => [m.name, m.name === 'cxr-loadtest' ? 2 : 64] as const))('%s: sessions on WebGPU give the CPU provider\'s outputs (%i rows)', async (name, rows) => {
    const model = models.find((m) => m.name === name)!;
    const inputs = referenceInputs(model, rows);
    const [onCpu, onGpu] = await Promise.all([openSession(model.bytes, cpu, 1), openSession(model.bytes, webgpu, 1)]);
    try {
      const expected = await runAll(onCpu, model, inputs);
      const actual = await runAll(onGpu, model, inputs);
      const comparison = compareOutputs(name, 'webgpu', rows, expected, actual);
      expect(comparison.maxAbsDiff).toBeLessThanOrEqual(comparison.tolerance);
      if (name === 'news2') expect(comparison.chartRowScore).toBe(10);
      expect(comparison.ok).toBe(true);
    } finally {
      await Promise.all([onCpu.release(), onGpu.release()]);
    }
  }, 120_000);

  describe('a node on WebGPU behind the gateway', () => {
    let cluster: Cluster;
    beforeAll(async () => {
      cluster = await startCluster({ nodes: 1, nodeConfigPatch: (c) => { c.node.executionProvider = 'webgpu'; } });
    }, 120_000);
    afterAll(async () => { await cluster?.stop(); });

    it('answers NEWS2 as the CPU provider does, and says it runs on WebGPU', async () => {
      const inputs = referenceInputs(news2, 16);
      const session = await openSession(news2.bytes, cpu, 1);
      const expected = await runAll(session, news2, inputs);
      await session.release();
      const token = await cluster.token(['clinician']);
      const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', {
        ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token,
        headers: { 'x-request-id': rid('webgpu-news2') },
        body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [16, 7], data: Array.from(inputs) }] },
      });
      expect(res.status).toBe(200);
      const outputs = res.json().outputs as Array<{ name: string; data: number[] }>;
      const actual = news2.config.outputs.map((o) => outputs.find((x) => x.name === o.name)!.data.map(Number));
      expect(compareOutputs('news2', 'webgpu', 16, expected, actual).ok).toBe(true);

      const metrics = await scrapeMetrics(cluster.nodes[0]!.ports.admin!);
      expect(metrics).toMatch(/cdsgate_node_execution_provider\{[^}]*provider="webgpu"[^}]*\} 1/);
      const metadata = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token });
      expect(metadata.status).toBe(200);
      expect(metadata.json().parameters?.execution_provider).toBe('webgpu');
    }, 60_000);
  });
});
