import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devNodeConfig } from '../../src/cli/dev-config.js';
import { runAll } from '../../src/cli/gpu-check.js';
import { openSession } from '../../src/node/provider.js';
import { loadRepository, type LoadedModel } from '../../src/node/repository.js';
import { MODELS, grpcCall, grpcClient, makeMaterial, scrapeMetrics, startProcess, stopProcess, type GrpcClient, type Material, type Proc } from '../helpers/cluster.js';

/**
 * Model instances (Triton's instance groups): a model whose config says
 * `instances: 2` gets two sessions on two worker threads of its own, and
 * concurrent requests run on both; the other models share the node's workers.
 */
let material: Material;
let node: Proc;
let client: GrpcClient;
let repo: string;

beforeAll(async () => {
  material = await makeMaterial();
  repo = mkdtempSync(join(tmpdir(), 'cdsgate-repo-'));
  cpSync(MODELS, repo, { recursive: true });
  const file = join(repo, 'cxr-loadtest', 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), instances: 2 }));
  node = await startProcess('node', devNodeConfig({ pki: material.pki, index: 0, modelRepository: repo, executionProvider: 'cpu' }), material.dir, 'node-instances');
  client = grpcClient(node.ports.grpc!, material.pki.ca, material.pki.gatewayClient, 'node-0.cdsgate.local');
}, 60_000);
afterAll(async () => {
  client?.close();
  if (node) await stopProcess(node);
});

const sample = (metrics: string, name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} ([0-9.e+-]+)`, 'm').exec(metrics)?.[1] ?? 0);

describe('model instances', () => {
  it('runs concurrent requests on both instances of the model, each answer exactly the CPU session\'s', async () => {
    const model = loadRepository(repo, ['cxr-loadtest'])[0] as LoadedModel;
    const images = Array.from({ length: 12 }, (_, i) => Float32Array.from({ length: 224 * 224 }, (_, k) => ((k * 31 + i * 17) % 255) / 255));
    const answers = await Promise.all(images.map((image) => grpcCall(client, 'ModelInfer', {
      model_name: 'cxr-loadtest', inputs: [{ name: 'image', datatype: 'FP32', shape: ['1', '1', '224', '224'] }], raw_input_contents: [Buffer.from(image.buffer)],
    })));
    const session = await openSession(model.bytes, { name: 'cpu' }, 1);
    try {
      for (const [i, image] of images.entries()) {
        const [expected] = await runAll(session, model, image);
        const raw = Buffer.from(answers[i].raw_output_contents[0]);
        expect(Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)), `image ${i}`).toEqual(expected);
      }
    } finally {
      await session.release();
    }
    const metrics = await scrapeMetrics(node.ports.admin!);
    expect(sample(metrics, 'cdsgate_node_model_instances', 'model="cxr-loadtest",node="node-0"')).toBe(2);
    expect(sample(metrics, 'cdsgate_node_model_instances', 'model="news2",node="node-0"')).toBe(1);
    const first = sample(metrics, 'cdsgate_node_instance_executions_total', 'model="cxr-loadtest",instance="0",node="node-0"');
    const second = sample(metrics, 'cdsgate_node_instance_executions_total', 'model="cxr-loadtest",instance="1",node="node-0"');
    expect(first + second).toBe(12);
    expect(first).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(0);
    expect(metrics).toMatch(/^cdsgate_node_compute_duration_seconds_count\{[^}]*model="cxr-loadtest"[^}]*\} 12$/m);
  });

  it('a config asking for 0 instances is refused, naming the field', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'cdsgate-repo-'));
    cpSync(join(MODELS, 'news2'), join(bad, 'news2'), { recursive: true });
    const file = join(bad, 'news2', 'config.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), instances: 0 }));
    const [entry] = loadRepository(bad);
    expect(entry!.status).toBe('failed');
    expect((entry as { reason: string }).reason).toMatch(/instances/);
  });

  it('a config asking for inline and instances together is refused: an inline model has no worker threads', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'cdsgate-repo-'));
    cpSync(join(MODELS, 'news2'), join(bad, 'news2'), { recursive: true });
    const file = join(bad, 'news2', 'config.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), inline: true, instances: 2 }));
    const [entry] = loadRepository(bad);
    expect(entry!.status).toBe('failed');
    expect((entry as { reason: string }).reason).toMatch(/inline or instances/);
  });
});
