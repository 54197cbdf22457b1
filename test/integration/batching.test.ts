import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devNodeConfig } from '../../src/cli/dev-config.js';
import { MODELS, grpcCall, grpcClient, makeMaterial, scrapeMetrics, startProcess, stopProcess, type GrpcClient, type Material, type Proc } from '../helpers/cluster.js';

/**
 * Dynamic batching on a real node: two nodes over the same model files, one
 * with every model batched (a repository copy whose configs add
 * dynamicBatching), one without. Concurrent requests to the batched node get
 * element for element what each gets alone from the other, while the node
 * runs the model fewer times than it was asked.
 */
let material: Material;
let batched: Proc;
let plain: Proc;
let toBatched: GrpcClient;
let toPlain: GrpcClient;

beforeAll(async () => {
  material = await makeMaterial();
  const repo = mkdtempSync(join(tmpdir(), 'cdsgate-repo-'));
  cpSync(MODELS, repo, { recursive: true });
  for (const model of ['news2', 'wdbc-risk', 'cxr-loadtest']) {
    const file = join(repo, model, 'config.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), dynamicBatching: { maxQueueDelayMicroseconds: 20_000 } }));
  }
  [batched, plain] = await Promise.all([
    startProcess('node', devNodeConfig({ pki: material.pki, index: 0, modelRepository: repo, executionProvider: 'cpu' }), material.dir, 'node-batched'),
    startProcess('node', devNodeConfig({ pki: material.pki, index: 1, modelRepository: MODELS, executionProvider: 'cpu' }), material.dir, 'node-plain'),
  ]);
  toBatched = grpcClient(batched.ports.grpc!, material.pki.ca, material.pki.gatewayClient, 'node-0.cdsgate.local');
  toPlain = grpcClient(plain.ports.grpc!, material.pki.ca, material.pki.gatewayClient, 'node-1.cdsgate.local');
}, 60_000);
afterAll(async () => {
  toBatched?.close();
  toPlain?.close();
  await Promise.all([batched, plain].filter(Boolean).map((p) => stopProcess(p)));
});

const raw = (values: number[]) => Buffer.from(Float32Array.from(values).buffer);
const request = (model: string, input: string, shape: number[], values: number[]) =>
  ({ model_name: model, inputs: [{ name: input, datatype: 'FP32', shape: shape.map(String) }], raw_input_contents: [raw(values)] });
const outputsOf = (res: { outputs: Array<{ name: string; datatype: string }>; raw_output_contents: Buffer[] }) =>
  Object.fromEntries(res.outputs.map((o, i) => [o.name, Buffer.from(res.raw_output_contents[i]!).toString('hex')]));
const sample = (metrics: string, name: string, model: string) => Number(new RegExp(`^${name}\\{[^}]*model="${model}"[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);

describe('dynamic batching (real node)', () => {
  const cases: Array<[string, string, number, (i: number) => number[]]> = [
    ['news2', 'vitals', 7, (i) => [8 + (i % 20), 88 + (i % 12), i % 2, 85 + ((7 * i) % 140), 38 + ((3 * i) % 120), i % 2, 34.9 + 0.17 * (i % 40)]],
    ['wdbc-risk', 'features', 30, (i) => [20.57, 17.77, 132.9, 1326, 0.08474, 0.07864, 0.0869, 0.07017, 0.1812, 0.05667, 0.5435, 0.7339, 3.398, 74.08, 0.005225, 0.01308, 0.0186, 0.0134, 0.01389, 0.003532, 24.99, 23.41, 158.8, 1956, 0.1238, 0.1866, 0.2416, 0.186, 0.275, 0.08902].map((v, j) => v * (1 + ((i * 7 + j) % 5) / 50))],
  ];

  it.each(cases)('%s: 24 concurrent requests, each answered exactly as alone, in fewer model runs', async (model, input, width, row) => {
    const requests = Array.from({ length: 24 }, (_, i) => request(model, input, [i % 3 === 0 ? 2 : 1, width], i % 3 === 0 ? [...row(i), ...row(i + 100)] : row(i)));
    const before = await scrapeMetrics(batched.ports.admin!);
    const together = await Promise.all(requests.map((r) => grpcCall(toBatched, 'ModelInfer', r)));
    const alone: unknown[] = [];
    for (const r of requests) alone.push(await grpcCall(toPlain, 'ModelInfer', r));
    together.forEach((res, i) => expect(outputsOf(res), `request ${i}`).toEqual(outputsOf(alone[i] as never)));
    const after = await scrapeMetrics(batched.ports.admin!);
    const runs = sample(after, 'cdsgate_node_inference_executions_total', model) - sample(before, 'cdsgate_node_inference_executions_total', model);
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(runs).toBeLessThan(24);
  });

  it('the CNN batches too, image by image identical', async () => {
    const image = (seed: number) => Array.from({ length: 224 * 224 }, (_, k) => ((k * 31 + seed * 17) % 255) / 255);
    const requests = Array.from({ length: 4 }, (_, i) => request('cxr-loadtest', 'image', [1, 1, 224, 224], image(i)));
    const together = await Promise.all(requests.map((r) => grpcCall(toBatched, 'ModelInfer', r)));
    for (const [i, r] of requests.entries()) expect(outputsOf(together[i])).toEqual(outputsOf(await grpcCall(toPlain, 'ModelInfer', r)));
  });

  it('a bad request never fails the batch it would have joined', async () => {
    const good = Array.from({ length: 6 }, (_, i) => grpcCall(toBatched, 'ModelInfer', request('news2', 'vitals', [1, 7], cases[0]![3](i))));
    const bad = grpcCall(toBatched, 'ModelInfer', request('news2', 'vitals', [1, 7], [1e39, 93, 1, 105, 115, 0, 38.5])).then(() => 'answered', () => 'refused');
    const results = await Promise.allSettled(good);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(await bad).toBe('refused');
  });
});
